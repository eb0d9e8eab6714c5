/**
 * Token ids back to text, as llama.cpp's token_to_piece() and detokenize() do:
 *
 * - control and unknown tokens are empty unless `special`; user-defined tokens are always their text;
 * - SentencePiece normal tokens turn '▁' into ' '; byte tokens <0xXX> are that byte;
 * - byte-level BPE tokens map each character back to its byte;
 * - detokenize strips one leading space from the first piece when add_space_prefix (not when
 *   removeSpecial just dropped a leading BOS: llama.cpp keeps the space then), and runs the
 *   clean_up_tokenization_spaces passes when the vocabulary asks for them;
 * - the bytes are decoded as UTF-8 only at the end, so characters split across byte tokens survive.
 */
import { HealthGPTError } from '../errors.js';
import { TokenAttr, type DecodeOptions } from './types.js';
import { unicodeToByte, utf8Encode, utf8Decode } from './unicode.js';
import type { Vocab } from './vocab.js';

const EMPTY = new Uint8Array(0);
const pieceCache = new WeakMap<Vocab, (Uint8Array | undefined)[]>();

function byteOfByteToken(text: string): number {
  // "<0xXX>": llama.cpp reads the two hex digits after "<0x".
  return parseInt(text.substr(3, 2), 16) & 0xff;
}

function bpeTextToBytes(text: string): Uint8Array {
  const out: number[] = [];
  for (const ch of text) {
    const b = unicodeToByte(ch.codePointAt(0)!);
    if (b !== undefined) {
      out.push(b);
      continue;
    }
    // llama.cpp's llama_decode_text() marker for a character outside the byte map.
    const hex = Array.from(utf8Encode(ch), (x) => x.toString(16).padStart(2, '0')).join('');
    for (const x of utf8Encode(`[UNK_BYTE_0x${hex}${text}]`)) out.push(x);
  }
  return Uint8Array.from(out);
}

function computePiece(vocab: Vocab, id: number): Uint8Array {
  const attr = vocab.attrs[id]!;
  const text = vocab.tokens[id]!;
  if (attr & (TokenAttr.UNKNOWN | TokenAttr.CONTROL | TokenAttr.USER_DEFINED)) return utf8Encode(text);
  if (attr & TokenAttr.NORMAL) {
    return vocab.model === 'llama' ? utf8Encode(text.replaceAll('\u2581', ' ')) : bpeTextToBytes(text);
  }
  if (attr & TokenAttr.BYTE) return Uint8Array.of(byteOfByteToken(text));
  return EMPTY; // unused / undefined tokens render as nothing
}

/** The bytes of one token (llama_token_to_piece with lstrip = 0). */
export function tokenPiece(vocab: Vocab, id: number, special = false): Uint8Array {
  if (!Number.isInteger(id) || id < 0 || id >= vocab.size) {
    throw new HealthGPTError('ERR_TOKENIZER', `token id ${String(id)} is out of range (vocabulary of ${vocab.size})`);
  }
  if (!special && vocab.attrs[id]! & (TokenAttr.UNKNOWN | TokenAttr.CONTROL)) return EMPTY;
  let cache = pieceCache.get(vocab);
  if (!cache) {
    cache = new Array<Uint8Array | undefined>(vocab.size);
    pieceCache.set(vocab, cache);
  }
  let p = cache[id];
  if (!p) {
    p = computePiece(vocab, id);
    cache[id] = p;
  }
  return p;
}

/** Up to `n` leading ASCII spaces removed. */
export function lstripSpaces(piece: Uint8Array, n: number): Uint8Array {
  let i = 0;
  while (i < n && i < piece.length && piece[i] === 0x20) i++;
  return i === 0 ? piece : piece.subarray(i);
}

/** llama.cpp's three clean_up_tokenization_spaces passes, in place; returns the new length. */
function cleanSpaces(t: Uint8Array, total: number): number {
  const SP = 0x20;
  const AP = 0x27;
  // " ?", " !", " .", " ,"
  const total1 = total;
  total = total ? 1 : 0;
  for (let i = 1; i < total1; ++i) {
    const x = t[i]!;
    if (t[i - 1] === SP && (x === 0x3f || x === 0x21 || x === 0x2e || x === 0x2c)) total--;
    t[total++] = x;
  }
  // " ' " -> "'"
  const total2 = total;
  total = total ? 1 : 0;
  for (let i = 1; i < total2; ++i) {
    const x = t[i]!;
    if (x === AP && i + 1 < total2 && t[i - 1] === SP && t[i + 1] === SP) {
      total--;
      t[++i] = 0;
    }
    t[total++] = x;
  }
  // " 's", " 'm", " 're", " 've"
  const total3 = total;
  total = total ? 1 : 0;
  for (let i = 1; i < total3; ++i) {
    const x = t[i]!;
    if (t[i - 1] === SP && x === AP && i + 1 < total3) {
      const x1 = t[i + 1]!;
      if (x1 === 0x73 || x1 === 0x6d) total--;
      else if (i + 2 < total3) {
        const x2 = t[i + 2]!;
        if ((x1 === 0x72 && x2 === 0x65) || (x1 === 0x76 && x2 === 0x65)) total--;
      }
    }
    t[total++] = x;
  }
  return total;
}

/** The bytes llama.cpp's detokenize() produces. */
export function detokenizeBytes(vocab: Vocab, ids: ArrayLike<number>, options: DecodeOptions = {}): Uint8Array {
  const special = options.special ?? false;
  let begin = 0;
  let end = ids.length;
  let removeSpace = options.stripLeadingSpace ?? vocab.addSpacePrefix;
  if (options.removeSpecial && vocab.addBos && end > 0 && ids[0] === vocab.bosId) {
    if (options.stripLeadingSpace === undefined) removeSpace = false;
    begin++;
  }
  if (options.removeSpecial && vocab.addEos && end > begin && ids[end - 1] === vocab.eosId) end--;
  const parts: Uint8Array[] = [];
  let total = 0;
  for (let i = begin; i < end; i++) {
    let p = tokenPiece(vocab, ids[i]!, special);
    if (removeSpace) p = lstripSpaces(p, 1);
    removeSpace = false;
    parts.push(p);
    total += p.length;
  }
  const buf = new Uint8Array(total);
  let off = 0;
  for (const p of parts) {
    buf.set(p, off);
    off += p.length;
  }
  if (options.cleanSpaces ?? vocab.cleanSpaces) return buf.subarray(0, cleanSpaces(buf, total));
  return buf;
}

export function detokenize(vocab: Vocab, ids: ArrayLike<number>, options: DecodeOptions = {}): string {
  return utf8Decode(detokenizeBytes(vocab, ids, options));
}
