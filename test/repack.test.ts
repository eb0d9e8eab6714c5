// Packed weights (native/quant/repack.h) change only where the bytes sit: a model run with
// them gives the very same logits, bit for bit, as the same file read in place, for q4_0 and
// for the k-quants of a Q4_K_M file (q4_K, q5_K for attn_qkv, q6_K for the output head).
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { HealthGPTError } from '../lib/errors.js';
import { GGUFFile } from '../lib/gguf/file.js';
import { LanguageModel } from '../lib/model/model.js';
import { quantizeFile } from '../lib/quantize/quantize.js';
import type { QuantizeTarget } from '../lib/quantize/plan.js';
import { PHI3_TINY, writeRandomPhi3 } from '../lib/synthetic/phi3.js';
import { tempDir } from './helpers.js';

describe('repacked weights', () => {
  const cases: [QuantizeTarget, string[]][] = [
    ['q4_0', ['q4_0']],
    ['q4_k_m', ['q4_K', 'q5_K', 'q6_K']],
  ];
  it.each(cases)('%s: give the same logits as the weights read in place, in prefill and decode', async (target, types) => {
    const dir = tempDir();
    try {
      // 1000 vocabulary rows: 62 whole 16-row groups and 8 rows that stay plain
      const shape = { ...PHI3_TINY, vocab: 1000 };
      await writeRandomPhi3(join(dir, 'f32.gguf'), shape);
      const file = join(dir, `${target}.gguf`);
      await quantizeFile(join(dir, 'f32.gguf'), file, target);
      const g = GGUFFile.open(file);
      try {
        const held = new Set(g.info.tensors.map((t) => t.type));
        for (const t of types) expect(held.has(t), `${target} file holds ${t} tensors`).toBe(true);
      } finally {
        g.close();
      }
      const tokens = [5, 17, 300, 42, 7, 999, 3];
      const run = async (repack: boolean) => {
        const m = await LanguageModel.load(file, { threads: 2, repack });
        try {
          const prefill = await m.evaluate(tokens);
          const decode = await m.evaluate([11]); // one more position on top of the cache
          return [prefill, decode];
        } finally {
          m.dispose();
        }
      };
      const [packed, plain] = [await run(true), await run(false)];
      expect(packed[0].every(Number.isFinite)).toBe(true);
      expect(Buffer.from(packed[0].buffer).equals(Buffer.from(plain[0].buffer))).toBe(true);
      expect(Buffer.from(packed[1].buffer).equals(Buffer.from(plain[1].buffer))).toBe(true);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('refuses a repack option that is not a boolean', async () => {
    await expect(LanguageModel.load('x.gguf', { repack: 'yes' as unknown as boolean })).rejects.toThrow(new HealthGPTError('ERR_INVALID_ARG', 'repack must be a boolean, got yes'));
  });
});
