/**
 * tiktoken-style vocabularies (token bytes -> rank, no merge list) as GGUF byte-level BPE
 * vocabularies: tokens become GPT-2 byte-level strings and the merge list is recovered by running
 * BPE on each token's bytes with only lower ranks allowed (it must end in exactly two parts, the
 * merge that makes the token; the merge's rank is the token's rank).
 */
import { HealthGPTError } from '../errors.js';
import { TokenType } from './types.js';
import { bytesToByteLevel } from './unicode.js';
import type { BpeVocab } from './vocab-gguf.js';

const latin1 = (b: Uint8Array): string => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('latin1');

/** Splits `bytes` by BPE using only ranks below `maxRank` (lowest rank first, ties leftmost). */
function bpeParts(bytes: string, ranks: ReadonlyMap<string, number>, maxRank: number): string[] {
  let parts = Array.from(bytes);
  for (;;) {
    let best = -1;
    let bestRank = maxRank;
    for (let i = 0; i + 1 < parts.length; i++) {
      const r = ranks.get(parts[i]! + parts[i + 1]!);
      if (r !== undefined && r < bestRank) {
        bestRank = r;
        best = i;
      }
    }
    if (best < 0) return parts;
    parts = [...parts.slice(0, best), parts[best]! + parts[best + 1]!, ...parts.slice(best + 2)];
  }
}

export interface RanksVocabOptions {
  /** Special tokens: text -> id (ids past the ranks; gaps are filled with "[PAD{id}]" UNUSED tokens). */
  specialTokens?: Record<string, number>;
  pre: string;
}

/**
 * A BPE vocabulary from tiktoken ranks (token bytes indexed by rank, ranks 0..n-1 contiguous and
 * every single byte among them).
 */
export function bpeVocabFromRanks(rankBytes: readonly Uint8Array[], options: RanksVocabOptions): BpeVocab {
  const fail = (m: string): never => {
    throw new HealthGPTError('ERR_TOKENIZER', `tiktoken ranks: ${m}`);
  };
  const ranks = new Map<string, number>();
  rankBytes.forEach((b, r) => {
    if (!(b instanceof Uint8Array) || b.length === 0) fail(`rank ${r} has no bytes`);
    ranks.set(latin1(b), r);
  });
  if (ranks.size !== rankBytes.length) fail('duplicate token bytes');
  const merges: { rank: number; merge: string }[] = [];
  rankBytes.forEach((b, r) => {
    if (b.length < 2) return;
    const parts = bpeParts(latin1(b), ranks, r);
    if (parts.length !== 2) fail(`token ${r} does not split into one merge (${parts.length} parts)`);
    const lv = (s: string): string => bytesToByteLevel(Uint8Array.from(Buffer.from(s, 'latin1')));
    merges.push({ rank: r, merge: `${lv(parts[0]!)} ${lv(parts[1]!)}` });
  });
  merges.sort((a, b) => a.rank - b.rank);

  const specials = Object.entries(options.specialTokens ?? {});
  let n = rankBytes.length;
  for (const [, id] of specials) n = Math.max(n, id + 1);
  const tokens = new Array<string>(n);
  const types = new Array<number>(n).fill(TokenType.UNUSED);
  rankBytes.forEach((b, r) => {
    tokens[r] = bytesToByteLevel(b);
    types[r] = TokenType.NORMAL;
  });
  for (const [text, id] of specials) {
    if (id < rankBytes.length) fail(`special token ${text} id ${id} collides with a rank`);
    tokens[id] = text;
    types[id] = TokenType.CONTROL;
  }
  for (let i = 0; i < n; i++) if (tokens[i] === undefined) tokens[i] = `[PAD${i}]`;
  return { tokens, types, merges: merges.map((m) => m.merge), pre: options.pre };
}
