// Packed q4_0 weights (native/quant/repack.h) change only where the bytes sit: a model run
// with them gives the very same logits, bit for bit, as the same file read in place.
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { HealthGPTError } from '../lib/errors.js';
import { LanguageModel } from '../lib/model/model.js';
import { quantizeFile } from '../lib/quantize/quantize.js';
import { PHI3_TINY, writeRandomPhi3 } from '../lib/synthetic/phi3.js';
import { tempDir } from './helpers.js';

describe('repacked q4_0 weights', () => {
  it('give the same logits as the weights read in place, in prefill and decode', async () => {
    const dir = tempDir();
    try {
      // 1000 vocabulary rows: 62 whole 16-row groups and 8 rows that stay plain
      const shape = { ...PHI3_TINY, vocab: 1000 };
      await writeRandomPhi3(join(dir, 'f32.gguf'), shape);
      await quantizeFile(join(dir, 'f32.gguf'), join(dir, 'q4_0.gguf'), 'q4_0');
      const tokens = [5, 17, 300, 42, 7, 999, 3];
      const run = async (repack: boolean) => {
        const m = await LanguageModel.load(join(dir, 'q4_0.gguf'), { threads: 2, repack });
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
    await expect(LanguageModel.load('x.gguf', { repack: 'yes' as unknown as boolean })).rejects.toThrow(
      new HealthGPTError('ERR_INVALID_OPTION', 'repack must be a boolean, got yes'),
    );
  });
});
