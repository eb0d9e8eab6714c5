// H-LoRA plugins through the TypeScript API: logits with each plugin and with none against
// transformers' golden vectors (tools/reference/make_phi3_hlora_reference.py), plugin
// switches between requests on one model against fresh loads (the prefix reuse must not
// carry keys and values across plugins), and validation of plugin options and files.
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HealthGPTError } from '../lib/errors.js';
import { LanguageModel } from '../lib/model/model.js';
import { writeRandomHLoraPlugin } from '../lib/synthetic/hlora.js';
import { PHI3_TINY, writeRandomPhi3 } from '../lib/synthetic/phi3.js';
import { root, tempDir, maxRel, readLogits } from './helpers.js';

const fixtures = join(root, 'test', 'fixtures', 'phi3-hlora');
const golden = (name: string) => readLogits(join(fixtures, `${name}.logits`));
const file = (name: string): string => join(fixtures, `${name}.gguf`);

const collect = async (it: AsyncGenerator<number, unknown, void>): Promise<number[]> => {
  const out: number[] = [];
  for await (const t of it) out.push(t);
  return out;
};

describe('LanguageModel with H-LoRA plugins', () => {
  let m: LanguageModel;
  beforeAll(async () => {
    m = await LanguageModel.load(file('base.f32'), {
      kvType: 'f32',
      threads: 2,
      plugins: { comprehension: file('comprehension.f32'), generation: file('generation.f32') },
    });
  });
  afterAll(() => m.dispose());

  it('lists its plugins by the names given', () => {
    expect(m.plugins).toEqual(['comprehension', 'generation']);
  });

  // F32 base, adapters and cache: float32 rounding only; the native test
  // (test_phi3_hlora.cpp) measures 2.3e-7 to 4.8e-7 and explains the bound
  for (const plugin of [undefined, 'comprehension', 'generation'] as const) {
    it(`logits with ${plugin ?? 'no plugin'} match transformers within 1e-4 relative`, async () => {
      const ref = golden(plugin ? `base.f32.${plugin}.f32` : 'base.f32.none');
      const got = await m.evaluate(ref.tokens, { plugin });
      expect(got.length).toBe(ref.logits.length);
      expect(maxRel(got, ref.logits)).toBeLessThan(1e-4);
    });
  }

  it('switching plugins between requests gives what a fresh load gives, prefix and all', async () => {
    const { tokens } = golden('base.f32.none');
    const prompt = tokens.slice(0, 8);
    const longer = tokens.slice(0, 10); // shares the first 8 tokens with `prompt`
    const opts = { maxTokens: 6, stopTokens: [], temperature: 0 };
    // one model: generation, then comprehension and none on a prompt with the same prefix
    const seq = [
      await collect(m.generate(prompt, { ...opts, plugin: 'generation' })),
      await collect(m.generate(longer, { ...opts, plugin: 'comprehension' })),
      await collect(m.generate(longer, opts)),
      await collect(m.generate(prompt, { ...opts, plugin: 'generation' })),
    ];
    // fresh models, one per request
    const fresh = async (plugin: string | undefined, p: number[]): Promise<number[]> => {
      const f = await LanguageModel.load(file('base.f32'), { kvType: 'f32', threads: 2, plugins: plugin ? { [plugin]: file(`${plugin}.f32`) } : {} });
      try {
        return await collect(f.generate(p, { ...opts, plugin }));
      } finally {
        f.dispose();
      }
    };
    expect(seq[0]).toEqual(await fresh('generation', prompt));
    expect(seq[1]).toEqual(await fresh('comprehension', longer));
    expect(seq[2]).toEqual(await fresh(undefined, longer));
    expect(seq[3]).toEqual(seq[0]);
    // the plugins answer differently here, so a prefix carried across them would show
    expect(seq[1]).not.toEqual(seq[2]);
  });

  it('refuses an unknown plugin naming the option and the value', async () => {
    const { tokens } = golden('base.f32.none');
    await expect(m.evaluate(tokens, { plugin: 'vision' })).rejects.toThrow('plugin must be one of "comprehension", "generation", got "vision"');
    await expect(collect(m.generate(tokens, { plugin: 3 as unknown as string }))).rejects.toMatchObject({ code: 'ERR_INVALID_ARG' });
  });

  it('refuses a second plugin under a name in use', async () => {
    await expect(m.loadPlugin('generation', file('generation.f16'))).rejects.toThrow('a plugin named "generation" is loaded already');
  });

  it('refuses a file that is not a plugin, naming it, and keeps working', async () => {
    const err = await m.loadPlugin('bad', file('base.f32')).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(HealthGPTError);
    expect((err as Error).message).toContain("base.f32.gguf: architecture is 'phi3', expected 'hlora'");
    expect(m.plugins).toEqual(['comprehension', 'generation']);
    const ref = golden('base.f32.generation.f32');
    expect(maxRel(await m.evaluate(ref.tokens, { plugin: 'generation' }), ref.logits)).toBeLessThan(1e-4);
  });
});

describe('plugin loading options', () => {
  it('a plugin loaded later, re-encoded as q8_0, stays near the reference', async () => {
    const m = await LanguageModel.load(file('base.f32'), { kvType: 'f32', threads: 2 });
    try {
      expect(m.plugins).toEqual([]);
      await m.loadPlugin('gen', file('generation.f32'), { adapterType: 'q8_0' });
      const ref = golden('base.f32.generation.f32');
      // 8-bit adapters and activations on the B g term: 1.5e-2 measured natively, bound 3e-2
      expect(maxRel(await m.evaluate(ref.tokens, { plugin: 'gen' }), ref.logits)).toBeLessThan(3e-2);
    } finally {
      m.dispose();
    }
  });

  it('validates plugin options naming the option', async () => {
    await expect(LanguageModel.load(file('base.f32'), { plugins: { com: '' } })).rejects.toThrow('plugins.com must be a file path');
    await expect(LanguageModel.load(file('base.f32'), { plugins: { com: file('comprehension.f32') }, pluginOptions: { adapterType: 'q4_0' as 'q8_0' } })).rejects.toThrow(
      'pluginOptions.adapterType must be one of "f32", "f16", "bf16", "q8_0", got q4_0',
    );
    const err = await LanguageModel.load(file('base.f32'), { plugins: { com: file('missing') } }).catch((e: unknown) => e);
    expect((err as Error).message).toContain('missing.gguf');
  });

  it('a model without plugins refuses the plugin option', async () => {
    const m = await LanguageModel.load(file('base.f32'), { threads: 1 });
    try {
      await expect(m.evaluate([1, 2, 3], { plugin: 'comprehension' })).rejects.toThrow('plugin must be omitted (no plugin is loaded), got "comprehension"');
    } finally {
      m.dispose();
    }
  });
});

describe('random plugins (lib/synthetic/hlora)', () => {
  it('load over a random base of their shape, in f32, f16 and bf16, and change its logits', async () => {
    const dir = tempDir();
    const base = join(dir, 'tiny.gguf');
    await writeRandomPhi3(base, PHI3_TINY);
    const spec = { name: 'generation', rank: 16, alpha: 32, experts: 4 };
    for (const type of ['f32', 'f16', 'bf16'] as const) await writeRandomHLoraPlugin(join(dir, `${type}.gguf`), PHI3_TINY, spec, type);
    const m = await LanguageModel.load(base, { threads: 2, kvType: 'f32', plugins: { f32: join(dir, 'f32.gguf'), f16: join(dir, 'f16.gguf'), bf16: join(dir, 'bf16.gguf') } });
    try {
      const tokens = [5, 17, 300, 42, 7];
      const none = await m.evaluate(tokens);
      const f32 = await m.evaluate(tokens, { plugin: 'f32' });
      expect(f32.every(Number.isFinite)).toBe(true);
      expect(maxRel(f32, none)).toBeGreaterThan(0.05); // the plugin does something
      // the same random values rounded to f16 / bf16: the rounding of values and activations
      // (2^-11 / 2^-8 relative each) measured 5.0e-4 / 4.9e-3 on the golden fixtures: 3e-3 / 3e-2
      expect(maxRel(await m.evaluate(tokens, { plugin: 'f16' }), f32)).toBeLessThan(3e-3);
      expect(maxRel(await m.evaluate(tokens, { plugin: 'bf16' }), f32)).toBeLessThan(3e-2);
    } finally {
      m.dispose();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
