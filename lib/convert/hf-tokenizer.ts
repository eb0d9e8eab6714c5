/**
 * A Hugging Face model folder's tokenizer as a GGUF vocabulary, the way llama.cpp's
 * convert_hf_to_gguf.py does it for Phi-3 / Phi-4:
 * - tokenizer_config.json with tokenizer_class GPT2Tokenizer (Phi-4): byte-level BPE from
 *   tokenizer.json;
 * - otherwise SentencePiece: pieces, scores and types from tokenizer.model (parsed by us), or from
 *   tokenizer.json when there is no tokenizer.model (scores then derived from the merge ranks);
 * - then the added tokens (added_tokens.json, tokenizer_config.json's added_tokens_decoder,
 *   tokenizer.json's added_tokens) at their ids, score -1000, CONTROL when special else
 *   USER_DEFINED; ids past the tokenizer up to the model's vocab_size become [PAD{id}] (UNUSED);
 * - BOS / EOS / UNK / PAD ids from the config's token texts, add_bos_token / add_eos_token, and
 *   the chat template;
 * - beyond llama.cpp: the added tokens' lstrip / rstrip / single_word / normalized flags
 *   (tokenizer_config.json's added_tokens_decoder, else tokenizer.json's added_tokens: the slow
 *   tokenizer HealthGPT loads reads the former) and the ids generation stops at
 *   (generation_config.json's eos_token_id, else config.json's), under HF_TOKEN_FLAG_KEYS /
 *   EOS_IDS_KEY.
 * HealthGPT's 8195 image tokens can be appended after the tokenizer's own tokens, either into
 * rows the checkpoint already has (resized embeddings from HealthGPT's files) or as
 * llava/demo/utils.py adds them: the vocabulary becomes exactly the tokenizer's tokens plus
 * HealthGPT's, and the caller resizes the embeddings and head to it (resize.ts).
 */
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { HealthGPTError } from '../errors.js';
import { TokenType, type AddedTokenFlags } from '../tokenizer/types.js';
import { bpeVocabFromHfTokenizerJson, spmVocabFromHfTokenizerJson, type BpeVocab, type SpmVocab } from '../tokenizer/vocab-gguf.js';
import { modelTypeName, parseSentencePieceModel } from './sentencepiece.js';

function fail(message: string): never {
  throw new HealthGPTError('ERR_TOKENIZER', message);
}

/**
 * HealthGPT's image tokens (docs/model.md): <start_index>, <idx_0> .. <idx_{K-1}>, <end_index>,
 * <pixel_newline>, one <idx_k> per VQGAN codebook entry (the release's VQGAN: K = 8192).
 */
export const HEALTHGPT_CODEBOOK = 8192;
export function healthgptTokens(codebookSize = HEALTHGPT_CODEBOOK): string[] {
  if (!Number.isSafeInteger(codebookSize) || codebookSize < 1) throw new HealthGPTError('ERR_INVALID_ARG', `codebook size must be a positive integer, got ${String(codebookSize)}`);
  const t = ['<start_index>'];
  for (let k = 0; k < codebookSize; k++) t.push(`<idx_${k}>`);
  t.push('<end_index>', '<pixel_newline>');
  return t;
}

interface ConvertedCommon {
  chatTemplate?: string;
  tokenizerSize: number;
  /**
   * Set when HealthGPT's tokens were added as utils.py adds them: the embeddings and head must
   * be resized to `rows`, rows [0, keep) kept and the rest set to the mean of those.
   */
  resize?: { rows: number; keep: number };
}
export type ConvertedVocab = ({ kind: 'spm'; vocab: SpmVocab } | { kind: 'bpe'; vocab: BpeVocab }) & ConvertedCommon;

export interface VocabOptions {
  /** the model's vocab_size (embedding rows): the vocabulary is padded to it */
  vocabSize: number;
  /** append HealthGPT's image tokens (8195 for the release) after the tokenizer's own tokens */
  healthgptTokens?: boolean;
  /** how many <idx_k> tokens healthgptTokens appends: the VQGAN's codebook size (default 8192) */
  codebookSize?: number;
  /**
   * with healthgptTokens: no resized rows come with the checkpoint, so the tokens are added as
   * utils.py adds them (the vocabulary is not padded to vocabSize; see ConvertedVocab.resize)
   */
  resize?: boolean;
  /**
   * BPE pre-tokenizer name for a GPT2Tokenizer. Default: "gpt-2" for a HealthGPT vocabulary
   * (HealthGPT loads the slow GPT2Tokenizer, which always splits with GPT-2's expression), else
   * "dbrx" (cl100k, what Phi-4's tokenizer.json and llama.cpp use)
   */
  bpePre?: string;
}

async function readJson(path: string): Promise<Record<string, unknown> | undefined> {
  if (!existsSync(path)) return undefined;
  try {
    const v = JSON.parse(await readFile(path, 'utf8')) as unknown;
    if (!v || typeof v !== 'object' || Array.isArray(v)) fail(`${path}: not a JSON object`);
    return v as Record<string, unknown>;
  } catch (err) {
    if (err instanceof HealthGPTError) throw err;
    return fail(`${path}: ${(err as Error).message}`);
  }
}

/** "<s>" or {"content": "<s>", ...} (an AddedToken dict) -> "<s>". */
function tokenText(v: unknown): string | undefined {
  if (typeof v === 'string') return v;
  if (v && typeof v === 'object' && typeof (v as { content?: unknown }).content === 'string') return (v as { content: string }).content;
  return undefined;
}

interface Added {
  id: number;
  content: string;
  special: boolean;
  lstrip?: boolean;
  rstrip?: boolean;
  singleWord?: boolean;
  normalized?: boolean;
}

type RawAdded = { id?: unknown; content?: unknown; special?: unknown; lstrip?: unknown; rstrip?: unknown; single_word?: unknown; normalized?: unknown };
const flagsOf = (v: RawAdded): Omit<Added, 'id' | 'content' | 'special'> => ({
  lstrip: v.lstrip === true,
  rstrip: v.rstrip === true,
  singleWord: v.single_word === true,
  // AddedToken's default: normalized unless special
  normalized: typeof v.normalized === 'boolean' ? v.normalized : v.special !== true,
});

function addedTokens(config: Record<string, unknown> | undefined, tokJson: Record<string, unknown> | undefined, addedJson: Record<string, unknown> | undefined, dir: string): Added[] {
  const out: Added[] = [];
  const check = (id: unknown, content: unknown, where: string): void => {
    if (!Number.isSafeInteger(id) || (id as number) < 0) fail(`${where}: added token id ${String(id)} is not a non-negative integer`);
    if (typeof content !== 'string' || content.length === 0) fail(`${where}: added token ${String(id)} has no content`);
  };
  if (addedJson) {
    for (const [content, id] of Object.entries(addedJson)) {
      check(id, content, join(dir, 'added_tokens.json'));
      out.push({ id: id as number, content, special: false });
    }
  }
  const list = tokJson?.added_tokens;
  if (Array.isArray(list)) {
    for (const v of list as RawAdded[]) {
      check(v?.id, v?.content, join(dir, 'tokenizer.json'));
      out.push({ id: v.id as number, content: v.content as string, special: v.special === true, ...flagsOf(v) });
    }
  }
  // last: tokenizer_config.json's entries win (the slow tokenizer HealthGPT loads reads them)
  const dec = config?.added_tokens_decoder;
  if (dec && typeof dec === 'object') {
    for (const [k, v] of Object.entries(dec as Record<string, RawAdded>)) {
      const id = Number(k);
      check(id, v?.content, join(dir, 'tokenizer_config.json'));
      out.push({ id, content: v.content as string, special: v.special === true, ...flagsOf(v) });
    }
  }
  return out;
}

/** The added tokens' flags by id (the last entry for an id wins); absent when no file has any. */
function addedFlags(added: readonly Added[]): AddedTokenFlags | undefined {
  const last = new Map<number, Added>();
  for (const a of added) if (a.lstrip !== undefined) last.set(a.id, a);
  if (last.size === 0) return undefined;
  const ids = [...last.keys()].sort((a, b) => a - b);
  const pick = (f: 'lstrip' | 'rstrip' | 'singleWord' | 'normalized'): number[] => ids.filter((id) => last.get(id)![f] === true);
  return { lstrip: pick('lstrip'), rstrip: pick('rstrip'), singleWord: pick('singleWord'), normalized: pick('normalized') };
}

/** generation_config.json's eos_token_id (an id or a list), else config.json's. */
async function eosTokenIds(dir: string, size: number): Promise<number[] | undefined> {
  for (const f of ['generation_config.json', 'config.json']) {
    const v = (await readJson(join(dir, f)))?.eos_token_id;
    if (v === undefined || v === null) continue;
    const list = Array.isArray(v) ? v : [v];
    for (const id of list) if (!Number.isSafeInteger(id) || id < 0 || id >= size) fail(`${join(dir, f)}: eos_token_id ${JSON.stringify(id)} is not a token id of the vocabulary (${size})`);
    return list as number[];
  }
  return undefined;
}

/** Reads the tokenizer files of a Hugging Face model folder into a GGUF vocabulary. */
export async function loadHfVocab(dir: string, opts: VocabOptions): Promise<ConvertedVocab> {
  const config = await readJson(join(dir, 'tokenizer_config.json'));
  const tokJson = await readJson(join(dir, 'tokenizer.json'));
  const addedJson = await readJson(join(dir, 'added_tokens.json'));
  const chatTemplate = typeof config?.chat_template === 'string' ? config.chat_template : undefined;
  const spPath = join(dir, 'tokenizer.model');

  if (config?.tokenizer_class === 'GPT2Tokenizer') {
    if (!tokJson) fail(`${dir}: tokenizer_config.json names GPT2Tokenizer but there is no tokenizer.json`);
    const v = bpeVocabFromHfTokenizerJson(tokJson, opts.bpePre ?? (opts.healthgptTokens ? 'gpt-2' : 'dbrx'));
    const tokenizerSize = v.tokens.length;
    const tokens = [...v.tokens];
    const types = Array.from(v.types ?? new Array<number>(tokens.length).fill(TokenType.NORMAL));
    const added = addedTokens(config, tokJson, undefined, dir);
    for (const a of added) if (a.id < tokens.length) types[a.id] = a.special ? TokenType.CONTROL : TokenType.USER_DEFINED;
    const resize = extend(tokens, types, undefined, opts, dir);
    const vocab: BpeVocab = { ...v, tokens, types, ...specials(config, tokens), flags: addedFlags(added), eosTokenIds: await eosTokenIds(dir, tokens.length) };
    return { kind: 'bpe', vocab, chatTemplate, tokenizerSize, resize };
  }

  let pieces: string[];
  let scores: number[];
  let types: number[];
  let addSpacePrefix: boolean | undefined;
  let fallback: Fallback = {};
  if (existsSync(spPath)) {
    const sp = parseSentencePieceModel(new Uint8Array(await readFile(spPath)), spPath);
    // llama.cpp's "llama" vocabulary merges by score: the BPE model Llama-2 / Phi-3 use
    if (sp.modelType !== 2) fail(`${spPath}: a SentencePiece ${modelTypeName(sp.modelType)} model; only BPE models (Llama-2 / Phi-3 style) are converted`);
    pieces = sp.pieces;
    scores = Array.from(sp.scores);
    types = Array.from(sp.types);
    addSpacePrefix = sp.addDummyPrefix;
    const id = (i: number): number | undefined => (i >= 0 && i < sp.pieces.length ? i : undefined);
    fallback = { bosId: id(sp.bosId), eosId: id(sp.eosId), unknownId: id(sp.unkId), paddingId: id(sp.padId) };
  } else if (tokJson) {
    const v = spmVocabFromHfTokenizerJson(tokJson);
    fallback = { unknownId: v.unknownId };
    pieces = [...v.pieces];
    scores = Array.from(v.scores);
    types = Array.from(v.types);
  } else {
    return fail(`${dir}: no tokenizer.model or tokenizer.json`);
  }
  const tokenizerSizeBefore = pieces.length;
  // added tokens at their ids (llama.cpp: score -1000; CONTROL when special, else USER_DEFINED)
  const added = addedTokens(config, tokJson, addedJson, dir);
  let tokenizerSize = tokenizerSizeBefore;
  for (const a of added) tokenizerSize = Math.max(tokenizerSize, a.id + 1);
  if (tokenizerSize > opts.vocabSize && !(opts.healthgptTokens && opts.resize)) fail(`${dir}: the tokenizer has ${tokenizerSize} tokens, more than the model's vocab_size ${opts.vocabSize}`);
  for (let i = pieces.length; i < tokenizerSize; i++) {
    pieces.push(`[PAD${i}]`);
    scores.push(-10000);
    types.push(TokenType.UNUSED);
  }
  for (const a of added) {
    pieces[a.id] = a.content;
    scores[a.id] = -1000;
    types[a.id] = a.special ? TokenType.CONTROL : TokenType.USER_DEFINED;
  }
  const resize = extend(pieces, types, scores, opts, dir);
  const vocab: SpmVocab = { pieces, scores, types, addSpacePrefix, ...specials(config, pieces, fallback), flags: addedFlags(added), eosTokenIds: await eosTokenIds(dir, pieces.length) };
  return { kind: 'spm', vocab, chatTemplate, tokenizerSize, resize };
}

/**
 * Appends HealthGPT's tokens when asked, then pads with [PAD{id}] to the model's vocab_size.
 * With opts.resize the tokens are added as utils.py's add_special_tokens_and_resize_model adds
 * them: unless the tokenizer has them already, they follow the tokenizer's own tokens and the
 * vocabulary ends there (resize_token_embeddings(len(tokenizer))); the returned plan says so.
 */
function extend(tokens: string[], types: number[], scores: number[] | undefined, opts: VocabOptions, dir: string): { rows: number; keep: number } | undefined {
  let resize: { rows: number; keep: number } | undefined;
  if (opts.healthgptTokens) {
    const extra = healthgptTokens(opts.codebookSize);
    const seen = new Set(tokens);
    const present = extra.filter((t) => seen.has(t)).length;
    if (present > 0 && present < extra.length) fail(`${dir}: the tokenizer has ${present} of HealthGPT's ${extra.length} tokens (all or none expected)`);
    if (present === 0) {
      if (opts.resize) resize = { rows: tokens.length + extra.length, keep: tokens.length };
      else if (tokens.length + extra.length > opts.vocabSize)
        fail(
          `${dir}: the tokenizer's ${tokens.length} tokens and HealthGPT's ${extra.length} make ${tokens.length + extra.length}, more than the model's ${opts.vocabSize} embedding rows (the resized rows given)`,
        );
      for (const t of extra) {
        tokens.push(t);
        types.push(TokenType.USER_DEFINED);
        scores?.push(-1000);
      }
    }
  }
  const size = resize?.rows ?? opts.vocabSize;
  if (tokens.length > size) fail(`${dir}: the tokenizer has ${tokens.length} tokens, more than the model's vocab_size ${size}`);
  for (let i = tokens.length; i < size; i++) {
    tokens.push(`[PAD${i}]`);
    types.push(TokenType.UNUSED);
    scores?.push(-10000);
  }
  return resize;
}

type Fallback = { bosId?: number; eosId?: number; unknownId?: number; paddingId?: number };

/**
 * Special ids by their texts in tokenizer_config.json (else the tokenizer model's own, from
 * `fallback`), and the add_bos / add_eos flags.
 */
function specials(config: Record<string, unknown> | undefined, tokens: readonly string[], fallback: Fallback = {}): Fallback & { addBos?: boolean; addEos?: boolean } {
  const index = new Map<string, number>();
  tokens.forEach((t, i) => {
    if (!index.has(t)) index.set(t, i);
  });
  const id = (key: string): number | undefined => {
    const text = tokenText(config?.[key]);
    if (text === undefined) return undefined;
    const i = index.get(text);
    if (i === undefined) fail(`tokenizer_config.json: ${key} '${text}' is not in the vocabulary`);
    return i;
  };
  const flag = (key: string): boolean | undefined => (typeof config?.[key] === 'boolean' ? (config[key] as boolean) : undefined);
  return {
    bosId: id('bos_token') ?? fallback.bosId,
    eosId: id('eos_token') ?? fallback.eosId,
    unknownId: id('unk_token') ?? fallback.unknownId,
    paddingId: id('pad_token') ?? fallback.paddingId,
    addBos: flag('add_bos_token'),
    addEos: flag('add_eos_token'),
  };
}
