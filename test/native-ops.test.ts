// The addon's kernels seen from JavaScript: conversions, matmul at every kernel level against
// a plain JS product, and clear errors for bad arguments.
import { describe, expect, it } from 'vitest';
import { native } from '../lib/native.js';
import { randomNormal as randn } from '../lib/synthetic/phi3.js';

const addon = native();
const typeId = (name: string): number => {
  const t = addon.types().find((x) => x.name === name);
  if (!t) throw new Error(name);
  return t.id;
};

describe('native types', () => {
  it('lists the ggml types with llama.cpp block sizes', () => {
    const byName = new Map(addon.types().map((t) => [t.name, t]));
    expect(byName.get('q4_0')).toMatchObject({ id: 2, blockSize: 32, blockBytes: 18, supported: true });
    expect(byName.get('q4_K')).toMatchObject({ id: 12, blockSize: 256, blockBytes: 144, supported: true });
    expect(byName.get('q6_K')).toMatchObject({ id: 14, blockSize: 256, blockBytes: 210, supported: true });
    expect(byName.get('bf16')).toMatchObject({ id: 30, blockSize: 1, blockBytes: 2, supported: true });
    expect(byName.get('iq2_xxs')).toMatchObject({ id: 16, supported: false });
  });

  it('reports the CPU and the kernel level in use', () => {
    const c = addon.cpu();
    expect(['scalar', 'avx2', 'avx512']).toContain(c.best);
    expect(c.active).toBe(c.best);
  });
});

describe('matmul from JS', () => {
  const cases: Array<[string, number]> = [
    ['f32', 64],
    ['f16', 64],
    ['bf16', 64],
    ['q8_0', 96],
    ['q4_0', 64],
    ['q4_1', 64],
    ['q5_0', 64],
    ['q5_1', 64],
    ['q4_K', 256],
    ['q5_K', 512],
    ['q6_K', 256],
  ];
  const levels = ['scalar', 'avx2', 'avx512'].slice(0, ['scalar', 'avx2', 'avx512'].indexOf(addon.cpu().best) + 1);

  for (const [name, k] of cases) {
    it(`${name}: y = W x matches the dequantized product at ${levels.join(', ')}`, async () => {
      const id = typeId(name);
      const rows = 7;
      const n = 3;
      const wf = randn(rows * k, 7);
      const parts: Buffer[] = [];
      const wdeq: Float32Array[] = [];
      for (let r = 0; r < rows; r++) {
        const q = addon.quantizeRow(id, wf.subarray(r * k, (r + 1) * k));
        parts.push(q);
        wdeq.push(addon.dequantizeRow(id, q, k));
      }
      const w = Buffer.concat(parts);
      const x = randn(k * n, 11);
      for (const isa of levels) {
        addon.setIsa(isa as 'scalar' | 'avx2' | 'avx512');
        try {
          const y = await addon.matmul(id, w, rows, k, x, n, 2);
          for (let c = 0; c < n; c++)
            for (let r = 0; r < rows; r++) {
              let exact = 0;
              let mag = 0;
              for (let i = 0; i < k; i++) {
                exact += wdeq[r][i] * x[c * k + i];
                mag += Math.abs(wdeq[r][i]) * Math.abs(x[c * k + i]);
              }
              // activations are rounded to 8 bits (quantized types) or half/bfloat16:
              // the error is a small fraction of sum |w x|
              const tol = name === 'f32' ? 1e-5 * mag : name === 'f16' ? 2e-3 * mag : 1e-2 * mag;
              expect(Math.abs(y[c * rows + r] - exact)).toBeLessThanOrEqual(tol);
            }
        } finally {
          addon.setIsa('auto');
        }
      }
    });
  }

  it('rejects bad arguments with a clear error and lives on', async () => {
    const id = typeId('q4_0');
    expect(() => addon.quantizeRow(id, new Float32Array(33))).toThrow(/multiple of the q4_0 block/);
    expect(() => addon.matmul(id, new Uint8Array(10), 1, 32, new Float32Array(32), 1)).toThrow(/too short/);
    expect(() => addon.matmul(99, new Uint8Array(10), 1, 32, new Float32Array(32), 1)).toThrow(/unknown tensor type/);
    expect(() => addon.matmul(id, new Uint8Array(18), 1, 32, 'x' as unknown as Float32Array, 1)).toThrow(/typed array/);
    expect(() => addon.setIsa('sse9' as 'avx2')).toThrow(/isa must be/);
    const unsupported = typeId('iq2_xxs');
    await expect(addon.matmul(unsupported, new Uint8Array(66), 1, 256, new Float32Array(256), 1)).rejects.toThrow(/iq2_xxs/);
    // still alive
    const y = await addon.matmul(typeId('f32'), Buffer.from(new Float32Array([1, 2]).buffer), 1, 2, new Float32Array([3, 4]), 1);
    expect(y[0]).toBe(11);
  });
});

describe('addon loader', () => {
  it('prefers a prebuild for this platform, then the local build; HEALTHGPT_ADDON overrides', async () => {
    const { mkdirSync, writeFileSync } = await import('node:fs');
    const { join } = await import('node:path');
    const { tempDir } = await import('./helpers.js');
    const { addonCandidates } = await import('../lib/native.js');
    const root = tempDir();
    const pre = join(root, 'prebuilds', `${process.platform}-${process.arch}`);
    mkdirSync(pre, { recursive: true });
    writeFileSync(join(pre, 'healthgpt.glibc.node'), '');
    writeFileSync(join(pre, 'README'), '');
    expect(addonCandidates(root, {})).toEqual([join(pre, 'healthgpt.glibc.node'), join(root, 'build', 'Release', 'healthgpt.node')]);
    expect(addonCandidates(root, { HEALTHGPT_ADDON: '/x/y.node' })).toEqual(['/x/y.node']);
  });
});

describe('addon argument checks', () => {
  it('refuses integers outside the safe or C int range instead of wrapping them', async () => {
    const addon = native();
    expect(() => addon.dequantizeRow(8, new Uint8Array(34), 1e20)).toThrow(/safe integer/);
    expect(() => addon.matmul(0, new Uint8Array(8), 2 ** 40, 2, new Float32Array(2), 1)).toThrow(/out of range/);
    const { join } = await import('node:path');
    const { root } = await import('./helpers.js');
    const h = await addon.Model.load(join(root, 'test', 'fixtures', 'phi3', 'gqa.f32.gguf'), {});
    expect(() => h.eval(Int32Array.of(1), 2 ** 33, false)).toThrow(/out of range/);
    expect(() => h.eval(Int32Array.of(1), -(2 ** 40), false)).toThrow(/out of range/);
    h.dispose();
  });
});
