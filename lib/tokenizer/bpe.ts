/**
 * Byte-level BPE as llama.cpp runs it for tokenizer.ggml.model = "gpt2" (llm_tokenizer_bpe_session):
 * each pre-token (already mapped to GPT-2 byte-level characters) starts as one symbol per
 * character; the adjacent pair with the lowest merge rank (ties: leftmost) is merged until no
 * listed merge applies; each final symbol is looked up in the vocabulary. With ignore_merges a
 * pre-token that is itself a vocabulary entry is taken whole.
 */
import { Heap } from './heap.js';
import { preTokenize } from './pretokenize.js';
import type { Vocab } from './vocab.js';

interface Bigram {
  left: number;
  right: number;
  rank: number;
  size: number;
}

const before = (a: Bigram, b: Bigram): boolean => a.rank < b.rank || (a.rank === b.rank && a.left < b.left);

const CACHE_LIMIT = 1 << 16;
const CACHE_WORD_MAX = 256;

export class BpeSession {
  private readonly cache = new Map<string, number[]>();

  constructor(private readonly vocab: Vocab) {}

  /** Tokenizes one raw text fragment (no special tokens in it) into `out`. */
  tokenize(text: string, out: number[]): void {
    const pre = this.vocab.pre!;
    for (const word of preTokenize(text, pre.regexes, true)) {
      const cached = this.cache.get(word);
      if (cached) {
        for (const id of cached) out.push(id);
        continue;
      }
      const ids: number[] = [];
      this.word(word, ids);
      if (word.length <= CACHE_WORD_MAX) {
        if (this.cache.size >= CACHE_LIMIT) this.cache.clear();
        this.cache.set(word, ids);
      }
      for (const id of ids) out.push(id);
    }
  }

  private word(word: string, out: number[]): void {
    const { tokenToId, mergeRanks } = this.vocab;
    if (this.vocab.ignoreMerges) {
      const id = tokenToId.get(word);
      if (id !== undefined) {
        out.push(id);
        return;
      }
    }
    const n0 = word.length;
    const start = new Int32Array(n0);
    const len = new Int32Array(n0);
    const prev = new Int32Array(n0);
    const next = new Int32Array(n0);
    let n = 0;
    for (let i = 0; i < n0; ) {
      const c = word.charCodeAt(i);
      const w = c >= 0xd800 && c <= 0xdbff && i + 1 < n0 ? 2 : 1;
      start[n] = i;
      len[n] = w;
      prev[n] = n - 1;
      i += w;
      next[n] = i === n0 ? -1 : n + 1;
      n++;
    }
    const heap = new Heap<Bigram>(before);
    const tryAdd = (left: number, right: number): void => {
      if (left === -1 || right === -1) return;
      const a = word.substr(start[left]!, len[left]!);
      const b = word.substr(start[right]!, len[right]!);
      const rank = mergeRanks.get(`${a} ${b}`);
      if (rank === undefined) return;
      heap.push({ left, right, rank, size: len[left]! + len[right]! });
    };
    for (let i = 1; i < n; i++) tryAdd(i - 1, i);
    for (let b = heap.pop(); b !== undefined; b = heap.pop()) {
      const l = b.left;
      const r = b.right;
      if (len[l] === 0 || len[r] === 0 || len[l]! + len[r]! !== b.size) continue;
      len[l] = b.size;
      len[r] = 0;
      next[l] = next[r]!;
      if (next[r]! >= 0) prev[next[r]!] = l;
      tryAdd(prev[l]!, l);
      tryAdd(l, next[l]!);
    }
    for (let i = 0; i !== -1; i = next[i]!) {
      const piece = word.substr(start[i]!, len[i]!);
      const id = tokenToId.get(piece);
      if (id !== undefined) {
        out.push(id);
        continue;
      }
      // llama.cpp looks each UTF-8 byte of the piece up as a one-byte token; only ASCII bytes can be one.
      for (let k = 0; k < piece.length; k++) {
        const c = piece.charCodeAt(k);
        if (c < 0x80) {
          const t = tokenToId.get(piece[k]!);
          if (t !== undefined) out.push(t);
        }
      }
    }
  }
}
