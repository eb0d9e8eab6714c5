/**
 * BPE pre-tokenizers, following llama.cpp's unicode_regex_split():
 *
 * - a pre-tokenizer is a list of regular expressions applied in turn; each one splits every
 *   current piece into its matches and the gaps between them;
 * - the GPT-2 expression and the cl100k ("llama3"/"dbrx") expression run as hand-written scanners
 *   (llama.cpp's unicode_regex_split_custom_gpt2/_llama3), ported here branch for branch;
 * - any other expression runs on llama.cpp's "collapsed" text, where every non-ASCII code point
 *   is replaced by one stand-in per Unicode class (letter, number, punctuation, mark, symbol,
 *   other; non-ASCII whitespace becomes \v) and \p{..} classes in the expression are rewritten
 *   to match those stand-ins. This reproduces llama.cpp's results, including where they differ
 *   from the upstream tokenizer (e.g. o200k's case classes cannot tell non-ASCII upper from lower).
 *
 * Phi-4's GGUF is written with pre "dbrx" by llama.cpp's converter (same cl100k pattern).
 */
import { HealthGPTError } from '../errors.js';
import { CpFlag, codePoints, cpFlags, cpToLower, byteEncode } from './unicode.js';

// The expressions as llama.cpp spells them (runtime strings, not C++ literals).
const RE_GPT2 = String.raw`'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)`;
const RE_LLAMA3_ORIG = String.raw`(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`;
const RE_LLAMA3 = String.raw`(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`;
const RE_QWEN2 = String.raw`(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`;
const RE_GPT4O = String.raw`[^\r\n\p{L}\p{N}]?((?=[\p{L}])([^a-z]))*((?=[\p{L}])([^A-Z]))+(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])?|[^\r\n\p{L}\p{N}]?((?=[\p{L}])([^a-z]))+((?=[\p{L}])([^A-Z]))*(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])?|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+`;
const RE_DEFAULT = [String.raw`[\p{P}\$\+<=>\^~\|]+`, RE_GPT2, String.raw`\p{N}+`, '[0-9][0-9][0-9]'];

export interface PreTokenizerSpec {
  /** The tokenizer.ggml.pre value it was chosen for. */
  name: string;
  regexes: readonly string[];
  /** Look a whole pre-token up in the vocabulary before merging (llama.cpp ignore_merges). */
  ignoreMerges: boolean;
  /** llama.cpp's default for add_bos when the GGUF does not say. */
  addBos: boolean;
  /** llama.cpp's clean_spaces (clean_up_tokenization_spaces) default for detokenize. */
  cleanSpaces: boolean;
}

type PreDefaults = Omit<PreTokenizerSpec, 'name'>;
const spec = (regexes: readonly string[], o: Partial<PreDefaults> = {}): PreDefaults => ({
  regexes,
  ignoreMerges: o.ignoreMerges ?? false,
  addBos: o.addBos ?? false,
  cleanSpaces: o.cleanSpaces ?? true,
});

const PRE: Record<string, PreDefaults> = {};
const add = (names: string[], d: PreDefaults): void => names.forEach((n) => (PRE[n] = d));
add(['default'], spec(RE_DEFAULT));
add(['llama3', 'llama-v3', 'llama-bpe', 'falcon3', 'falcon-h1', 'pixtral', 'midm-2.0', 'lfm2', 'jina-v5-nano'], spec([RE_LLAMA3], { ignoreMerges: true, addBos: true }));
add(['dbrx', 'smaug-bpe'], spec([RE_LLAMA3]));
add(['gpt-2', 'phi-2', 'jina-es', 'jina-de', 'gigachat', 'jina-v2-es', 'jina-v2-de', 'a.x-4.0', 'mellum', 'modern-bert', 'mpt', 'olmo', 'jais', 'exaone4'], spec([RE_GPT2]));
add(['trillion', 'granite-docling'], spec([RE_GPT2], { cleanSpaces: false }));
add(['gpt-4o', 'llama4', 'kanana2', 'talkie', 'minimax-m2'], spec([RE_GPT4O], { cleanSpaces: false }));
add(['qwen2', 'deepseek-r1-qwen', 'kormo', 'f2llmv2', 'hunyuan', 'solar-open'], spec([RE_QWEN2], { cleanSpaces: false }));
add(['megrez', 'stablelm2'], spec([RE_QWEN2]));

export const SUPPORTED_PRE_TOKENIZERS: readonly string[] = Object.keys(PRE);

/** The pre-tokenizer llama.cpp uses for tokenizer.ggml.pre = name (missing: "default"). */
export function preTokenizerSpec(name: string | undefined): PreTokenizerSpec {
  const key = name === undefined || name === '' ? 'default' : name;
  const d = PRE[key];
  if (!d) {
    throw new HealthGPTError('ERR_TOKENIZER', `unsupported pre-tokenizer '${key}' (supported: ${SUPPORTED_PRE_TOKENIZERS.join(', ')})`);
  }
  return { name: key, ...d };
}

/** Overrides a spec's expressions with another pre-tokenizer's (e.g. HF slow GPT2Tokenizer uses GPT-2's). */
export function withRegexesOf(base: PreTokenizerSpec, other: string): PreTokenizerSpec {
  return { ...base, regexes: preTokenizerSpec(other).regexes };
}

const OUT_OF_RANGE = -1;

/** llama.cpp's scanner for the GPT-2 expression, over cps[begin, end); pushes piece lengths. */
function splitGpt2(cps: Uint32Array, begin: number, end: number, out: number[]): void {
  const cpt = (p: number): number => (p >= begin && p < end ? cps[p]! : OUT_OF_RANGE);
  const flags = (p: number): number => (p >= begin && p < end ? cpFlags(cps[p]!) : 0);
  let prevEnd = begin;
  const addTok = (e: number): number => {
    const len = e - prevEnd;
    if (len > 0) out.push(len);
    prevEnd = e;
    return len;
  };
  const notWLN = (f: number): boolean => (f & (CpFlag.WHITESPACE | CpFlag.LETTER | CpFlag.NUMBER)) === 0;

  for (let pos = begin; pos < end; ) {
    const c = cps[pos]!;
    const f = cpFlags(c);
    // 's|'t|'re|'ve|'m|'ll|'d
    if (c === 0x27 && pos + 1 < end) {
      const n1 = cps[pos + 1]!;
      if (n1 === 0x73 || n1 === 0x74 || n1 === 0x6d || n1 === 0x64) {
        pos += addTok(pos + 2);
        continue;
      }
      if (pos + 2 < end) {
        const n2 = cps[pos + 2]!;
        if ((n1 === 0x72 && n2 === 0x65) || (n1 === 0x76 && n2 === 0x65) || (n1 === 0x6c && n2 === 0x6c)) {
          pos += addTok(pos + 3);
          continue;
        }
      }
    }
    let f2 = c === 0x20 ? flags(pos + 1) : f;
    //  ?\p{L}+
    if (f2 & CpFlag.LETTER) {
      pos += c === 0x20 ? 1 : 0;
      while (f2 & CpFlag.LETTER) f2 = flags(++pos);
      addTok(pos);
      continue;
    }
    //  ?\p{N}+
    if (f2 & CpFlag.NUMBER) {
      pos += c === 0x20 ? 1 : 0;
      while (f2 & CpFlag.NUMBER) f2 = flags(++pos);
      addTok(pos);
      continue;
    }
    //  ?[^\s\p{L}\p{N}]+
    if (notWLN(f2) && f2 !== 0) {
      pos += c === 0x20 ? 1 : 0;
      while (notWLN(f2) && f2 !== 0) f2 = flags(++pos);
      addTok(pos);
      continue;
    }
    let nws = 0;
    while (flags(pos + nws) & CpFlag.WHITESPACE) nws++;
    // \s+(?!\S)
    if (nws > 1 && cpt(pos + nws) !== OUT_OF_RANGE) {
      pos += nws - 1;
      addTok(pos);
      continue;
    }
    // \s+
    if (nws > 0) {
      pos += nws;
      addTok(pos);
      continue;
    }
    addTok(++pos);
  }
}

/** llama.cpp's scanner for the cl100k / llama3 expression. */
function splitLlama3(cps: Uint32Array, begin: number, end: number, out: number[]): void {
  const cpt = (p: number): number => (p >= begin && p < end ? cps[p]! : OUT_OF_RANGE);
  const flags = (p: number): number => (p >= begin && p < end ? cpFlags(cps[p]!) : 0);
  let prevEnd = begin;
  const addTok = (e: number): number => {
    const len = e - prevEnd;
    if (len > 0) out.push(len);
    prevEnd = e;
    return len;
  };
  const notWLN = (f: number): boolean => (f & (CpFlag.WHITESPACE | CpFlag.LETTER | CpFlag.NUMBER)) === 0;
  const isRN = (c: number): boolean => c === 0x0d || c === 0x0a;

  for (let pos = begin; pos < end; ) {
    const c = cps[pos]!;
    const f = cpFlags(c);
    // (?i:'s|'t|'re|'ve|'m|'ll|'d)
    if (c === 0x27 && pos + 1 < end) {
      const n1 = cpToLower(cps[pos + 1]!);
      if (n1 === 0x73 || n1 === 0x74 || n1 === 0x6d || n1 === 0x64) {
        pos += addTok(pos + 2);
        continue;
      }
      if (pos + 2 < end) {
        const n2 = cpToLower(cps[pos + 2]!);
        if ((n1 === 0x72 && n2 === 0x65) || (n1 === 0x76 && n2 === 0x65) || (n1 === 0x6c && n2 === 0x6c)) {
          pos += addTok(pos + 3);
          continue;
        }
      }
    }
    // [^\r\n\p{L}\p{N}]?\p{L}+
    if (!(isRN(c) || f & CpFlag.NUMBER)) {
      if (f & CpFlag.LETTER || flags(pos + 1) & CpFlag.LETTER) {
        pos++;
        while (flags(pos) & CpFlag.LETTER) pos++;
        addTok(pos);
        continue;
      }
    }
    // \p{N}{1,3}
    if (f & CpFlag.NUMBER) {
      let ini = pos;
      while (flags(pos) & CpFlag.NUMBER) {
        if (++pos - ini >= 3) {
          addTok(pos);
          ini = pos;
        }
      }
      addTok(pos);
      continue;
    }
    //  ?[^\s\p{L}\p{N}]+[\r\n]*   (llama.cpp tests the current code point's flags for "defined")
    let f2 = c === 0x20 ? flags(pos + 1) : f;
    if (notWLN(f2) && f !== 0) {
      pos += c === 0x20 ? 1 : 0;
      while (notWLN(f2) && f2 !== 0) f2 = flags(++pos);
      let c2 = cpt(pos);
      while (isRN(c2)) c2 = cpt(++pos);
      addTok(pos);
      continue;
    }
    let nws = 0;
    let lastRN = 0;
    while (flags(pos + nws) & CpFlag.WHITESPACE) {
      if (isRN(cpt(pos + nws))) lastRN = pos + nws + 1;
      nws++;
    }
    // \s*[\r\n]+
    if (lastRN > 0) {
      pos = lastRN;
      addTok(pos);
      continue;
    }
    // \s+(?!\S)
    if (nws > 1 && cpt(pos + nws) !== OUT_OF_RANGE) {
      pos += nws - 1;
      addTok(pos);
      continue;
    }
    // \s+
    if (nws > 0) {
      pos += nws;
      addTok(pos);
      continue;
    }
    addTok(++pos);
  }
}

// llama.cpp's collapsed-text stand-ins and the ASCII members of each class.
const CAT_CHAR = { N: '\u00d1', L: '\u00d2', P: '\u00d3', M: '\u00d4', S: '\u00d5' } as const;
const CAT_ASCII = { N: '0-9', L: 'A-Za-z', P: String.raw`!-#%-*,-/:-;?-@\[-\]_\{\}`, M: '', S: String.raw`\$\+<->^\`\|` } as const;
const UCAT: Record<string, keyof typeof CAT_CHAR> = {
  '\\p{N}': 'N',
  '\\p{L}': 'L',
  '\\p{P}': 'P',
  '\\p{M}': 'M',
  '\\p{S}': 'S',
  '\\p{Lu}': 'L',
  '\\p{Ll}': 'L',
  '\\p{Lt}': 'L',
  '\\p{Lm}': 'L',
  '\\p{Lo}': 'L',
};

function usesCategories(re: string): boolean {
  return Object.keys(UCAT).some((k) => re.includes(k));
}

function collapseText(cps: Uint32Array): string {
  let s = '';
  for (let i = 0; i < cps.length; i++) {
    const cp = cps[i]!;
    if (cp < 128) {
      s += String.fromCharCode(cp);
      continue;
    }
    const f = cpFlags(cp);
    if (f & CpFlag.WHITESPACE) s += '\u000b';
    else if (f & CpFlag.NUMBER) s += CAT_CHAR.N;
    else if (f & CpFlag.LETTER) s += CAT_CHAR.L;
    else if (f & CpFlag.PUNCTUATION) s += CAT_CHAR.P;
    else if (f & CpFlag.ACCENT_MARK) s += CAT_CHAR.M;
    else if (f & CpFlag.SYMBOL) s += CAT_CHAR.S;
    else s += '\u00d0';
  }
  return s;
}

function collapseRegex(re: string): string {
  let out = '';
  let inside = false;
  for (let i = 0; i < re.length; i++) {
    const ch = re[i]!;
    if (ch === '[' && (i === 0 || re[i - 1] !== '\\')) {
      out += '[';
      inside = true;
      continue;
    }
    if (inside && ch === ']' && re[i - 1] !== '\\') {
      out += ']';
      inside = false;
      continue;
    }
    if (ch === '\\' && re[i + 1] === 'p' && re[i + 2] === '{') {
      const close = re.indexOf('}', i + 3);
      if (close !== -1 && close <= i + 10) {
        const cat = UCAT[re.slice(i, close + 1)];
        if (cat) {
          out += (inside ? '' : '[') + CAT_CHAR[cat] + CAT_ASCII[cat] + (inside ? '' : ']');
          i = close;
          continue;
        }
      }
    }
    out += ch;
  }
  return out;
}

/** One UTF-16 unit per code point, non-ASCII whitespace as \v (llama.cpp's std::wregex input). */
function wideText(cps: Uint32Array): string {
  let s = '';
  for (let i = 0; i < cps.length; i++) {
    const cp = cps[i]!;
    if (cp > 0x7f && cpFlags(cp) & CpFlag.WHITESPACE) s += '\u000b';
    else s += cp > 0xffff ? '\uffff' : String.fromCharCode(cp);
  }
  return s;
}

function splitRegex(subject: string, re: RegExp, offsets: number[]): number[] {
  const out: number[] = [];
  let start = 0;
  for (const len of offsets) {
    const seg = subject.slice(start, start + len);
    let idx = 0;
    re.lastIndex = 0;
    for (const m of seg.matchAll(re)) {
      if (m[0].length === 0) continue;
      if (m.index! > idx) out.push(m.index! - idx);
      out.push(m[0].length);
      idx = m.index! + m[0].length;
    }
    if (idx < len) out.push(len - idx);
    start += len;
  }
  return out;
}

const compiled = new Map<string, RegExp>();
function compile(source: string): RegExp {
  let re = compiled.get(source);
  if (!re) {
    re = new RegExp(source, 'g');
    compiled.set(source, re);
  }
  return re;
}

/**
 * Splits text into pre-tokens (code point lengths applied to `cps`). Pieces are returned as
 * strings; `byteLevel` maps each to its GPT-2 byte-level form.
 */
export function preTokenize(text: string, regexes: readonly string[], byteLevel = true): string[] {
  const cps = codePoints(text);
  if (cps.length === 0) return [];
  let offsets = [cps.length];
  let collapsed: string | undefined;
  let wide: string | undefined;
  for (const re of regexes) {
    if (re === RE_GPT2 || re === RE_LLAMA3 || re === RE_LLAMA3_ORIG) {
      const split = re === RE_GPT2 ? splitGpt2 : splitLlama3;
      const next: number[] = [];
      let start = 0;
      for (const len of offsets) {
        split(cps, start, start + len, next);
        start += len;
      }
      offsets = next;
    } else if (usesCategories(re)) {
      collapsed ??= collapseText(cps);
      offsets = splitRegex(collapsed, compile(collapseRegex(re)), offsets);
    } else {
      wide ??= wideText(cps);
      offsets = splitRegex(wide, compile(re), offsets);
    }
  }
  // UTF-16 position of each code point, to slice the original text.
  const u16 = new Int32Array(cps.length + 1);
  for (let i = 0; i < cps.length; i++) u16[i + 1] = u16[i]! + (cps[i]! > 0xffff ? 2 : 1);
  const words: string[] = [];
  let start = 0;
  for (const len of offsets) {
    const w = text.slice(u16[start]!, u16[start + len]!);
    words.push(byteLevel ? byteEncode(w) : w);
    start += len;
  }
  return words;
}
