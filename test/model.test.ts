// The language model through the TypeScript API: logits against transformers' golden vectors,
// greedy generation consistent with a full evaluation, prefix reuse, queuing of concurrent
// requests, cancellation, dispose, and option validation.
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HealthGPTError } from '../lib/errors.js';
import { LanguageModel, type FinishReason } from '../lib/model/model.js';
import { imageTokenMask } from '../lib/generate/image-tokens.js';
import { embeddingRows } from '../lib/model/scheduler.js';
import { Sampler, softmax } from '../lib/model/sampler.js';
import { native, type BatchSegment, type NativeModel } from '../lib/native.js';
import { root, maxRel, readLogits } from './helpers.js';

const fixtures = join(root, 'test', 'fixtures', 'phi3');
const golden = (name: string) => readLogits(join(fixtures, `${name}.logits`));

const argmax = (row: Float32Array): number => row.reduce((best, v, i) => (v > row[best] ? i : best), 0);

describe('LanguageModel on transformers golden vectors', () => {
  // F32 weights and cache: float32 rounding only (the native test explains the bound)
  for (const [name, kvType, tol] of [
    ['gqa.f32', 'f32', 1e-4],
    ['swa.f32', 'f32', 1e-4],
    ['gqa.q8_0', 'f16', 3e-2],
  ] as const) {
    it(`${name} (kv ${kvType}): logits at every position within ${tol} relative`, async () => {
      const ref = golden(name);
      const m = await LanguageModel.load(join(fixtures, `${name}.gguf`), { kvType, threads: 2 });
      try {
        const got = await m.evaluate(ref.tokens);
        expect(got.length).toBe(ref.logits.length);
        expect(maxRel(got, ref.logits)).toBeLessThan(tol);
        for (let t = 0; t < ref.tokens.length; t++) expect(argmax(got.subarray(t * ref.nVocab, (t + 1) * ref.nVocab))).toBe(argmax(ref.logits.subarray(t * ref.nVocab, (t + 1) * ref.nVocab)));
      } finally {
        m.dispose();
      }
    });
  }
});

describe('LanguageModel requests', () => {
  let m: LanguageModel;
  const ref = golden('gqa.f32');
  const prompt = ref.tokens.slice(0, 5);
  beforeAll(async () => {
    m = await LanguageModel.load(join(fixtures, 'gqa.f32.gguf'), { kvType: 'f32', threads: 2 });
  });
  afterAll(() => m.dispose());

  const collect = async (it: AsyncGenerator<number, unknown, void>): Promise<number[]> => {
    const out: number[] = [];
    for await (const t of it) out.push(t);
    return out;
  };
  /** the tokens and the generator's return value: why it ended */
  const run = async (it: AsyncGenerator<number, FinishReason, void>): Promise<{ tokens: number[]; finish: FinishReason }> => {
    const tokens: number[] = [];
    for (;;) {
      const s = await it.next();
      if (s.done) return { tokens, finish: s.value };
      tokens.push(s.value);
    }
  };

  it('greedy decode (KV cache) picks the argmax of a full evaluation at every step', async () => {
    const { tokens: gen, finish } = await run(m.generate(prompt, { maxTokens: 20, stopTokens: [] }));
    expect(gen.length).toBe(20);
    expect(finish).toBe('length');
    const all = [...prompt, ...gen];
    const logits = await m.evaluate(all);
    const V = m.info.nVocab;
    for (let i = 0; i < gen.length; i++) expect(argmax(logits.subarray((prompt.length - 1 + i) * V, (prompt.length + i) * V))).toBe(gen[i]);
  });

  it("greedy picks are the engine's (no logits row comes to JavaScript) and equal the sampler's", async () => {
    const handle = (m as unknown as { handle: NativeModel }).handle;
    const batches: BatchSegment[][] = [];
    const evalBatch = handle.evalBatch.bind(handle);
    // the prototype's method is read-only: an own property of the instance shadows it
    Object.defineProperty(handle, 'evalBatch', {
      configurable: true,
      value: (segments: BatchSegment[]) => {
        batches.push(segments);
        return evalBatch(segments);
      },
    });
    try {
      const engine = await collect(m.generate(prompt, { maxTokens: 12, stopTokens: [] }));
      // the prompt's last row and 11 decode rows, each picked in the whole vocabulary
      const picks = batches.flat().filter((s) => s.greedy);
      expect(picks.length).toBe(12);
      expect(picks.every((s) => s.greedy?.lo === 0 && s.greedy.hi === m.info.nVocab)).toBe(true);
      batches.length = 0;
      // a mask without a range keeps the sampler in JavaScript: the same tokens
      const sampler = await collect(m.generate(prompt, { maxTokens: 12, stopTokens: [], logitMask: () => {} }));
      expect(batches.flat().some((s) => s.greedy)).toBe(false);
      expect(sampler).toEqual(engine);
      // a repetition penalty or temperature needs the row
      batches.length = 0;
      await collect(m.generate(prompt, { maxTokens: 3, stopTokens: [], repeatPenalty: 1.1 }));
      await collect(m.generate(prompt, { maxTokens: 3, stopTokens: [], temperature: 0.7 }));
      expect(batches.flat().some((s) => s.greedy)).toBe(false);
    } finally {
      delete (handle as Partial<NativeModel>).evalBatch;
    }
  });

  it('an image mask picked in the engine keeps its range, forces the end, and refuses a token past it as before', async () => {
    const ids = { start: 0, end: 5, firstIndex: 10, codebookSize: 4, pixelNewline: undefined };
    const got: number[] = [];
    // a request beside it (waiting for the slot or decoding with it) is none of its business
    const masked = (async () => {
      for await (const t of m.generate(prompt, { maxTokens: 6, stopTokens: [], logitMask: imageTokenMask(ids, prompt.length, 2) })) got.push(t);
    })().catch((e: unknown) => e);
    const beside = collect(m.generate(prompt, { maxTokens: 4, stopTokens: [] }));
    const err = await masked;
    expect((await beside).length).toBe(4);
    // two image tokens, the forced end, then a fourth the mask refuses (not the scheduler's business)
    expect(got.length).toBe(3);
    expect(got.slice(0, 2).every((t) => t >= 10 && t < 14)).toBe(true);
    expect(got[2]).toBe(5);
    expect(err).toMatchObject({ code: 'ERR_SAMPLING' });
    expect((err as Error).message).toContain('image token 3 is outside 0..2');
    // the same tokens through the JavaScript sampler (the mask without its range)
    const plain = imageTokenMask(ids, prompt.length, 2);
    const js = await collect(m.generate(prompt, { maxTokens: 3, stopTokens: [], logitMask: (l, p) => plain(l, p) }));
    expect(js).toEqual(got);
  });

  it('a second request sharing the prompt prefix gives what a fresh model gives', async () => {
    const other = ref.tokens.slice(0, 8);
    const a = await collect(m.generate(other, { maxTokens: 6, stopTokens: [] }));
    const fresh = await LanguageModel.load(join(fixtures, 'gqa.f32.gguf'), { kvType: 'f32', threads: 2 });
    const b = await collect(fresh.generate(other, { maxTokens: 6, stopTokens: [] }));
    fresh.dispose();
    expect(a).toEqual(b);
  });

  it('concurrent requests queue instead of interleaving in the cache', async () => {
    const p1 = ref.tokens.slice(0, 4);
    const p2 = ref.tokens.slice(2, 9);
    const alone1 = await collect(m.generate(p1, { maxTokens: 8, stopTokens: [] }));
    const alone2 = await collect(m.generate(p2, { maxTokens: 8, stopTokens: [] }));
    const [c1, c2] = await Promise.all([collect(m.generate(p1, { maxTokens: 8, stopTokens: [] })), collect(m.generate(p2, { maxTokens: 8, stopTokens: [] }))]);
    expect(c1).toEqual(alone1);
    expect(c2).toEqual(alone2);
  });

  it('an iterator dropped after its first token (no return()) does not hold the model', async () => {
    const dropped = m.generate(prompt, { maxTokens: 12, stopTokens: [] });
    const first = await dropped.next();
    expect(first.done).toBe(false);
    // its producer runs to its end and lets go: the next request is served, and equals a fresh run
    const next = await collect(m.generate(prompt, { maxTokens: 12, stopTokens: [] }));
    expect(next[0]).toBe(first.value);
    expect(next.length).toBe(12);
  });

  it('an AbortSignal stops within one token and leaves the model usable', async () => {
    const ac = new AbortController();
    const got: number[] = [];
    await expect(
      (async () => {
        for await (const t of m.generate(prompt, { maxTokens: 30, stopTokens: [], signal: ac.signal })) {
          got.push(t);
          if (got.length === 3) ac.abort();
        }
      })(),
    ).rejects.toMatchObject({ code: 'ABORT_ERR' });
    expect(got.length).toBe(3);
    const again = await collect(m.generate(prompt, { maxTokens: 3, stopTokens: [] }));
    expect(again.length).toBe(3);
  });

  it('stops at a stop token without emitting it, and at the end of the context', async () => {
    const free = await collect(m.generate(prompt, { maxTokens: 10, stopTokens: [] }));
    const stopAt = free[4];
    const first = free.indexOf(stopAt);
    const stopped = await run(m.generate(prompt, { maxTokens: 10, stopTokens: [stopAt] }));
    expect(stopped.tokens).toEqual(free.slice(0, first));
    expect(stopped.finish).toBe('stop');
    const nCtx = m.info.nCtx;
    const long = await run(m.generate(prompt, { maxTokens: 1000, stopTokens: [] }));
    expect(prompt.length + long.tokens.length).toBe(nCtx + 1); // the last one is sampled, never fed
    expect(long.finish).toBe('context');
  });

  it('refuses bad input with errors naming the option or token', async () => {
    await expect(m.evaluate([1, 2, 99999])).rejects.toThrow(/token 99999 at index 2/);
    await expect(m.evaluate(new Array(m.info.nCtx + 1).fill(1))).rejects.toMatchObject({ code: 'ERR_CONTEXT' });
    await expect(collect(m.generate(prompt, { temperature: -1 }))).rejects.toThrow(/temperature must be a number >= 0, got -1/);
    await expect(collect(m.generate(prompt, { topP: 0 }))).rejects.toThrow(/topP must be in \(0, 1\], got 0/);
    await expect(LanguageModel.load(join(fixtures, 'gqa.f32.gguf'), { kvType: 'q4' as 'f16' })).rejects.toThrow(/kvType must be one of f16, f32, q8_0, got q4/);
    // q8_0 blocks are 32 values: a model whose heads are shorter says so (and names the way out)
    const short = LanguageModel.load(join(root, 'test', 'fixtures', 'healthgpt', 'lm.gguf'), { kvType: 'q8_0' });
    await expect(short).rejects.toMatchObject({ code: 'ERR_UNSUPPORTED' });
    await expect(short).rejects.toThrow(/q8_0 KV cache needs a head size that is a multiple of 32; this model's is 16 \(use f16\)/);
    await expect(LanguageModel.load(join(root, 'test', 'fixtures', 'gguf', 'pygguf.gguf'))).rejects.toBeInstanceOf(HealthGPTError);
    // the thread pool's limit, and the addon's own check of numbers past a C int (it wrapped
    // 4294967297 to 1), for callers that reach it without LanguageModel's validation
    await expect(LanguageModel.load(join(fixtures, 'gqa.f32.gguf'), { threads: 5000 })).rejects.toThrow(/threads must be an integer in 0\.\.1024, got 5000/);
    await expect(async () => native().Model.load(join(fixtures, 'gqa.f32.gguf'), { contextSize: 2 ** 32 + 1 })).rejects.toThrow(/contextSize must be an integer in -2147483648\.\.2147483647/);
    await expect(async () => native().Model.load(join(fixtures, 'gqa.f32.gguf'), { threads: 5000 })).rejects.toThrow(/n_threads 5000 is more than 1024/);
  });

  it('calls after dispose throw ERR_DISPOSED', async () => {
    const d = await LanguageModel.load(join(fixtures, 'gqa.f32.gguf'));
    d.dispose();
    expect(() => d.info).toThrow(/disposed/);
    await expect(d.evaluate([1])).rejects.toMatchObject({ code: 'ERR_DISPOSED' });
  });
});

describe('Sampler', () => {
  const logits = () => Float32Array.from([1, 3, 2, 0.5, 2.9]);

  it('greedy takes the argmax; topK 1 at any temperature is greedy', () => {
    expect(new Sampler().sample(logits(), [])).toBe(1);
    expect(new Sampler({ temperature: 5, topK: 1, seed: 3 }).sample(logits(), [])).toBe(1);
  });

  it('the same seed reproduces a run, and draws follow the softmax', () => {
    const draw = (seed: number) => {
      const s = new Sampler({ temperature: 1, seed });
      return Array.from({ length: 4000 }, () => s.sample(logits(), []));
    };
    expect(draw(7)).toEqual(draw(7));
    const counts = new Array(5).fill(0);
    for (const t of draw(11)) counts[t]++;
    const p = softmax(logits());
    for (let i = 0; i < 5; i++) expect(Math.abs(counts[i] / 4000 - p[i])).toBeLessThan(0.03);
  });

  it('repetition penalty, min-p, top-p and the logit mask', () => {
    expect(new Sampler({ repeatPenalty: 2 }).sample(logits(), [1])).toBe(4); // 3 -> 1.5 < 2.9
    const s = new Sampler({ temperature: 1, minP: 0.5, seed: 1 });
    for (let i = 0; i < 200; i++) expect([1, 4]).toContain(s.sample(logits(), []));
    const tp = new Sampler({ temperature: 1, topP: 0.3, seed: 1 });
    for (let i = 0; i < 200; i++) expect(tp.sample(logits(), [])).toBe(1);
    const masked = new Sampler({ logitMask: (l) => l.fill(-Infinity, 0, 2) });
    expect(masked.sample(logits(), [])).toBe(4);
    expect(() => new Sampler({ logitMask: (l) => l.fill(-Infinity) }).sample(logits(), [])).toThrow(/masked out/);
  });
});

describe('LanguageModel gpu option', () => {
  const file = join(fixtures, 'gqa.f32.gguf');

  it('false (the default) keeps the CPU; auto falls back to it saying why when CUDA cannot be used', async () => {
    const off = await LanguageModel.load(file, { gpu: false, threads: 1 });
    expect(off.info.backend).toBe('cpu');
    off.dispose();
    const plain = await LanguageModel.load(file, { threads: 1 });
    expect(plain.info.backend).toBe('cpu');
    plain.dispose();
    const auto = await LanguageModel.load(file, { gpu: 'auto', threads: 1 });
    // a CPU-only engine or a machine without a GPU says why; a CUDA machine names its device
    expect(auto.info.backend).toMatch(/^(cpu \((this engine was built without the CUDA backend|no CUDA device.*|cuda: .*)\)|cuda: .+)$/);
    auto.dispose();
  });

  it("'cuda' fails with the reason when there is no CUDA, and bad values are refused", async () => {
    const probe = await LanguageModel.load(file, { gpu: 'auto', threads: 1 });
    const onCuda = probe.info.backend.startsWith('cuda: ');
    probe.dispose();
    if (!onCuda) await expect(LanguageModel.load(file, { gpu: 'cuda' })).rejects.toThrow(/gpu 'cuda': /);
    await expect(LanguageModel.load(file, { gpu: 'yes' as never })).rejects.toMatchObject({ code: 'ERR_INVALID_ARG' });
  });
});

describe('embeddingRows (a step hands its embedding rows to the engine)', () => {
  it('gives a view when the rows lie back to back in one buffer, else a copy of them in order', () => {
    const image = Float32Array.from({ length: 12 }, (_, i) => i);
    const rows = [image.subarray(3, 6), image.subarray(6, 9), image.subarray(9, 12)];
    const view = embeddingRows(rows);
    expect(view.buffer).toBe(image.buffer);
    expect([...view]).toEqual([3, 4, 5, 6, 7, 8, 9, 10, 11]);
    // out of order, from two buffers, or with a gap: copied
    for (const parts of [
      [rows[1]!, rows[0]!],
      [rows[0]!, Float32Array.of(-1, -2, -3)],
      [rows[0]!, rows[2]!],
    ]) {
      const got = embeddingRows(parts);
      expect(got.buffer).not.toBe(image.buffer);
      expect([...got]).toEqual(parts.flatMap((r) => [...r]));
    }
  });
});
