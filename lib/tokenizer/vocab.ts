/**
 * The vocabulary as llama.cpp loads it from GGUF metadata (llama_vocab::impl::load): token texts,
 * scores, types turned into attributes (with llama.cpp's by-text overrides for end-of-generation
 * and FIM tokens), special token ids, add_bos/add_eos/add_space_prefix, BPE merge ranks and the
 * special-token cache used to split text around special tokens.
 */
import { HealthGPTError } from '../errors.js';
import { preTokenizerSpec, withRegexesOf, type PreTokenizerSpec } from './pretokenize.js';
import { EOS_IDS_KEY, HF_TOKEN_FLAG_KEYS, TokenAttr, TokenType, type TokenizerModelName, type TokenizerOptions } from './types.js';

type Metadata = Record<string, unknown>;

function fail(message: string): never {
  throw new HealthGPTError('ERR_TOKENIZER', message);
}

function optString(md: Metadata, key: string): string | undefined {
  const v = md[key];
  if (v === undefined) return undefined;
  if (typeof v !== 'string') fail(`${key} must be a string`);
  return v;
}

function optBool(md: Metadata, key: string): boolean | undefined {
  const v = md[key];
  if (v === undefined) return undefined;
  if (typeof v !== 'boolean') fail(`${key} must be a boolean`);
  return v;
}

function optId(md: Metadata, key: string): number | undefined {
  const v = md[key];
  if (v === undefined) return undefined;
  const n = typeof v === 'bigint' ? Number(v) : v;
  if (typeof n !== 'number' || !Number.isInteger(n) || n < 0) fail(`${key} must be a non-negative integer`);
  return n;
}

function optArray(md: Metadata, key: string): ArrayLike<unknown> | undefined {
  const v = md[key];
  if (v === undefined) return undefined;
  if (!Array.isArray(v) && !ArrayBuffer.isView(v)) fail(`${key} must be an array`);
  return v as unknown as ArrayLike<unknown>;
}

/** A u32 id list key; every id must be a token of the vocabulary. */
function idList(md: Metadata, key: string, n: number): number[] | undefined {
  const v = optArray(md, key);
  if (v === undefined) return undefined;
  const out: number[] = [];
  for (let i = 0; i < v.length; i++) {
    const x = typeof v[i] === 'bigint' ? Number(v[i]) : v[i];
    if (typeof x !== 'number' || !Number.isInteger(x) || x < 0 || x >= n) fail(`${key}[${i}] = ${String(v[i])} is not a token id (vocabulary of ${n})`);
    out.push(x);
  }
  return out;
}

const EOT_TEXTS = ['<|eot_id|>', '<|im_end|>', '<|end|>', '<end_of_turn>', '<|endoftext|>', '<|end_of_text|>', '<EOT>', '_<EOT>', '[EOT]', '<｜end▁of▁sentence｜>', '<end_of_utterance>'];
const EOM_TEXTS = ['<|eom_id|>'];
const FIM_TEXTS = [
  ['<|fim_prefix|>', '<fim-prefix>', '<fim_prefix>', '<｜fim▁begin｜>', '<PRE>', '▁<PRE>', '<|code_prefix|>', '<|prefix|>'],
  ['<|fim_suffix|>', '<fim-suffix>', '<fim_suffix>', '<｜fim▁hole｜>', '<SUF>', '▁<SUF>', '<|code_suffix|>', '<|suffix|>'],
  ['<|fim_middle|>', '<fim-middle>', '<fim_middle>', '<｜fim▁end｜>', '<MID>', '▁<MID>', '<|code_middle|>', '<|middle|>'],
  ['<|fim_pad|>', '<fim-pad>', '<fim_pad>', '<PAD>', '[PAD]'],
  ['<|fim_repo|>', '<|repo_name|>', '<fim-repo>', '<REPO>', '<reponame>'],
  ['<|file_sep|>'],
];
const EOG_TEXTS = [
  '<|eot_id|>',
  '<|im_end|>',
  '<|end|>',
  '<|return|>',
  '<|call|>',
  '<|flush|>',
  '<|calls|>',
  '<end_of_turn>',
  '<|endoftext|>',
  '</s>',
  '<|eom_id|>',
  '<EOT>',
  '_<EOT>',
  '[EOT]',
  '[EOS]',
  '<|end_of_text|>',
  '<end_of_utterance>',
  '<eos>',
  '<turn|>',
  '<|tool_response>',
  '<｜end▁of▁sentence｜>',
  '[e~[',
];

function typeToAttr(t: number): number {
  switch (t) {
    case TokenType.UNKNOWN:
      return TokenAttr.UNKNOWN;
    case TokenType.UNUSED:
      return TokenAttr.UNUSED;
    case TokenType.NORMAL:
      return TokenAttr.NORMAL;
    case TokenType.CONTROL:
      return TokenAttr.CONTROL;
    case TokenType.USER_DEFINED:
      return TokenAttr.USER_DEFINED;
    case TokenType.BYTE:
      return TokenAttr.BYTE;
    default:
      return TokenAttr.UNDEFINED;
  }
}

export class Vocab {
  readonly model: TokenizerModelName;
  readonly tokens: readonly string[];
  readonly scores: Float32Array;
  readonly attrs: Uint16Array;
  readonly tokenToId: ReadonlyMap<string, number>;
  /** BPE merges "a b" -> rank (first occurrence wins, as llama.cpp's emplace). */
  readonly mergeRanks: ReadonlyMap<string, number>;
  readonly pre: PreTokenizerSpec | undefined;
  readonly bosId: number | null;
  readonly eosId: number | null;
  readonly eotId: number | null;
  readonly eomId: number | null;
  readonly unkId: number | null;
  readonly padId: number | null;
  readonly addBos: boolean;
  readonly addEos: boolean;
  readonly addSpacePrefix: boolean;
  readonly cleanSpaces: boolean;
  readonly ignoreMerges: boolean;
  readonly eogIds: ReadonlySet<number>;
  /** some added token has single_word (only the Hugging Face slow rule uses it) */
  readonly hasSingleWord: boolean;
  /** the ids the model's generation config stops at (EOS_IDS_KEY), when the file says */
  readonly eosTokenIds: readonly number[] | null;
  /** Control, user-defined and unknown tokens, longest text (UTF-8 bytes) first, then by id. */
  readonly specialCache: readonly number[];

  private constructor(md: Metadata, options: TokenizerOptions) {
    const model = optString(md, 'tokenizer.ggml.model');
    if (model === undefined) fail('tokenizer.ggml.model is missing');
    if (model !== 'llama' && model !== 'gpt2') fail(`unsupported tokenizer model '${model}' (supported: llama, gpt2)`);
    this.model = model;

    const rawTokens = optArray(md, 'tokenizer.ggml.tokens');
    if (rawTokens === undefined) fail('tokenizer.ggml.tokens is missing');
    const n = rawTokens.length;
    if (n === 0) fail('tokenizer.ggml.tokens is empty');
    const tokens: string[] = new Array<string>(n);
    const tokenToId = new Map<string, number>();
    for (let i = 0; i < n; i++) {
      const raw = rawTokens[i];
      if (typeof raw !== 'string') fail(`tokenizer.ggml.tokens[${i}] is not a string`);
      const t: string = raw === '' ? `[EMPTY_${i}]` : raw; // llama.cpp renames empty tokens
      if (tokenToId.has(t)) fail(`duplicate token in vocabulary: '${t}' has ids ${tokenToId.get(t)} and ${i}`);
      tokenToId.set(t, i);
      tokens[i] = t;
    }
    this.tokens = tokens;
    this.tokenToId = tokenToId;

    const scores = new Float32Array(n);
    const rawScores = optArray(md, 'tokenizer.ggml.scores');
    if (rawScores !== undefined) {
      if (rawScores.length < n) fail(`tokenizer.ggml.scores has ${rawScores.length} entries for ${n} tokens`);
      for (let i = 0; i < n; i++) {
        const s = rawScores[i];
        if (typeof s !== 'number' || Number.isNaN(s)) fail(`tokenizer.ggml.scores[${i}] is not a number`);
        scores[i] = s;
      }
    }
    this.scores = scores;

    const attrs = new Uint16Array(n).fill(TokenAttr.NORMAL);
    const rawTypes = optArray(md, 'tokenizer.ggml.token_type');
    if (rawTypes !== undefined) {
      if (rawTypes.length < n) fail(`tokenizer.ggml.token_type has ${rawTypes.length} entries for ${n} tokens`);
      for (let i = 0; i < n; i++) {
        const t = rawTypes[i];
        if (typeof t !== 'number' || !Number.isInteger(t)) fail(`tokenizer.ggml.token_type[${i}] is not an integer`);
        attrs[i] = typeToAttr(t);
      }
    }
    this.attrs = attrs;

    // Merges and pre-tokenizer (BPE only).
    const ranks = new Map<string, number>();
    let addBos: boolean;
    let addSpacePrefix: boolean;
    let cleanSpaces: boolean;
    let bos: number | null;
    let eos: number | null;
    let unk: number | null;
    if (model === 'gpt2') {
      const merges = optArray(md, 'tokenizer.ggml.merges');
      if (merges === undefined) fail('tokenizer.ggml.merges is missing (required for gpt2)');
      for (let i = 0; i < merges.length; i++) {
        const m = merges[i];
        if (typeof m !== 'string') fail(`tokenizer.ggml.merges[${i}] is not a string`);
        const pos = m.indexOf(' ', 1);
        if (pos === -1) continue; // llama.cpp keeps it as an unmatchable ("", "") pair
        if (!ranks.has(m)) ranks.set(m, i);
      }
      let pre = preTokenizerSpec(optString(md, 'tokenizer.ggml.pre'));
      if (options.preRegexesOf !== undefined) pre = withRegexesOf(pre, options.preRegexesOf);
      this.pre = pre;
      this.ignoreMerges = pre.ignoreMerges;
      addBos = pre.addBos;
      addSpacePrefix = false;
      cleanSpaces = pre.cleanSpaces;
      bos = 11;
      eos = 11;
      unk = null;
    } else {
      this.pre = undefined;
      this.ignoreMerges = false;
      addBos = true;
      addSpacePrefix = true;
      cleanSpaces = false;
      bos = 1;
      eos = 2;
      unk = 0;
    }
    this.mergeRanks = ranks;
    addSpacePrefix = optBool(md, 'tokenizer.ggml.add_space_prefix') ?? addSpacePrefix;

    // Special ids: defaults out of range are disabled; metadata ids out of range are ignored.
    const pick = (key: string, def: number | null): number | null => {
      let id = def !== null && def >= n ? null : def;
      const v = optId(md, key);
      if (v !== undefined && v < n) id = v;
      return id;
    };
    bos = pick('tokenizer.ggml.bos_token_id', bos);
    eos = pick('tokenizer.ggml.eos_token_id', eos);
    unk = pick('tokenizer.ggml.unknown_token_id', unk);
    let eot = pick('tokenizer.ggml.eot_token_id', null);
    let eom = pick('tokenizer.ggml.eom_token_id', null);
    this.padId = pick('tokenizer.ggml.padding_token_id', null);
    const fim: (number | null)[] = [
      pick('tokenizer.ggml.fim_pre_token_id', pick('tokenizer.ggml.prefix_token_id', null)),
      pick('tokenizer.ggml.fim_suf_token_id', pick('tokenizer.ggml.suffix_token_id', null)),
      pick('tokenizer.ggml.fim_mid_token_id', pick('tokenizer.ggml.middle_token_id', null)),
      pick('tokenizer.ggml.fim_pad_token_id', null),
      pick('tokenizer.ggml.fim_rep_token_id', null),
      pick('tokenizer.ggml.fim_sep_token_id', null),
    ];
    addBos = optBool(md, 'tokenizer.ggml.add_bos_token') ?? addBos;
    const addEos = optBool(md, 'tokenizer.ggml.add_eos_token') ?? false;
    if (addBos && bos === null) fail('tokenizer.ggml.add_bos_token is true, but tokenizer.ggml.bos_token_id is not set');
    if (addEos && eos === null) fail('tokenizer.ggml.add_eos_token is true, but tokenizer.ggml.eos_token_id is not set');

    // By-text detection (llama.cpp iterates an unordered map; where several texts qualify we take
    // the lowest id). Detected tokens are forced to CONTROL.
    const forceControl = (id: number): void => {
      attrs[id]! |= TokenAttr.CONTROL;
    };
    const firstOf = (texts: readonly string[]): number | null => {
      let best: number | null = null;
      for (const t of texts) {
        const id = tokenToId.get(t);
        if (id !== undefined && (best === null || id < best)) best = id;
      }
      return best;
    };
    if (eot === null) {
      eot = firstOf(EOT_TEXTS);
      if (eot !== null) forceControl(eot);
    }
    if (eom === null) {
      eom = firstOf(EOM_TEXTS);
      if (eom !== null) forceControl(eom);
    }
    fim.forEach((id, k) => {
      if (id === null) {
        const found = firstOf(FIM_TEXTS[k]!);
        if (found !== null) {
          fim[k] = found;
          forceControl(found);
        }
      }
    });
    // Control tokens named "...unused..." are unused.
    for (let i = 0; i < n; i++) {
      if (attrs[i]! & TokenAttr.CONTROL && tokens[i]!.includes('unused')) attrs[i]! |= TokenAttr.UNUSED;
    }
    // End-of-generation set.
    const eog = new Set<number>();
    for (const id of [fim[3], fim[4], fim[5]]) if (id !== null && id !== undefined) eog.add(id);
    for (const t of EOG_TEXTS) {
      const id = tokenToId.get(t);
      if (id !== undefined) {
        eog.add(id);
        forceControl(id);
      }
    }
    for (const t of ['<|channel|>', '<|message|>', '<|start|>', '<|constrain|>']) {
      const id = tokenToId.get(t);
      if (id !== undefined) attrs[id] = TokenAttr.USER_DEFINED;
    }
    for (const id of [eos, eot, eom]) if (id !== null) eog.add(id);
    {
      const has = (t: string): number | undefined => {
        const id = tokenToId.get(t);
        return id !== undefined && eog.has(id) ? id : undefined;
      };
      const end = has('<|end|>');
      if (end !== undefined && ((has('<|return|>') !== undefined && has('<|call|>') !== undefined) || (has('<|calls|>') !== undefined && has('<|flush|>') !== undefined))) {
        eog.delete(end);
        attrs[end] = TokenAttr.USER_DEFINED;
      }
      const s = has('</s>');
      if (s !== undefined && has('<|tool_response>') !== undefined) {
        eog.delete(s);
        attrs[s] = TokenAttr.NORMAL;
      }
    }

    // Special token cache.
    const special: number[] = [];
    const byteLen = new Int32Array(n);
    for (let i = 0; i < n; i++) {
      if (attrs[i]! & (TokenAttr.CONTROL | TokenAttr.USER_DEFINED | TokenAttr.UNKNOWN)) {
        special.push(i);
        byteLen[i] = Buffer.byteLength(tokens[i]!, 'utf8');
      }
    }
    special.sort((a, b) => byteLen[b]! - byteLen[a]! || a - b);
    this.specialCache = special;

    // Hugging Face added-token flags, when the converter recorded them.
    const flagAttr = { lstrip: TokenAttr.LSTRIP, rstrip: TokenAttr.RSTRIP, singleWord: TokenAttr.SINGLE_WORD, normalized: TokenAttr.NORMALIZED };
    let hfFlags = false;
    for (const [k, key] of Object.entries(HF_TOKEN_FLAG_KEYS)) {
      const list = idList(md, key, n);
      if (list === undefined) continue;
      hfFlags = true;
      for (const id of list) attrs[id]! |= flagAttr[k as keyof typeof flagAttr];
    }
    this.eosTokenIds = idList(md, EOS_IDS_KEY, n) ?? null;
    this.hasSingleWord = attrs.some((a) => (a & TokenAttr.SINGLE_WORD) !== 0);

    // Per-model attributes (llama.cpp sets them by general.name; the file's own flags win).
    const name = (optString(md, 'general.name') ?? '').toLowerCase();
    const phi3 = options.phi3Rstrip ?? (!hfFlags && (name.includes('phi-3') || name.includes('phi3')));
    if (phi3) {
      for (const id of special) attrs[id]! |= TokenAttr.RSTRIP;
      const set = (t: string, on: boolean): void => {
        const id = tokenToId.get(t);
        if (id === undefined) return;
        attrs[id] = on ? attrs[id]! | TokenAttr.RSTRIP : attrs[id]! & ~TokenAttr.RSTRIP;
      };
      set('</s>', true);
      for (const t of ['<unk>', '<s>', '<|endoftext|>']) set(t, false);
    }

    this.bosId = bos;
    this.eosId = eos;
    this.unkId = unk;
    this.eotId = eot;
    this.eomId = eom;
    this.addBos = addBos;
    this.addEos = addEos;
    this.addSpacePrefix = addSpacePrefix;
    this.cleanSpaces = cleanSpaces;
    this.eogIds = eog;
  }

  /** Builds the vocabulary from GGUF metadata; throws HealthGPTError ERR_TOKENIZER when malformed. */
  static fromMetadata(md: Metadata, options: TokenizerOptions = {}): Vocab {
    if (md === null || typeof md !== 'object') fail('metadata must be an object');
    return new Vocab(md, options);
  }

  get size(): number {
    return this.tokens.length;
  }

  hasAttr(id: number, attr: number): boolean {
    return (this.attrs[id]! & attr) !== 0;
  }
}
