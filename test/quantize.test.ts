// `healthgpt quantize`: llama.cpp's type choices, bit-exact blocks, metadata carried over.
import { spawn } from 'node:child_process';
import { lstatSync, readdirSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { GGUFFile } from '../lib/gguf/file.js';
import { native } from '../lib/native.js';
import { planQuantization, useMoreBits } from '../lib/quantize/plan.js';
import { quantizeFile } from '../lib/quantize/quantize.js';
import { PHI3_MINI, PHI3_TINY, phi3Tensors, writeRandomPhi3 } from '../lib/synthetic/phi3.js';
import { cli, rejects, root, tempDir } from './helpers.js';

const sizes = { blockSize: (n: string) => (n.endsWith('_K') ? 256 : n.startsWith('q') ? 32 : 1) };
const readable = () => true;

describe('quantization plan', () => {
  const tensors = phi3Tensors(PHI3_MINI).map((t) => ({ ...t, type: 'f16' }));
  const plan = new Map(planQuantization(tensors, 'q4_k_m', 32, sizes, readable).map((e) => [e.name, e.to]));

  it('q4_k_m follows llama.cpp: q6_K output, q5_K fused qkv, q6_K ffn_down in the more-bits layers', () => {
    expect(plan.get('output.weight')).toBe('q6_K');
    expect(plan.get('token_embd.weight')).toBe('q4_K');
    expect(plan.get('blk.7.attn_qkv.weight')).toBe('q5_K');
    expect(plan.get('blk.7.attn_output.weight')).toBe('q4_K');
    expect(plan.get('blk.7.ffn_up.weight')).toBe('q4_K');
    const down = Array.from({ length: 32 }, (_, i) => plan.get(`blk.${i}.ffn_down.weight`));
    // first and last eighth, and every third between (layers 6, 9, ..., 27)
    expect(
      down
        .map((t, i) => [i, t])
        .filter(([, t]) => t === 'q6_K')
        .map(([i]) => i),
    ).toEqual([0, 1, 2, 3, 6, 9, 12, 15, 18, 21, 24, 27, 28, 29, 30, 31]);
    expect(useMoreBits(5, 32)).toBe(false);
  });

  it('q5_k_m and q6_k follow llama.cpp: q5_K with q6_K output, fused qkv and more-bits ffn_down; q6_K everywhere', () => {
    const q5 = new Map(planQuantization(tensors, 'q5_k_m', 32, sizes, readable).map((e) => [e.name, e.to]));
    expect(q5.get('output.weight')).toBe('q6_K');
    expect(q5.get('blk.7.attn_qkv.weight')).toBe('q6_K');
    expect(q5.get('blk.7.attn_output.weight')).toBe('q5_K');
    expect(q5.get('blk.6.ffn_down.weight')).toBe('q6_K');
    expect(q5.get('blk.7.ffn_down.weight')).toBe('q5_K');
    const q6 = planQuantization(tensors, 'q6_k', 32, sizes, readable);
    expect(new Set(q6.filter((e) => e.shape.length > 1).map((e) => e.to))).toEqual(new Set(['q6_K']));
  });

  it('norms stay f32, and a row length the block does not divide falls back', () => {
    expect(plan.get('blk.0.attn_norm.weight')).toBe('f32');
    const odd = planQuantization(
      [
        { name: 'blk.0.ffn_down.weight', shape: [96, 64], type: 'f32' }, // q6_K -> q8_0
        { name: 'blk.5.attn_output.weight', shape: [96, 64], type: 'f32' }, // q4_K -> q5_0
      ],
      'q4_k_m',
      32,
      sizes,
      readable,
    );
    expect(odd.map((e) => e.to)).toEqual(['q8_0', 'q5_0']);
    const odder = planQuantization([{ name: 'x.weight', shape: [100, 64], type: 'f32' }], 'q4_0', 1, sizes, readable);
    expect(odder[0]).toMatchObject({ to: 'f16' });
  });

  it('refuses a source type it cannot read, naming the tensor', () => {
    expect(() => planQuantization([{ name: 'blk.0.x.weight', shape: [256, 64], type: 'iq2_xxs' }], 'q8_0', 1, sizes, () => false)).toThrow(/blk\.0\.x\.weight.*iq2_xxs/);
  });
});

describe('quantizeFile on a random phi3', () => {
  const dir = tempDir();
  const f32 = join(dir, 'tiny-f32.gguf');
  beforeAll(async () => {
    await writeRandomPhi3(f32, PHI3_TINY);
  });

  for (const target of ['q8_0', 'q4_0'] as const) {
    it(`${target}: every matrix is exactly the reference quantizer's blocks, norms f32, metadata kept`, async () => {
      const out = join(dir, `tiny-${target}.gguf`);
      const r = await quantizeFile(f32, out, target);
      expect(r.plan.length).toBe(phi3Tensors(PHI3_TINY).length);
      const a = GGUFFile.open(f32);
      const b = GGUFFile.open(out);
      try {
        for (const [k, v] of Object.entries(a.info.metadata)) if (k !== 'general.file_type') expect(b.info.metadata[k]).toEqual(v);
        expect(b.info.metadata['general.file_type']).toBe(target === 'q8_0' ? 7 : 2);
        expect(b.info.metadata['general.quantization_version']).toBe(2);
        const addon = native();
        const typeId = target === 'q8_0' ? 8 : 2;
        for (let i = 0; i < a.info.tensors.length; i++) {
          const t = a.info.tensors[i];
          const q = b.info.tensors[i];
          expect(q.name).toBe(t.name);
          expect(q.shape).toEqual(t.shape);
          if (t.shape.length === 1) {
            expect(q.type).toBe('f32');
            continue;
          }
          expect(q.type).toBe(target);
          const src = new Float32Array((await a.tensorData(i)).buffer.slice(0));
          const got = await b.tensorData(i);
          const rowBytes = got.length / t.shape[1];
          for (const row of [0, t.shape[1] - 1]) {
            const want = addon.quantizeRow(typeId, src.subarray(row * t.shape[0], (row + 1) * t.shape[0]));
            expect(got.subarray(row * rowBytes, (row + 1) * rowBytes)).toEqual(want);
          }
        }
      } finally {
        a.close();
        b.close();
      }
    });
  }

  it('q4_k_m through the CLI writes the llama.cpp mix', () => {
    const out = join(dir, 'tiny-q4_k_m.gguf');
    const r = cli(['quantize', f32, out, 'q4_k_m']);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/wrote .*: 15 tensors \(f32: 5, q4_K: \d+, q5_K: 2, q6_K: \d+\)/);
    const f = GGUFFile.open(out);
    expect(f.info.tensors.find((t) => t.name === 'output.weight')?.type).toBe('q6_K');
    f.close();
  });

  it('bad arguments: a clear message and exit code 1', () => {
    const r = cli(['quantize', f32, join(dir, 'x.gguf'), 'q3_xx']);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/unknown quantization type "q3_xx"/);
    const missing = cli(['quantize', join(dir, 'nope.gguf'), join(dir, 'y.gguf'), 'q8_0']);
    expect(missing.status).toBe(1);
    expect(missing.stderr).toMatch(/nope\.gguf/);
  });

  it('Ctrl-C stops between two tensors: exit status 130, no partial file left', async () => {
    const src = join(dir, 'mid-f32.gguf');
    await writeRandomPhi3(src, { ...PHI3_TINY, hidden: 512, ffn: 2048, layers: 12 });
    const out = join(dir, 'mid-q4_k_m.gguf');
    const child = spawn(process.execPath, [join(root, 'bin', 'healthgpt.js'), 'quantize', src, out, 'q4_k_m', '--threads', '1', '-v'], { env: { ...process.env, HEALTHGPT_NO_PROGRESS: '1' } });
    let err = '';
    child.stderr.on('data', (d: Buffer) => {
      err += d.toString();
      if (err.includes('->') && !child.killed) child.kill('SIGINT'); // the first tensor is done
    });
    const status = await new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    expect([status, err]).toEqual([130, expect.stringMatching(/healthgpt: quantize interrupted/)]);
    expect(readdirSync(dir).filter((f) => f.startsWith('mid-q4_k_m'))).toEqual([]);
  }, 60_000);

  it('the output never replaces the input, a device or a folder; through a symbolic link it writes the file the link names', async () => {
    await rejects(quantizeFile(f32, f32, 'q8_0'), 'ERR_INVALID_ARG', /is the input/);
    const link = join(dir, 'link-to-input.gguf');
    symlinkSync(f32, link);
    await rejects(quantizeFile(f32, link, 'q8_0'), 'ERR_INVALID_ARG', /is the input/);
    await rejects(quantizeFile(f32, '/dev/null', 'q8_0'), 'ERR_GGUF_WRITE', /\/dev\/null exists and is not a regular file/);
    expect(statSync('/dev/null').isCharacterDevice()).toBe(true);
    await rejects(quantizeFile(f32, dir, 'q8_0'), 'ERR_GGUF_WRITE', /a folder/);
    const real = join(dir, 'real-q8.gguf');
    writeFileSync(real, 'old');
    const viaLink = join(dir, 'link-q8.gguf');
    symlinkSync(real, viaLink);
    await quantizeFile(f32, viaLink, 'q8_0');
    expect(lstatSync(viaLink).isSymbolicLink()).toBe(true);
    expect(statSync(real).size).toBeGreaterThan(1000);
    expect(readdirSync(dir).filter((f) => f.includes('.tmp-'))).toEqual([]);
  });
});
