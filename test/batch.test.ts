// Concurrent requests batched across a model's sequences (lib/model/scheduler.ts): greedy tokens
// and log-probabilities of requests run together, with different plugins, equal each run alone
// on a fresh one-sequence model, bit for bit; an abort mid-batch leaves the others as they were;
// requests beyond the slots wait and then run; prefix reuse picks the slot that holds the
// prompt. Then the HealthGPT session: an answer and two image generations at once against each
// alone, and `healthgpt generate` with two inputs. On the tiny reference HealthGPT
// (test/fixtures/healthgpt: a phi3 with both plugins, 2048 positions).
import { copyFileSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TokenLogprobs } from '../lib/model/logprobs.js';
import { LanguageModel, type FinishReason, type GenerateOptions } from '../lib/model/model.js';
import { HealthGPT, type HealthGPTLoadOptions } from '../lib/session/healthgpt.js';
import { M3_COMPREHENSION, writeRandomHLoraPlugin } from '../lib/synthetic/hlora.js';
import { PHI3_TINY, writeRandomPhi3 } from '../lib/synthetic/phi3.js';
import { cli, root, tempDir } from './helpers.js';

const dir = join(root, 'test', 'fixtures', 'healthgpt');
const file = (name: string): string => join(dir, name);
const plugins = { comprehension: file('com.gguf'), generation: file('gen.gguf') };
const refIndices = [...new Int32Array(new Uint8Array(readFileSync(file('gen.indices.i32'))).buffer)];

/** Token ids in 3..389 from a seed (the vocabulary's specials stay out). */
function prompt(length: number, seed: number): number[] {
  let x = seed;
  return Array.from({ length }, () => {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    return 3 + (x % 387);
  });
}

interface Run {
  tokens: number[];
  logprobs: TokenLogprobs[];
  finish: FinishReason;
}

async function run(m: LanguageModel, p: number[], o: GenerateOptions, onToken?: (n: number) => void): Promise<Run> {
  const logprobs: TokenLogprobs[] = [];
  const gen = m.generate(p, { stopTokens: [], topLogprobs: 3, onLogprobs: (e) => logprobs.push(e), ...o });
  const tokens: number[] = [];
  for (;;) {
    const s = await gen.next();
    if (s.done) return { tokens, logprobs, finish: s.value };
    tokens.push(s.value);
    onToken?.(tokens.length);
  }
}

const load = (sequences: number): Promise<LanguageModel> => LanguageModel.load(file('lm.gguf'), { threads: 2, kvType: 'f32', sequences, plugins });

/** Each request alone on a fresh one-sequence model. */
async function solo(requests: [number[], GenerateOptions][]): Promise<Run[]> {
  const out: Run[] = [];
  for (const [p, o] of requests) {
    const m = await load(1);
    try {
      out.push(await run(m, p, o));
    } finally {
      m.dispose();
    }
  }
  return out;
}

describe('LanguageModel: concurrent requests in one batch', () => {
  // a base request, a comprehension one, a generation one (a 600-token prompt: three chunks, so
  // prompt chunks ride along with other requests' decoding), and a second comprehension one
  const requests: [number[], GenerateOptions][] = [
    [prompt(20, 1), { maxTokens: 24 }],
    [prompt(40, 2), { maxTokens: 30, plugin: 'comprehension' }],
    [prompt(600, 3), { maxTokens: 16, plugin: 'generation' }],
    [prompt(9, 4), { maxTokens: 28, plugin: 'comprehension' }],
  ];
  let alone: Run[];
  let m: LanguageModel;
  beforeAll(async () => {
    alone = await solo(requests);
    m = await load(4);
  });
  afterAll(() => m?.dispose());

  it('greedy tokens and logprobs equal each request run alone, bit for bit, plugins mixed', async () => {
    expect(m.info.nSeq).toBe(4);
    let most = 0;
    const together = await Promise.all(requests.map(([p, o]) => run(m, p, o, () => (most = Math.max(most, m.load.running)))));
    expect(most).toBe(4); // they did run together
    for (const [i, r] of together.entries()) {
      expect(r.finish).toBe('length');
      expect(r.tokens).toEqual(alone[i]!.tokens);
      expect(r.logprobs).toEqual(alone[i]!.logprobs);
    }
    // the plugins answer differently: a row run under another plugin would show
    expect(alone[1]!.tokens).not.toEqual((await solo([[requests[1]![0], { maxTokens: 30 }]]))[0]!.tokens);
  });

  it('aborting one request mid-batch stops it within one token and leaves the others as alone', async () => {
    const ac = new AbortController();
    let seen = 0;
    const aborted = run(m, requests[1]![0], { ...requests[1]![1], signal: ac.signal }, (n) => {
      seen = n;
      if (n === 5) ac.abort();
    });
    const others = Promise.all([0, 2, 3].map((i) => run(m, requests[i]![0], requests[i]![1])));
    await expect(aborted).rejects.toMatchObject({ code: 'ABORT_ERR' });
    expect(seen).toBe(5);
    const [a, b, c] = await others;
    expect([a!.tokens, b!.tokens, c!.tokens]).toEqual([alone[0]!.tokens, alone[2]!.tokens, alone[3]!.tokens]);
    expect([a!.logprobs, b!.logprobs, c!.logprobs]).toEqual([alone[0]!.logprobs, alone[2]!.logprobs, alone[3]!.logprobs]);
    expect(m.load).toEqual({ running: 0, waiting: 0 });
  });

  it('more requests than slots: the rest wait in order, then run, each as alone', async () => {
    const two = await load(2);
    try {
      let atFirst: { running: number; waiting: number } | undefined;
      // when the first token comes, two run and two wait (each takes 16 tokens or more)
      const together = await Promise.all(requests.map(([p, o], i) => run(two, p, o, (n) => i === 0 && n === 1 && (atFirst = two.load))));
      expect(atFirst).toEqual({ running: 2, waiting: 2 });
      expect(two.load).toEqual({ running: 0, waiting: 0 });
      for (const [i, r] of together.entries()) expect(r.tokens).toEqual(alone[i]!.tokens);
    } finally {
      two.dispose();
    }
  });

  it('a follow-up reuses the slot holding its prefix (and gives what a fresh model gives)', async () => {
    const long = prompt(300, 9);
    const follow = [...long, ...prompt(5, 10)];
    const two = await load(2);
    try {
      await run(two, long, { maxTokens: 2, plugin: 'comprehension' });
      await run(two, prompt(30, 11), { maxTokens: 2, plugin: 'comprehension' }); // takes the other, empty slot
      let before = two.evaluated;
      const reused = await run(two, follow, { maxTokens: 8, plugin: 'comprehension' });
      // the 5 new prompt positions and 7 of the 8 tokens (the last is sampled, never fed)
      expect(two.evaluated - before).toBe(5 + 7);
      expect(reused.tokens).toEqual((await solo([[follow, { maxTokens: 8, plugin: 'comprehension' }]]))[0]!.tokens);
      // the same prompt under another plugin shares no keys and values: it is evaluated in full
      before = two.evaluated;
      const other = await run(two, follow, { maxTokens: 8 });
      expect(two.evaluated - before).toBe(305 + 7);
      expect(other.tokens).toEqual((await solo([[follow, { maxTokens: 8 }]]))[0]!.tokens);
    } finally {
      two.dispose();
    }
  });

  it('dispose() rejects every request in flight and waiting with ERR_DISPOSED', async () => {
    const d = await load(1);
    // disposed at the first token of the first request: it runs, the other two wait
    const runs = requests.slice(0, 3).map(([p, o], i) => run(d, p, { ...o, maxTokens: 200 }, () => i === 0 && d.dispose()));
    for (const r of runs) await expect(r).rejects.toMatchObject({ code: 'ERR_DISPOSED' });
  });

  it('refuses a bad sequences option by name', async () => {
    await expect(LanguageModel.load(file('lm.gguf'), { sequences: 0 })).rejects.toThrow(/sequences must be an integer in 1\.\.64, got 0/);
    await expect(LanguageModel.load(file('lm.gguf'), { sequences: 1.5 })).rejects.toThrow(/sequences must be an integer/);
  });
});

describe('a q8_0 KV cache: batched requests equal each alone', () => {
  // the fixture's heads (16 values) are too short for q8_0 blocks: a random phi3 with heads of
  // 64 and two query heads a kv head, and a random comprehension plugin
  const shape = { ...PHI3_TINY, kvHeads: 2 };
  let tmp: string;
  const opts = (sequences: number, kvType: 'q8_0' | 'f32' = 'q8_0') => ({ threads: 2, contextSize: 512, sequences, kvType, plugins: { comprehension: join(tmp, 'com.gguf') } });
  beforeAll(async () => {
    tmp = tempDir();
    await writeRandomPhi3(join(tmp, 'lm.gguf'), shape, 77);
    await writeRandomHLoraPlugin(join(tmp, 'com.gguf'), shape, { ...M3_COMPREHENSION, rank: 8, alpha: 16 }, 'f32');
  });
  afterAll(() => rmSync(tmp, { recursive: true, force: true }));

  it("greedy tokens and logprobs bit for bit, a prompt in chunks beside decode rows; not the f32 cache's numbers", async () => {
    const reqs: [number[], GenerateOptions][] = [
      [prompt(20, 5), { maxTokens: 20 }],
      [prompt(300, 6), { maxTokens: 12, plugin: 'comprehension' }],
      [prompt(9, 7), { maxTokens: 24, plugin: 'comprehension' }],
    ];
    const alone: Run[] = [];
    for (const [p, o] of reqs) {
      const one = await LanguageModel.load(join(tmp, 'lm.gguf'), opts(1));
      try {
        alone.push(await run(one, p, o));
      } finally {
        one.dispose();
      }
    }
    const m = await LanguageModel.load(join(tmp, 'lm.gguf'), opts(3));
    const f32 = await LanguageModel.load(join(tmp, 'lm.gguf'), opts(1, 'f32'));
    try {
      let most = 0;
      const together = await Promise.all(reqs.map(([p, o]) => run(m, p, o, () => (most = Math.max(most, m.load.running)))));
      expect(most).toBe(3);
      for (const [i, r] of together.entries()) {
        expect(r.tokens).toEqual(alone[i]!.tokens);
        expect(r.logprobs).toEqual(alone[i]!.logprobs);
      }
      // the cache type took: the f32 cache's log-probabilities are others (close, not equal)
      const exact = await run(f32, reqs[0]![0], reqs[0]![1]);
      expect(exact.logprobs[0]!.logprob).not.toBe(alone[0]!.logprobs[0]!.logprob);
      expect(exact.logprobs[0]!.logprob).toBeCloseTo(alone[0]!.logprobs[0]!.logprob, 1);
    } finally {
      m.dispose();
      f32.dispose();
    }
  });
});

describe('HealthGPT: answers and images generated together', () => {
  const options = (sequences: number): HealthGPTLoadOptions => ({ model: file('lm.gguf'), vision: file('clip.gguf'), plugins, vqgan: file('vqgan.gguf'), threads: 2, kvType: 'f32', sequences });
  const question = (JSON.parse(readFileSync(file('manifest.json'), 'utf8')) as { question: string }).question;

  it('an answer and two images at once equal each alone; images: [...] gives one result per input', async () => {
    // each alone on a fresh one-sequence session
    const alone = async <T>(fn: (hg: HealthGPT) => Promise<T>): Promise<T> => {
      const hg = await HealthGPT.load(options(1));
      try {
        return await fn(hg);
      } finally {
        hg.dispose();
      }
    };
    const soloAnswer = await alone((hg) => hg.answer({ image: file('input.png'), question, maxTokens: 12 }));
    const soloImage = await alone((hg) => hg.generateImage({ task: 'reconstruct', image: file('input.png') }));
    expect([...soloImage.indices]).toEqual(refIndices);

    const hg = await HealthGPT.load(options(3));
    try {
      let ticks = 0;
      let total = 0;
      const [answer, images] = await Promise.all([
        hg.answer({ image: file('input.png'), question, maxTokens: 12 }),
        hg.generateImage({
          task: 'reconstruct',
          images: [file('input.png'), readFileSync(file('input.png'))],
          onToken: (done, all) => {
            ticks = done;
            total = all;
          },
        }),
      ]);
      expect(answer.tokens).toEqual(soloAnswer.tokens);
      expect(images.length).toBe(2);
      for (const r of images) {
        expect([...r.indices]).toEqual([...soloImage.indices]);
        expect(Buffer.from(r.png).equals(Buffer.from(soloImage.png))).toBe(true);
      }
      expect([ticks, total]).toEqual([2048, 2048]);
      await expect(hg.generateImage({ task: 'reconstruct', images: [] })).rejects.toThrow(/images must be a non-empty array/);
      await expect(hg.generateImage({ task: 'reconstruct', image: file('input.png'), images: [file('input.png')] })).rejects.toThrow(/image or images, not both/);
    } finally {
      hg.dispose();
    }
  }, 180_000);

  it('healthgpt generate -i a -i b -o folder/ writes one PNG per input, each the reference image', async () => {
    const tmp = tempDir();
    const b = join(tmp, 'second.png');
    copyFileSync(file('input.png'), b);
    const out = join(tmp, 'out');
    const r = cli([
      'generate',
      '-m',
      file('lm.gguf'),
      '--vision',
      file('clip.gguf'),
      '--threads',
      '2',
      '--kv-type',
      'f32',
      '--plugin-gen',
      file('gen.gguf'),
      '--vqgan',
      file('vqgan.gguf'),
      '--task',
      'reconstruct',
      '-i',
      file('input.png'),
      '-i',
      b,
      '-o',
      out,
      '--json',
    ]);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    const j = JSON.parse(r.stdout) as { output: string; indices: number[] }[];
    expect(j.map((x) => x.output)).toEqual([join(out, 'input.png'), join(out, 'second.png')]);
    for (const x of j) {
      expect(x.indices).toEqual(refIndices);
      expect(readFileSync(x.output).subarray(1, 4).toString()).toBe('PNG');
    }
  }, 180_000);
});
