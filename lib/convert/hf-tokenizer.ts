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
 *   the chat template.
 * HealthGPT's 8195 image tokens can be appended after the tokenizer's own tokens.
 */
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { HealthGPTError } from '../errors.js';
import { TokenType } from '../tokenizer/types.js';
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
  if (!Number.isSafeInteger(codebookSize) || codebookSize < 1) throw new HealthGPTError('ERR_INVALID_OPTION', `codebook size must be a positive integer, got ${String(codebookSize)}`);
  const t = ['<start_index>'];
  for (let k = 0; k < codebookSize; k++) t.push(`<idx_${k}>`);
  t.push('<end_index>', '<pixel_newline>');
  return t;
}

export type ConvertedVocab = { kind: 'spm'; vocab: SpmVocab; chatTemplate?: string; tokenizerSize: number } | { kind: 'bpe'; vocab: BpeVocab; chatTemplate?: string; tokenizerSize: number };

export interface VocabOptions {
  /** the model's vocab_size (embedding rows): the vocabulary is padded to it */
  vocabSize: number;
  /** append HealthGPT's image tokens (8195 for the release) after the tokenizer's own tokens */
  healthgptTokens?: boolean;
  /** how many <idx_k> tokens healthgptTokens appends: the VQGAN's codebook size (default 8192) */
  codebookSize?: number;
  /** BPE pre-tokenizer name for a GPT2Tokenizer (Phi-4's is "dbrx") */
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
}

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
  const dec = config?.added_tokens_decoder;
  if (dec && typeof dec === 'object') {
    for (const [k, v] of Object.entries(dec as Record<string, { content?: unknown; special?: unknown }>)) {
      const id = Number(k);
      check(id, v?.content, join(dir, 'tokenizer_config.json'));
      out.push({ id, content: v.content as string, special: v.special === true });
    }
  }
  const list = tokJson?.added_tokens;
  if (Array.isArray(list)) {
    for (const v of list as Array<{ id?: unknown; content?: unknown; special?: unknown }>) {
      check(v?.id, v?.content, join(dir, 'tokenizer.json'));
      out.push({ id: v.id as number, content: v.content as string, special: v.special === true });
    }
  }
  return out;
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
    const v = bpeVocabFromHfTokenizerJson(tokJson, opts.bpePre ?? 'dbrx');
    const tokenizerSize = v.tokens.length;
    const tokens = [...v.tokens];
    const types = Array.from(v.types ?? new Array<number>(tokens.length).fill(TokenType.NORMAL));
    extend(tokens, types, undefined, opts, dir);
    const vocab: BpeVocab = { ...v, tokens, types, ...specials(config, tokens) };
    return { kind: 'bpe', vocab, chatTemplate, tokenizerSize };
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
  if (tokenizerSize > opts.vocabSize) fail(`${dir}: the tokenizer has ${tokenizerSize} tokens, more than the model's vocab_size ${opts.vocabSize}`);
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
  extend(pieces, types, scores, opts, dir);
  const vocab: SpmVocab = { pieces, scores, types, addSpacePrefix, ...specials(config, pieces, fallback) };
  return { kind: 'spm', vocab, chatTemplate, tokenizerSize };
}

/** Appends HealthGPT's tokens when asked, then pads with [PAD{id}] to the model's vocab_size. */
function extend(tokens: string[], types: number[], scores: number[] | undefined, opts: VocabOptions, dir: string): void {
  if (opts.healthgptTokens) {
    const extra = healthgptTokens(opts.codebookSize);
    if (tokens.length + extra.length > opts.vocabSize)
      fail(`${dir}: the tokenizer's ${tokens.length} tokens and HealthGPT's ${extra.length} make ${tokens.length + extra.length}, more than the model's ${opts.vocabSize} embedding rows (convert a checkpoint whose embeddings were resized for HealthGPT)`);
    const seen = new Set(tokens);
    for (const t of extra) {
      if (seen.has(t)) fail(`${dir}: the tokenizer already has '${t}'`);
      tokens.push(t);
      types.push(TokenType.USER_DEFINED);
      scores?.push(-1000);
    }
  }
  if (tokens.length > opts.vocabSize) fail(`${dir}: the tokenizer has ${tokens.length} tokens, more than the model's vocab_size ${opts.vocabSize}`);
  for (let i = tokens.length; i < opts.vocabSize; i++) {
    tokens.push(`[PAD${i}]`);
    types.push(TokenType.UNUSED);
    scores?.push(-10000);
  }
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
