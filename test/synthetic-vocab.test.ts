// lib/synthetic/vocab.ts at HealthGPT's vocabulary size: Phi-3's added tokens and HealthGPT's
// image tokens at their real ids (docs/model.md), so benchmarks can generate images on it.
import { describe, expect, it } from 'vitest';
import { findImageTokens } from '../lib/generate/image-tokens.js';
import { HEALTHGPT_VOCAB_SIZE, syntheticSpmVocab } from '../lib/synthetic/vocab.js';

describe('synthetic vocabulary', () => {
  it('HealthGPT size: chat and image tokens at HealthGPT-M3 ids', () => {
    const v = syntheticSpmVocab(HEALTHGPT_VOCAB_SIZE);
    expect(v.pieces.length).toBe(40206);
    expect([v.pieces[32000], v.pieces[32001], v.pieces[32006], v.pieces[32007], v.pieces[32010]]).toEqual(['<|endoftext|>', '<|assistant|>', '<|system|>', '<|end|>', '<|user|>']);
    expect([v.eosId, v.eotId]).toEqual([32000, 32007]);
    const ids = findImageTokens(new Map(v.pieces.map((p, i) => [p, i])));
    expect(ids).toEqual({ start: 32011, end: 40204, firstIndex: 32012, codebookSize: 8192, pixelNewline: 40205 });
  });

  it('other sizes end with the chat tokens alone', () => {
    const v = syntheticSpmVocab(1024);
    expect(v.pieces.slice(-5)).toEqual(['<|endoftext|>', '<|assistant|>', '<|system|>', '<|end|>', '<|user|>']);
    expect(v.pieces.some((p) => p.startsWith('<idx_'))).toBe(false);
  });
});
