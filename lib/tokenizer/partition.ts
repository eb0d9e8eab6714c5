/**
 * Splitting text around special tokens, as llama.cpp's tokenizer_st_partition() does:
 *
 * - tokens are tried one at a time, longest text first (ties: lower id first; llama.cpp's sort is
 *   unstable there), and each one splits every remaining text fragment at all of its
 *   non-overlapping occurrences, left to right; so "longest token first", not leftmost-longest;
 * - control and unknown tokens take part only when parseSpecial; user-defined tokens always do
 *   (as in Hugging Face tokenizers, where added non-special tokens are always split out);
 * - LSTRIP drops whitespace just before the token, RSTRIP just after it (llama.cpp: C isspace,
 *   ASCII only; Hugging Face: Python's str.isspace, see isPythonSpace).
 */
import type { Vocab } from './vocab.js';
import { TokenAttr } from './types.js';

export type Fragment = { token: number } | { start: number; end: number };

/** C isspace() in the "C" locale. */
export const isCSpace = (c: number): boolean => c === 0x20 || (c >= 0x09 && c <= 0x0d);

/** Python's str.isspace() for one UTF-16 unit (all such characters are in the BMP). */
export const isPythonSpace = (c: number): boolean =>
  c === 0x20 ||
  (c >= 0x09 && c <= 0x0d) ||
  (c >= 0x1c && c <= 0x1f) ||
  c === 0x85 ||
  c === 0xa0 ||
  c === 0x1680 ||
  (c >= 0x2000 && c <= 0x200a) ||
  c === 0x2028 ||
  c === 0x2029 ||
  c === 0x202f ||
  c === 0x205f ||
  c === 0x3000;

interface TrieNode {
  next: Map<number, TrieNode>;
  id: number;
}

const tries = new WeakMap<Vocab, TrieNode>();

/** A character trie of the special tokens' texts (UTF-16 units). */
function specialTrie(vocab: Vocab): TrieNode {
  let root = tries.get(vocab);
  if (!root) {
    root = { next: new Map(), id: -1 };
    for (const id of vocab.specialCache) {
      const t = vocab.tokens[id]!;
      let node = root;
      for (let i = 0; i < t.length; i++) {
        const c = t.charCodeAt(i);
        let child = node.next.get(c);
        if (!child) {
          child = { next: new Map(), id: -1 };
          node.next.set(c, child);
        }
        node = child;
      }
      node.id = id;
    }
    tries.set(vocab, root);
  }
  return root;
}

/** The special tokens that occur anywhere in the text (only those can split it). */
function occurring(vocab: Vocab, text: string): Set<number> {
  const root = specialTrie(vocab);
  const found = new Set<number>();
  for (let i = 0; i < text.length; i++) {
    let node = root.next.get(text.charCodeAt(i));
    for (let j = i + 1; node; j++) {
      if (node.id >= 0) found.add(node.id);
      if (j >= text.length) break;
      node = node.next.get(text.charCodeAt(j));
    }
  }
  return found;
}

/** `strip: false` ignores LSTRIP/RSTRIP (the caller applies them, see Tokenizer's slow rules). */
export function partitionSpecial(vocab: Vocab, text: string, parseSpecial: boolean, isSpace: (c: number) => boolean = isCSpace, strip = true): Fragment[] {
  let frags: Fragment[] = text.length > 0 ? [{ start: 0, end: text.length }] : [];
  if (frags.length === 0 || vocab.specialCache.length === 0) return frags;
  const present = occurring(vocab, text);
  if (present.size === 0) return frags;
  for (const id of vocab.specialCache) {
    if (!present.has(id)) continue;
    const attr = vocab.attrs[id]! & (strip ? ~0 : ~(TokenAttr.LSTRIP | TokenAttr.RSTRIP));
    if (!parseSpecial && attr & (TokenAttr.CONTROL | TokenAttr.UNKNOWN)) continue;
    const t = vocab.tokens[id]!;
    // The first occurrence of t at or after `from` (-1: none). Fragments come left to right, so
    // an answer found past one fragment's end serves the next ones: each token's search runs
    // over the text once, not once per fragment (which was quadratic in the fragments).
    let from = -1;
    let at = -1;
    const find = (off: number): number => {
      if (from < 0 || off < from || (at !== -1 && at < off)) {
        from = off;
        at = text.indexOf(t, off);
      }
      return at;
    };
    const next: Fragment[] = [];
    for (const f of frags) {
      if ('token' in f) {
        next.push(f);
        continue;
      }
      let off = f.start;
      const end = f.end;
      for (;;) {
        const m = find(off);
        if (m === -1 || m + t.length > end) {
          if (end > off) next.push({ start: off, end });
          break;
        }
        if (m > off) {
          let leftEnd = m;
          if (attr & TokenAttr.LSTRIP) while (leftEnd > off && isSpace(text.charCodeAt(leftEnd - 1))) leftEnd--;
          if (leftEnd > off) next.push({ start: off, end: leftEnd });
        }
        next.push({ token: id });
        off = m + t.length;
        if (off >= end) break;
        if (attr & TokenAttr.RSTRIP) while (off < end && isSpace(text.charCodeAt(off))) off++;
      }
    }
    frags = next;
  }
  return frags;
}
