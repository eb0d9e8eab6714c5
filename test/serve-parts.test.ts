// The server's small parts on their own: per-token log-probabilities (lib/model/logprobs.ts),
// stop strings over streamed text (lib/model/stop-text.ts), admission (lib/server/admission.ts).
import { describe, expect, it } from 'vitest';
import { tokenLogprobs } from '../lib/model/logprobs.js';
import { StopText } from '../lib/model/stop-text.js';
import { Admission } from '../lib/server/admission.js';
import { ApiError } from '../lib/server/errors.js';

describe('tokenLogprobs', () => {
  it('is the log-softmax of the row: the chosen token and the k most likely, in order', () => {
    let s = 7;
    const rand = () => ((s = (s * 1103515245 + 12345) >>> 0) / 2 ** 32) * 20 - 10;
    const logits = Float32Array.from({ length: 3000 }, rand);
    logits[17] = logits[2999] = 12; // a tie at the top keeps the lower id first
    const e = tokenLogprobs(logits, 5, 6);
    // float64 reference
    const max = Math.max(...logits);
    const lse = max + Math.log([...logits].reduce((a, v) => a + Math.exp(v - max), 0));
    expect(e.logprob).toBeCloseTo(logits[5]! - lse, 9);
    const order = [...logits.keys()].sort((a, b) => logits[b]! - logits[a]! || a - b).slice(0, 6);
    expect(e.top.map((t) => t.token)).toEqual(order);
    for (const t of e.top) expect(t.logprob).toBeCloseTo(logits[t.token]! - lse, 9);
    expect(tokenLogprobs(logits, 5, 0).top).toEqual([]);
  });
});

describe('StopText', () => {
  it('holds back a possible start of a stop string and cuts at the first one', () => {
    const f = new StopText(['END', 'xy']);
    expect(f.push('abcE')).toEqual({ text: 'abc', stopped: false });
    expect(f.push('N')).toEqual({ text: '', stopped: false });
    expect(f.push('o more')).toEqual({ text: 'ENo more', stopped: false });
    expect(f.push(' x')).toEqual({ text: ' ', stopped: false });
    expect(f.push('yz')).toEqual({ text: '', stopped: true });
    const g = new StopText([]);
    expect(g.push('any')).toEqual({ text: 'any', stopped: false });
    const h = new StopText(['END']);
    expect(h.push('tail E')).toEqual({ text: 'tail ', stopped: false });
    expect(h.flush('!')).toBe('E!');
  });
});

describe('Admission', () => {
  it('runs `slots` at once, queues `queue` in arrival order, refuses past that with Retry-After', async () => {
    const a = new Admission(1, 2);
    const never = new AbortController().signal;
    const r1 = await a.enter(never);
    const order: number[] = [];
    const w2 = a.enter(never).then((r) => {
      order.push(2);
      return r;
    });
    const w3 = a.enter(never).then((r) => {
      order.push(3);
      return r;
    });
    expect([a.running, a.waiting]).toEqual([1, 2]);
    const full = await a.enter(never).catch((e: unknown) => e);
    expect(full).toBeInstanceOf(ApiError);
    expect((full as ApiError).status).toBe(429);
    expect(Number((full as ApiError).headers['retry-after'])).toBeGreaterThanOrEqual(1);
    r1();
    r1(); // releasing twice frees one slot only
    const r2 = await w2;
    expect([a.running, a.waiting, order]).toEqual([1, 1, [2]]);
    r2();
    (await w3)();
    expect([a.running, a.waiting, order]).toEqual([0, 0, [2, 3]]);
  });

  it('a waiting request that aborts leaves the queue; a freed slot never goes to a newcomer first', async () => {
    const a = new Admission(1, 1);
    const r1 = await a.enter(new AbortController().signal);
    const leave = new AbortController();
    const w = a.enter(leave.signal);
    leave.abort(new Error('gone'));
    await expect(w).rejects.toThrow('gone');
    expect(a.waiting).toBe(0);
    const w2 = a.enter(new AbortController().signal);
    r1();
    // the slot was handed to the waiter: a request arriving now must wait
    const late = a.enter(new AbortController().signal);
    expect([a.running, a.waiting]).toEqual([1, 1]);
    (await w2)();
    (await late)();
    expect(a.running).toBe(0);
  });
});
