/**
 * Writing tokenizer metadata into a GGUFWriter (the keys llama.cpp and Tokenizer.fromGGUF read),
 * from a SentencePiece vocabulary (pieces, scores, types) or a byte-level BPE vocabulary (tokens,
 * merges), plus builders from a Hugging Face tokenizer.json for both kinds.
 */
import { HealthGPTError } from '../errors.js';
import type { GGUFWriter } from '../gguf/writer.js';
import { EOS_IDS_KEY, HF_TOKEN_FLAG_KEYS, TokenType, type AddedTokenFlags } from './types.js';

function fail(message: string): never {
  throw new HealthGPTError('ERR_TOKENIZER', message);
}

/** Special ids and flags shared by both kinds; unset ones are not written. */
export interface SpecialTokenConfig {
  bosId?: number;
  eosId?: number;
  unknownId?: number;
  paddingId?: number;
  eotId?: number;
  addBos?: boolean;
  addEos?: boolean;
  /** Hugging Face added-token flags (written as HF_TOKEN_FLAG_KEYS) */
  flags?: AddedTokenFlags;
  /** the ids generation stops at (EOS_IDS_KEY) */
  eosTokenIds?: number[];
}

export interface SpmVocab extends SpecialTokenConfig {
  pieces: readonly string[];
  scores: ArrayLike<number>;
  /** TokenType per piece. */
  types: ArrayLike<number>;
  /** tokenizer.ggml.add_space_prefix (llama.cpp defaults to true for SentencePiece). */
  addSpacePrefix?: boolean;
}

export interface BpeVocab extends SpecialTokenConfig {
  /** Byte-level (GPT-2 "Ġ") token texts. */
  tokens: readonly string[];
  /** Merges in rank order, each "left right". */
  merges: readonly string[];
  /** TokenType per token (default NORMAL). */
  types?: ArrayLike<number>;
  /** tokenizer.ggml.pre, e.g. "dbrx" (Phi-4), "llama-bpe", "gpt-2", "gpt-4o". */
  pre: string;
}

function checkTokens(tokens: readonly string[], what: string): void {
  if (!Array.isArray(tokens) || tokens.length === 0) fail(`${what}: no tokens`);
  const seen = new Map<string, number>();
  tokens.forEach((t, i) => {
    if (typeof t !== 'string' || t.length === 0) fail(`${what}: token ${i} is not a non-empty string`);
    const j = seen.get(t);
    if (j !== undefined) fail(`${what}: duplicate token '${t}' (ids ${j} and ${i})`);
    seen.set(t, i);
  });
}

function checkTypes(types: ArrayLike<number>, n: number, what: string): Int32Array {
  if (types.length !== n) fail(`${what}: ${types.length} token types for ${n} tokens`);
  const out = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const t = types[i]!;
    if (!Number.isInteger(t) || t < 0 || t > 6) fail(`${what}: token type ${String(t)} at ${i} is not 0..6`);
    out[i] = t;
  }
  return out;
}

function addSpecials(w: GGUFWriter, c: SpecialTokenConfig, n: number, what: string): void {
  const id = (key: string, v: number | undefined): void => {
    if (v === undefined) return;
    if (!Number.isInteger(v) || v < 0 || v >= n) fail(`${what}: ${key} ${String(v)} is out of range`);
    w.addKV(`tokenizer.ggml.${key}`, { type: 'u32', value: v });
  };
  id('bos_token_id', c.bosId);
  id('eos_token_id', c.eosId);
  id('unknown_token_id', c.unknownId);
  id('padding_token_id', c.paddingId);
  id('eot_token_id', c.eotId);
  if (c.addBos !== undefined) w.addKV('tokenizer.ggml.add_bos_token', c.addBos);
  if (c.addEos !== undefined) w.addKV('tokenizer.ggml.add_eos_token', c.addEos);
  const ids = (key: string, list: number[]): void => {
    for (const v of list) if (!Number.isInteger(v) || v < 0 || v >= n) fail(`${what}: ${key} id ${String(v)} is out of range`);
    w.addKV(key, { type: 'u32', value: list });
  };
  if (c.flags) for (const [k, key] of Object.entries(HF_TOKEN_FLAG_KEYS)) ids(key, c.flags[k as keyof AddedTokenFlags]);
  if (c.eosTokenIds) ids(EOS_IDS_KEY, c.eosTokenIds);
}

/** Writes a SentencePiece ("llama") vocabulary. */
export function addSpmVocab(w: GGUFWriter, v: SpmVocab): GGUFWriter {
  const what = 'SentencePiece vocabulary';
  checkTokens(v.pieces, what);
  const n = v.pieces.length;
  if (v.scores.length !== n) fail(`${what}: ${v.scores.length} scores for ${n} pieces`);
  const scores = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const s = v.scores[i]!;
    if (typeof s !== 'number' || !Number.isFinite(s)) fail(`${what}: score ${i} is not a finite number`);
    scores[i] = s;
  }
  const types = checkTypes(v.types, n, what);
  w.addKV('tokenizer.ggml.model', 'llama');
  w.addKV('tokenizer.ggml.pre', 'default');
  w.addKV('tokenizer.ggml.tokens', { type: 'str', value: v.pieces });
  w.addKV('tokenizer.ggml.scores', scores);
  w.addKV('tokenizer.ggml.token_type', types);
  addSpecials(w, v, n, what);
  if (v.addSpacePrefix !== undefined) w.addKV('tokenizer.ggml.add_space_prefix', v.addSpacePrefix);
  return w;
}

/** Writes a byte-level BPE ("gpt2") vocabulary. */
export function addBpeVocab(w: GGUFWriter, v: BpeVocab): GGUFWriter {
  const what = 'BPE vocabulary';
  checkTokens(v.tokens, what);
  const n = v.tokens.length;
  if (typeof v.pre !== 'string' || v.pre.length === 0) fail(`${what}: pre-tokenizer name missing`);
  if (!Array.isArray(v.merges) || v.merges.length === 0) fail(`${what}: no merges`);
  v.merges.forEach((m, i) => {
    if (typeof m !== 'string' || m.indexOf(' ', 1) === -1) fail(`${what}: merge ${i} is not "left right"`);
  });
  const types = v.types ? checkTypes(v.types, n, what) : new Int32Array(n).fill(TokenType.NORMAL);
  w.addKV('tokenizer.ggml.model', 'gpt2');
  w.addKV('tokenizer.ggml.pre', v.pre);
  w.addKV('tokenizer.ggml.tokens', { type: 'str', value: v.tokens });
  w.addKV('tokenizer.ggml.token_type', types);
  w.addKV('tokenizer.ggml.merges', { type: 'str', value: v.merges });
  addSpecials(w, v, n, what);
  return w;
}

// ---------------------------------------------------------------------------------------------
// Hugging Face tokenizer.json

interface HfAddedToken {
  id: number;
  content: string;
  special?: boolean;
}

interface HfTokenizerJson {
  added_tokens?: HfAddedToken[];
  model?: { type?: string; vocab?: Record<string, number>; merges?: (string | [string, string])[]; unk_token?: string | null; byte_fallback?: boolean };
}

function hfModel(json: unknown, what: string): Required<Pick<NonNullable<HfTokenizerJson['model']>, 'vocab' | 'merges'>> & HfTokenizerJson {
  const j = json as HfTokenizerJson;
  if (!j || typeof j !== 'object' || !j.model || typeof j.model !== 'object') fail(`${what}: not a tokenizer.json`);
  if (j.model.type !== undefined && j.model.type !== 'BPE') fail(`${what}: model type ${j.model.type} is not BPE`);
  if (!j.model.vocab || typeof j.model.vocab !== 'object') fail(`${what}: model.vocab missing`);
  if (!Array.isArray(j.model.merges)) fail(`${what}: model.merges missing`);
  return { ...j, vocab: j.model.vocab, merges: j.model.merges };
}

function mergeParts(m: string | [string, string], i: number, what: string): [string, string] {
  if (Array.isArray(m)) {
    if (m.length !== 2 || typeof m[0] !== 'string' || typeof m[1] !== 'string') fail(`${what}: merge ${i} is malformed`);
    return [m[0], m[1]];
  }
  const pos = typeof m === 'string' ? m.indexOf(' ', 1) : -1;
  if (pos === -1) fail(`${what}: merge ${i} is malformed`);
  return [m.slice(0, pos), m.slice(pos + 1)];
}

/** Id-ordered token list from vocab + added_tokens; gaps become "[PAD{id}]" (UNUSED). */
function hfTokenList(j: ReturnType<typeof hfModel>, what: string): { tokens: string[]; types: number[]; filled: boolean[] } {
  let n = 0;
  for (const id of Object.values(j.vocab)) n = Math.max(n, id + 1);
  for (const t of j.added_tokens ?? []) n = Math.max(n, t.id + 1);
  const tokens = new Array<string>(n);
  const types = new Array<number>(n).fill(TokenType.NORMAL);
  const filled = new Array<boolean>(n).fill(false);
  for (const [t, id] of Object.entries(j.vocab)) {
    if (!Number.isInteger(id) || id < 0) fail(`${what}: bad id for '${t}'`);
    tokens[id] = t;
    filled[id] = true;
  }
  for (const a of j.added_tokens ?? []) {
    tokens[a.id] = a.content;
    types[a.id] = a.special ? TokenType.CONTROL : TokenType.USER_DEFINED;
    filled[a.id] = true;
  }
  for (let i = 0; i < n; i++) {
    if (!filled[i]) {
      tokens[i] = `[PAD${i}]`;
      types[i] = TokenType.UNUSED;
    }
  }
  return { tokens, types, filled };
}

/**
 * A SentencePiece vocabulary from the tokenizer.json of a SentencePiece-BPE model (LLaMA, Mistral,
 * Phi-3). tokenizer.json has no scores, so each piece gets minus the rank of the first merge that
 * produces it (pieces no merge produces get a lower score than any merge). That reproduces the
 * merge order exactly when all merges producing a piece are consecutive in the list (true for
 * Mistral's file; LLaMA's lists its whitespace-run merges out of order). A real converter should
 * take the scores from tokenizer.model.
 */
export function spmVocabFromHfTokenizerJson(json: unknown): SpmVocab {
  const what = 'tokenizer.json';
  const j = hfModel(json, what);
  const { tokens, types } = hfTokenList(j, what);
  const id = new Map(tokens.map((t, i) => [t, i]));
  const scores = new Array<number>(tokens.length).fill(-(j.merges.length + 1));
  j.merges.forEach((m, rank) => {
    const [a, b] = mergeParts(m, rank, what);
    const t = id.get(a + b);
    if (t === undefined) fail(`${what}: merge ${rank} produces '${a + b}', not in the vocabulary`);
    if (scores[t]! < -rank) scores[t] = -rank;
  });
  const unk = j.model?.unk_token ? id.get(j.model.unk_token) : undefined;
  tokens.forEach((t, i) => {
    if (types[i] !== TokenType.NORMAL) return;
    if (/^<0x[0-9A-F]{2}>$/.test(t)) types[i] = TokenType.BYTE;
  });
  if (unk !== undefined) types[unk] = TokenType.UNKNOWN;
  for (let i = 0; i < tokens.length; i++) if (types[i] !== TokenType.NORMAL) scores[i] = 0;
  return { pieces: tokens, scores, types, unknownId: unk };
}

/** A byte-level BPE vocabulary from a GPT-2-style tokenizer.json (e.g. Phi-4's). */
export function bpeVocabFromHfTokenizerJson(json: unknown, pre: string): BpeVocab {
  const what = 'tokenizer.json';
  const j = hfModel(json, what);
  const { tokens, types } = hfTokenList(j, what);
  const merges = j.merges.map((m, i) => mergeParts(m, i, what).join(' '));
  return { tokens, types, merges, pre };
}
