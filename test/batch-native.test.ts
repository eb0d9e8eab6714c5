// The native model's several sequences (src/model_binding.cpp: `sequences`, evalBatch,
// seqNPast, seqClear): a batch of segments under different plugins gives each segment's
// logits as evaluating it alone does, bit for bit; bad batches are refused naming the
// segment, and the model goes on working. The full check (every kernel level, greedy
// decoding, mixed prompt chunks and decode rows) is native/tests/test_batch.cpp.
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { native, type NativeModel } from '../lib/native.js';
import { root } from './helpers.js';

const fixtures = join(root, 'test', 'fixtures', 'phi3-hlora');
const file = (name: string): string => join(fixtures, `${name}.gguf`);
const ids = (n: number, salt: number): Int32Array => Int32Array.from({ length: n }, (_, i) => (i * 37 + salt * 11 + 5) % 250);

describe('native model with several sequences', () => {
  let m: NativeModel;
  let solo: NativeModel;
  let com: number;
  let gen: number;
  beforeAll(async () => {
    const opts = { contextSize: 32, threads: 2, kvType: 0 };
    m = await native().Model.load(file('base.f32'), { ...opts, sequences: 4 });
    solo = await native().Model.load(file('base.f32'), opts);
    for (const model of [m, solo]) {
      com = (await model.loadPlugin(file('comprehension.f32'))).id;
      gen = (await model.loadPlugin(file('generation.f32'))).id;
    }
  });
  afterAll(() => {
    m.dispose();
    solo.dispose();
  });

  it('reports its slots', () => {
    expect(m.info().nSeq).toBe(4);
    expect(solo.info().nSeq).toBe(1);
    expect(m.seqNPast(3)).toBe(0);
  });

  it('gives every segment the logits it gets alone, in segment order', async () => {
    const a = ids(6, 1);
    const b = ids(4, 2);
    const c = ids(5, 3);
    const got = await m.evalBatch([
      { seq: 2, startPos: 0, tokens: a, plugin: gen, logits: 1 },
      { seq: 0, startPos: 0, tokens: b, logits: 0 },
      { seq: 3, startPos: 0, tokens: c, plugin: com, logits: 2 },
    ]);
    const V = m.info().nVocab;
    expect(got.length).toBe(6 * V);
    expect(m.seqNPast(2)).toBe(6);
    expect(m.seqNPast(0)).toBe(4);
    expect(m.seqNPast(3)).toBe(5);
    expect(m.seqNPast(1)).toBe(0);
    expect(Buffer.from(got.subarray(0, V).buffer.slice(0, V * 4))).toEqual(Buffer.from((await solo.eval(a, 0, false, gen)).buffer));
    expect(Buffer.from(got.slice(V).buffer)).toEqual(Buffer.from((await solo.eval(c, 0, true, com)).buffer));

    // a decode row continuing slot 2 next to a new prompt on slot 1
    const next = Int32Array.of(17);
    const step = await m.evalBatch([
      { seq: 1, startPos: 0, tokens: b, plugin: com, logits: 1 },
      { seq: 2, startPos: 6, tokens: next, plugin: gen, logits: 1 },
    ]);
    await solo.eval(a, 0, false, gen);
    expect(Buffer.from(step.slice(V).buffer)).toEqual(Buffer.from((await solo.eval(next, 6, false, gen)).buffer));
    expect(m.seqNPast(2)).toBe(7);
  });

  it('forgets positions with seqClear and from startPos, as eval does', async () => {
    m.seqClear(2, 3);
    expect(m.seqNPast(2)).toBe(3);
    const out = await m.evalBatch([{ seq: 2, startPos: 2, tokens: ids(2, 4), logits: 1 }]);
    expect(out.length).toBe(m.info().nVocab);
    expect(m.seqNPast(2)).toBe(4);
  });

  it('refuses bad batches naming the segment, and lives on', async () => {
    const t = ids(2, 5);
    expect(() => m.evalBatch([{ seq: 4, startPos: 0, tokens: t, logits: 1 }])).toThrow('segments[0].seq 4 is not a slot of this model (sequences: 4)');
    expect(() =>
      m.evalBatch([
        { seq: 1, startPos: 0, tokens: t, logits: 1 },
        { seq: 1, startPos: 0, tokens: t, logits: 1 },
      ]),
    ).toThrow('segments[1].seq 1 appears twice in one batch');
    expect(() => m.evalBatch([{ seq: 0, startPos: 0, tokens: new Int32Array(0), logits: 1 }])).toThrow('segments[0].tokens is empty');
    expect(() => m.evalBatch([{ seq: 0, startPos: 0, tokens: [1] as unknown as Int32Array, logits: 1 }])).toThrow('must be an Int32Array');
    expect(() => m.evalBatch([])).toThrow('segments is empty');
    const before = [0, 1, 2, 3].map((s) => m.seqNPast(s));
    // slot 0 holds 4: startPos 9 is past it
    await expect(
      m.evalBatch([
        { seq: 3, startPos: 0, tokens: t, logits: 1 },
        { seq: 0, startPos: 9, tokens: t, logits: 1 },
      ]),
    ).rejects.toThrow('segment 1 (sequence 0): start_pos 9 but the KV cache holds 4 positions');
    const full = await m.evalBatch([{ seq: 1, startPos: 4, tokens: new Int32Array(40).fill(3), logits: 1 }]).catch((e: unknown) => e);
    expect(full).toBeInstanceOf(Error);
    expect((full as Error & { code: string }).code).toBe('ERR_CONTEXT');
    expect((full as Error).message).toContain('would exceed the context of 32 tokens');
    await expect(m.evalBatch([{ seq: 1, startPos: 0, tokens: t, plugin: 7, logits: 1 }])).rejects.toThrow('plugin 7 is not loaded');
    // the clear to startPos happened (as eval's does), nothing else moved
    expect(m.seqNPast(2)).toBe(before[2]);
    expect(() => m.seqNPast(-1)).toThrow('seq -1 is not a slot of this model');
    expect(() => m.seqClear(0, -2)).toThrow('fromPos must be >= 0');
    const ok = await m.evalBatch([{ seq: 1, startPos: 0, tokens: t, logits: 1 }]);
    expect(ok.length).toBe(m.info().nVocab);
  });

  it("picks a greedy segment's token in the engine: the first largest logit of its range, its row not returned", async () => {
    const V = m.info().nVocab;
    const a = ids(5, 6);
    const b = ids(3, 7);
    const rowA = await solo.eval(a, 0, false, gen);
    const rowB = await solo.eval(b, 0, false, -1);
    const firstMax = (row: Float32Array, lo: number, hi: number): number => {
      let best = lo;
      for (let i = lo; i < hi; i++) if (row[i]! > row[best]!) best = i;
      return best;
    };
    // a range that holds the row's maximum and one that excludes it
    const top = firstMax(rowA, 0, V);
    const lo = top > V / 2 ? 0 : top + 1;
    const hi = top > V / 2 ? top : V;
    const pickA = new Int32Array(1).fill(-2);
    const pickB = new Int32Array(1).fill(-2);
    const forced = new Int32Array(1).fill(-2);
    const got = await m.evalBatch([
      { seq: 0, startPos: 0, tokens: a, plugin: gen, logits: 1, greedy: { lo, hi, next: pickA } },
      { seq: 1, startPos: 0, tokens: b, logits: 1 },
      { seq: 2, startPos: 0, tokens: b, logits: 1, greedy: { lo: 0, hi: V, next: pickB } },
      { seq: 3, startPos: 0, tokens: a, logits: 1, greedy: { lo: 7, hi: 8, next: forced } },
    ]);
    expect(got.length).toBe(V); // segment 1's row alone
    expect(Buffer.from(got.buffer)).toEqual(Buffer.from(rowB.buffer));
    expect(pickA[0]).toBe(firstMax(rowA, lo, hi));
    expect(pickA[0]).not.toBe(top);
    expect(pickB[0]).toBe(firstMax(rowB, 0, V));
    expect(forced[0]).toBe(7); // a range of one token is that token
    const bad = (greedy: unknown, logits = 1) => m.evalBatch([{ seq: 0, startPos: 0, tokens: a, logits, greedy } as never]);
    expect(() => bad({ lo: 0, hi: V, next: [0] })).toThrow('segments[0].greedy.next must be an Int32Array');
    expect(() => bad({ lo: -1, hi: V, next: new Int32Array(1) })).toThrow('segments[0].greedy.lo must be an integer >= 0');
    expect(() => bad({ lo: 0, hi: V, next: new Int32Array(1) }, 2)).toThrow('segments[0].greedy needs logits 1');
    await expect(bad({ lo: 5, hi: 5, next: new Int32Array(1) })).rejects.toThrow('greedy range [5, 5) is empty or outside the vocabulary');
    await expect(bad({ lo: 0, hi: V + 1, next: new Int32Array(1) })).rejects.toThrow('outside the vocabulary');
    expect(m.seqNPast(0)).toBe(0);
  });
});
