/**
 * SentencePiece-style BPE as llama.cpp runs it for tokenizer.ggml.model = "llama"
 * (llm_tokenizer_spm_session):
 *
 * - the text (spaces already escaped to '▁') starts as one symbol per code point;
 * - every adjacent pair whose concatenation is a vocabulary entry (of any type) is a candidate,
 *   ranked by that entry's score, highest first, ties to the leftmost pair;
 * - the best candidate is merged, its neighbours' pairs are added, stale candidates (a side
 *   already merged away or grown) are skipped;
 * - each final symbol is its token; a symbol that is not in the vocabulary (only possible for a
 *   single code point) becomes one <0xXX> byte token per UTF-8 byte (or the one-character token
 *   for that byte, llama.cpp's second choice).
 */
import { HealthGPTError } from '../errors.js';
import { Heap } from './heap.js';
import { utf8Encode } from './unicode.js';
import type { Vocab } from './vocab.js';

interface Bigram {
  left: number;
  right: number;
  score: number;
  size: number;
}

const before = (a: Bigram, b: Bigram): boolean => a.score > b.score || (a.score === b.score && a.left < b.left);

const HEX = '0123456789ABCDEF';

/** The token llama.cpp's byte_to_token() picks for a byte of a SentencePiece vocabulary. */
export function spmByteToken(vocab: Vocab, byte: number): number {
  const id = vocab.tokenToId.get(`<0x${HEX[byte >> 4]}${HEX[byte & 15]}>`);
  if (id !== undefined) return id;
  const single = byte < 0x80 ? vocab.tokenToId.get(String.fromCharCode(byte)) : undefined;
  if (single !== undefined) return single;
  throw new HealthGPTError('ERR_TOKENIZER', `no byte-fallback token for byte 0x${HEX[byte >> 4]}${HEX[byte & 15]} in the vocabulary`);
}

/** Tokenizes already-escaped text (spaces as '▁') into `out`. */
export function spmTokenize(vocab: Vocab, text: string, out: number[]): void {
  const n0 = text.length;
  if (n0 === 0) return;
  // One symbol per code point: start offset and length in UTF-16 units, doubly linked.
  const start = new Int32Array(n0);
  const len = new Int32Array(n0);
  const prev = new Int32Array(n0);
  const next = new Int32Array(n0);
  let n = 0;
  for (let i = 0; i < n0; ) {
    const c = text.charCodeAt(i);
    const w = c >= 0xd800 && c <= 0xdbff && i + 1 < n0 ? 2 : 1;
    start[n] = i;
    len[n] = w;
    prev[n] = n - 1;
    i += w;
    next[n] = i === n0 ? -1 : n + 1;
    n++;
  }

  const { tokenToId, scores } = vocab;
  const heap = new Heap<Bigram>(before);
  const tryAdd = (left: number, right: number): void => {
    if (left === -1 || right === -1) return;
    const size = len[left]! + len[right]!;
    const id = tokenToId.get(text.substr(start[left]!, size));
    if (id === undefined) return;
    heap.push({ left, right, score: scores[id]!, size });
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
    const piece = text.substr(start[i]!, len[i]!);
    const id = tokenToId.get(piece);
    if (id !== undefined) {
      out.push(id);
      continue;
    }
    const bytes = utf8Encode(piece);
    for (let k = 0; k < bytes.length; k++) out.push(spmByteToken(vocab, bytes[k]!));
  }
}
