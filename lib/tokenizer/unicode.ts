/**
 * Unicode helpers shared by the tokenizers: code point classes (the subset of llama.cpp's
 * unicode_cpt_flags the pre-tokenizers look at), UTF-8 encoding, and GPT-2's byte <-> unicode
 * mapping used by byte-level BPE vocabularies.
 */

/** Code point class bits (one code point may carry several, e.g. U+3000 is WHITESPACE and DEFINED). */
export const CpFlag = {
  LETTER: 1,
  NUMBER: 2,
  WHITESPACE: 4,
  /** Any assigned code point (llama.cpp's flags.as_uint() != 0; Cn is "undefined"). */
  DEFINED: 8,
  PUNCTUATION: 16,
  ACCENT_MARK: 32,
  SYMBOL: 64,
} as const;

const COMPUTED = 128;
const flagTable = new Uint8Array(0x110000);

const RE_LETTER = /^\p{L}$/u;
const RE_NUMBER = /^\p{N}$/u;
// llama.cpp's whitespace set is the Unicode White_Space property (it includes U+0085, not U+FEFF;
// JavaScript's \s differs on both).
const RE_WHITESPACE = /^\p{White_Space}$/u;
const RE_UNASSIGNED = /^\p{Cn}$/u;
const RE_PUNCT = /^\p{P}$/u;
const RE_MARK = /^\p{M}$/u;
const RE_SYMBOL = /^\p{S}$/u;

function computeFlags(cp: number): number {
  const s = String.fromCodePoint(cp);
  let f = 0;
  if (!RE_UNASSIGNED.test(s)) f |= CpFlag.DEFINED;
  if (RE_LETTER.test(s)) f |= CpFlag.LETTER;
  else if (RE_NUMBER.test(s)) f |= CpFlag.NUMBER;
  else if (RE_PUNCT.test(s)) f |= CpFlag.PUNCTUATION;
  else if (RE_MARK.test(s)) f |= CpFlag.ACCENT_MARK;
  else if (RE_SYMBOL.test(s)) f |= CpFlag.SYMBOL;
  if (RE_WHITESPACE.test(s)) f |= CpFlag.WHITESPACE;
  return f;
}

/** Class bits of a code point (0 for anything outside U+0000..U+10FFFF). Cached after first use. */
export function cpFlags(cp: number): number {
  if (cp < 0 || cp > 0x10ffff) return 0;
  const f = flagTable[cp]!;
  if (f & COMPUTED) return f & 0x7f;
  const g = computeFlags(cp);
  flagTable[cp] = g | COMPUTED;
  return g;
}

for (let cp = 0; cp < 0x80; cp++) cpFlags(cp);

/** Lower-cases a code point the way llama.cpp's contraction matching needs it (simple mapping). */
export function cpToLower(cp: number): number {
  if (cp >= 0x41 && cp <= 0x5a) return cp + 32;
  if (cp < 0x80) return cp;
  const lower = String.fromCodePoint(cp).toLowerCase();
  const c = lower.codePointAt(0)!;
  // Only single code point mappings count (llama.cpp's table is 1:1).
  return lower.length === String.fromCodePoint(c).length ? c : cp;
}

/** The code points of a string (lone surrogates must have been replaced already). */
export function codePoints(s: string): Uint32Array {
  const out = new Uint32Array(s.length);
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length) {
      const d = s.charCodeAt(i + 1);
      if (d >= 0xdc00 && d <= 0xdfff) {
        out[n++] = ((c - 0xd800) << 10) + (d - 0xdc00) + 0x10000;
        i++;
        continue;
      }
    }
    out[n++] = c;
  }
  return out.subarray(0, n);
}

/** Replaces lone UTF-16 surrogates with U+FFFD, as UTF-8 encoding would. */
export function wellFormed(s: string): string {
  const f = (s as { toWellFormed?: () => string }).toWellFormed;
  if (typeof f === 'function') return f.call(s);
  return Buffer.from(s, 'utf8').toString('utf8');
}

const encoder = new TextEncoder();
export function utf8Encode(s: string): Uint8Array {
  return encoder.encode(s);
}

/** UTF-8 to string; invalid sequences become U+FFFD and a leading U+FEFF is kept. */
export function utf8Decode(bytes: Uint8Array): string {
  return new TextDecoder('utf-8', { ignoreBOM: true }).decode(bytes);
}

// GPT-2 byte-level mapping: printable bytes stand for themselves, the rest are shifted to U+0100+.
const BYTE_TO_CHAR: string[] = new Array<string>(256);
const CHAR_TO_BYTE = new Map<number, number>();
{
  const printable = (b: number): boolean => (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
  let n = 0;
  for (let b = 0; b < 256; b++) {
    const cp = printable(b) ? b : 256 + n++;
    BYTE_TO_CHAR[b] = String.fromCodePoint(cp);
    CHAR_TO_BYTE.set(cp, b);
  }
}

/** The byte-level (GPT-2) unicode character standing for a byte. */
export function byteToUnicode(b: number): string {
  return BYTE_TO_CHAR[b & 0xff]!;
}

/** The byte a byte-level character stands for, or undefined. */
export function unicodeToByte(cp: number): number | undefined {
  return CHAR_TO_BYTE.get(cp);
}

/** Maps a string's UTF-8 bytes to byte-level characters (the "Ġ" form of GPT-2 vocabularies). */
export function byteEncode(s: string): string {
  const bytes = utf8Encode(s);
  let out = '';
  for (let i = 0; i < bytes.length; i++) out += BYTE_TO_CHAR[bytes[i]!]!;
  return out;
}

/** The byte-level form of raw bytes. */
export function bytesToByteLevel(bytes: Uint8Array): string {
  let out = '';
  for (let i = 0; i < bytes.length; i++) out += BYTE_TO_CHAR[bytes[i]!]!;
  return out;
}
