import { describe, expect, it } from 'vitest';
import { findImageTokens, imageIndices, imageTokenMask } from '../lib/generate/image-tokens.js';
import { GENERATION_TASKS, taskMessage } from '../lib/generate/tasks.js';
import { Sampler } from '../lib/model/sampler.js';

// A vocabulary laid out as HealthGPT's: text tokens, then <start_index>, K <idx_k>, <end_index>, <pixel_newline>.
function vocab(text: number, k: number): Map<string, number> {
  const m = new Map<string, number>();
  for (let i = 0; i < text; i++) m.set(`w${i}`, i);
  m.set('<start_index>', text);
  for (let i = 0; i < k; i++) m.set(`<idx_${i}>`, text + 1 + i);
  m.set('<end_index>', text + 1 + k);
  m.set('<pixel_newline>', text + 2 + k);
  return m;
}

describe('image tokens', () => {
  it('finds the ids by text, as in the Phi-3 layout (32011, 32012 + k, 40204, 40205)', () => {
    const ids = findImageTokens(vocab(32011, 8192));
    expect(ids).toEqual({ start: 32011, firstIndex: 32012, codebookSize: 8192, end: 40204, pixelNewline: 40205 });
  });

  it('refuses a vocabulary without them, or with non-consecutive <idx_k>', () => {
    expect(() => findImageTokens(new Map([['a', 0]]))).toThrow(/no <start_index> token/);
    const m = vocab(10, 8);
    m.set('<idx_5>', 3);
    expect(() => findImageTokens(m)).toThrow(/<idx_5> has id 3, expected 16/);
  });

  it('the mask lets a sampler emit exactly `count` <idx_k> then <end_index>, even when the model prefers text', () => {
    const ids = findImageTokens(vocab(50, 16));
    const nVocab = 50 + 16 + 3;
    const prompt = [1, 2, 3, ids.start];
    const count = 40;
    for (const opts of [{}, { temperature: 0.8, topK: 5, seed: 7 }]) {
      const sampler = new Sampler({ ...opts, logitMask: imageTokenMask(ids, prompt.length, count) });
      const history = prompt.slice();
      for (let i = 0; i <= count; i++) {
        const logits = new Float32Array(nVocab);
        for (let t = 0; t < nVocab; t++) logits[t] = Math.sin(t * 7.1 + i);
        logits[5] = 100; // a text token the model "wants"
        logits[ids.end] = i < count ? 50 : -1e9; // an early end, then a refused one
        history.push(sampler.sample(logits, history));
      }
      const answer = history.slice(prompt.length);
      expect(answer.length).toBe(count + 1);
      expect(answer[count]).toBe(ids.end);
      const indices = imageIndices(answer, ids, count);
      expect(indices.length).toBe(count);
      for (const k of indices) expect(k >= 0 && k < 16).toBe(true);
    }
  });

  it('greedy under the mask picks the best <idx_k>', () => {
    const ids = findImageTokens(vocab(4, 8));
    const mask = imageTokenMask(ids, 0, 2);
    const logits = new Float32Array(4 + 8 + 3).fill(0);
    logits[0] = 9;
    logits[ids.firstIndex + 6] = 3;
    logits[ids.firstIndex + 2] = 2;
    expect(new Sampler({ logitMask: mask }).sample(logits, [])).toBe(ids.firstIndex + 6);
  });

  it("the mask's range (the engine's greedy pick) keeps what the mask keeps, the end forced last", () => {
    const ids = findImageTokens(vocab(4, 8));
    const count = 3;
    const mask = imageTokenMask(ids, 10, count);
    const sampler = new Sampler({ logitMask: mask });
    const nVocab = 4 + 8 + 3;
    for (let k = 0; k <= count; k++) {
      const range = sampler.greedyRange(nVocab, 10 + k);
      expect(range).toEqual(k < count ? [ids.firstIndex, ids.firstIndex + 8] : [ids.end, ids.end + 1]);
      // the same token as masking the row and taking its argmax, whatever the row
      for (let trial = 0; trial < 20; trial++) {
        const logits = Float32Array.from({ length: nVocab }, (_, t) => Math.sin(t * 3.7 + trial * 1.3 + k) * (trial % 3 === 0 ? 1 : 50));
        if (trial === 1) logits[ids.end] = Number.NaN; // forced all the same
        let pick = range![0];
        for (let t = range![0]; t < range![1]; t++) if (logits[t]! > logits[pick]!) pick = t;
        expect(sampler.sample(logits.slice(), [], 10 + k)).toBe(pick);
      }
    }
    expect(() => sampler.greedyRange(nVocab, 10 + count + 1)).toThrow(/image token 4 is outside 0..3/);
    // sampling at a temperature needs the row
    expect(new Sampler({ logitMask: mask, temperature: 0.5 }).greedyRange(nVocab, 10)).toBeUndefined();
  });

  it('imageIndices refuses a wrong count or a text token, naming the position', () => {
    const ids = findImageTokens(vocab(4, 8));
    expect(() => imageIndices([5, 6], ids, 3)).toThrow(/expected 3 image tokens, got 2/);
    expect(() => imageIndices([5, 2, 6], ids, 3)).toThrow(/token 1 \(id 2\) is not an <idx_k> token/);
    expect([...imageIndices([5, 12, 6, ids.end], ids, 3)]).toEqual([0, 7, 1]);
  });
});

describe('generation tasks', () => {
  it('builds the released wording for reconstruction and requires what each task needs', () => {
    expect(taskMessage('reconstruct', { hasImage: true })).toBe('<image>\nReconstruct the image.');
    expect(taskMessage('report2cxr', { hasImage: false, report: ' Mild cardiomegaly. ' })).toBe(GENERATION_TASKS.report2cxr.instruction + 'Mild cardiomegaly.');
    expect(() => taskMessage('ct2mri', { hasImage: false })).toThrow(/needs an input image/);
    expect(() => taskMessage('report2cxr', { hasImage: false })).toThrow(/needs a non-empty report/);
    expect(() => taskMessage('x' as never, { hasImage: true })).toThrow(/task must be one of ct2mri, mri2ct/);
  });
});
