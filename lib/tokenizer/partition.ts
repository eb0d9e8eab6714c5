/**
 * Splitting text around special tokens, as llama.cpp's tokenizer_st_partition() does:
 *
 * - tokens are tried one at a time, longest text first (ties: lower id first; llama.cpp's sort is
 *   unstable there), and each one splits every remaining text fragment at all of its
 *   non-overlapping occurrences, left to right; so "longest token first", not leftmost-longest;
 * - control and unknown tokens take part only when parseSpecial; user-defined tokens always do
 *   (as in Hugging Face tokenizers, where added non-special tokens are always split out);
 * - LSTRIP drops whitespace just before the token, RSTRIP just after it (C isspace: ASCII only).
 */
import type { Vocab } from './vocab.js';
import { TokenAttr } from './types.js';

export type Fragment = { token: number } | { start: number; end: number };

const isCSpace = (c: number): boolean => c === 0x20 || (c >= 0x09 && c <= 0x0d);

export function partitionSpecial(vocab: Vocab, text: string, parseSpecial: boolean): Fragment[] {
  let frags: Fragment[] = text.length > 0 ? [{ start: 0, end: text.length }] : [];
  for (const id of vocab.specialCache) {
    const attr = vocab.attrs[id]!;
    if (!parseSpecial && attr & (TokenAttr.CONTROL | TokenAttr.UNKNOWN)) continue;
    const t = vocab.tokens[id]!;
    if (!text.includes(t)) continue;
    const next: Fragment[] = [];
    for (const f of frags) {
      if ('token' in f) {
        next.push(f);
        continue;
      }
      let off = f.start;
      let end = f.end;
      for (;;) {
        const m = text.indexOf(t, off);
        if (m === -1 || m + t.length > end) {
          if (end > off) next.push({ start: off, end });
          break;
        }
        if (m > off) {
          let leftEnd = m;
          if (attr & TokenAttr.LSTRIP) while (leftEnd > off && isCSpace(text.charCodeAt(leftEnd - 1))) leftEnd--;
          if (leftEnd > off) next.push({ start: off, end: leftEnd });
        }
        next.push({ token: id });
        off = m + t.length;
        if (off >= end) break;
        if (attr & TokenAttr.RSTRIP) while (off < end && isCSpace(text.charCodeAt(off))) off++;
      }
    }
    frags = next;
  }
  return frags;
}
