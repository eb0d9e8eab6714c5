/** Token types as GGUF stores them (tokenizer.ggml.token_type), and llama.cpp's attribute bits. */

export const TokenType = {
  UNDEFINED: 0,
  NORMAL: 1,
  UNKNOWN: 2,
  CONTROL: 3,
  USER_DEFINED: 4,
  UNUSED: 5,
  BYTE: 6,
} as const;
export type TokenTypeId = (typeof TokenType)[keyof typeof TokenType];

/** llama.cpp's llama_token_attr bits. */
export const TokenAttr = {
  UNDEFINED: 0,
  UNKNOWN: 1 << 0,
  UNUSED: 1 << 1,
  NORMAL: 1 << 2,
  CONTROL: 1 << 3,
  USER_DEFINED: 1 << 4,
  BYTE: 1 << 5,
  NORMALIZED: 1 << 6,
  LSTRIP: 1 << 7,
  RSTRIP: 1 << 8,
  SINGLE_WORD: 1 << 9,
} as const;

export type TokenizerModelName = 'llama' | 'gpt2';

/**
 * GGUF keys the converter adds for what llama.cpp's keys cannot say (llama.cpp ignores them):
 * - the Hugging Face added tokens' flags (tokenizer.json added_tokens / tokenizer_config.json
 *   added_tokens_decoder), each the u32 ids of the added tokens with the flag set; when any of
 *   them is present they replace llama.cpp's by-name Phi-3 RSTRIP rule;
 * - the ids generation stops at: generation_config.json's eos_token_id (an id or a list),
 *   else config.json's, as transformers' generate() reads them.
 */
export const HF_TOKEN_FLAG_KEYS = {
  lstrip: 'healthgpt.tokenizer.lstrip',
  rstrip: 'healthgpt.tokenizer.rstrip',
  singleWord: 'healthgpt.tokenizer.single_word',
  normalized: 'healthgpt.tokenizer.normalized',
} as const;
export const EOS_IDS_KEY = 'healthgpt.tokenizer.eos_token_ids';

/** Added-token flags by token id (see HF_TOKEN_FLAG_KEYS). */
export interface AddedTokenFlags {
  lstrip: number[];
  rstrip: number[];
  singleWord: number[];
  normalized: number[];
}

export interface TokenizerOptions {
  /**
   * Mark special tokens RSTRIP (whitespace after them is dropped when they are matched in text).
   * Default: the added-token flags the file carries (HF_TOKEN_FLAG_KEYS); without them llama.cpp's
   * rule, on when general.name contains "phi-3"/"phi3": every control and user-defined token and
   * </s>, except <unk>, <s> and <|endoftext|>.
   */
  phi3Rstrip?: boolean;
  /**
   * Replace the BPE pre-tokenizer's expressions with those of another tokenizer.ggml.pre name
   * (e.g. "gpt-2": Hugging Face's slow GPT2Tokenizer always splits with the GPT-2 expression,
   * whatever the fast tokenizer.json says).
   */
  preRegexesOf?: string;
}

/**
 * Where a SentencePiece ('llama') vocabulary puts the '▁' space prefix:
 * - 'llama.cpp' (default): before the first text fragment and before every fragment that follows
 *   a special token (llama.cpp's `is_prev_special`; also HF LlamaTokenizer with legacy=true and
 *   HF fast tokenizers with a Prepend normalizer);
 * - 'hf-slow': HF slow LlamaTokenizer with legacy=false (Phi-3's tokenizer_config), whose
 *   tokenize() reads literal '▁' as a space, prepends one '▁' to the whole text, splits out the
 *   added tokens and SentencePiece-encodes each chunk without a dummy prefix. So: '▁' in front of
 *   the text only, never after a special token; when the text starts with a special token the
 *   '▁' stays as a lone token (29871 in Phi-3) unless that special token is one of the
 *   tokenizer's all_special_tokens (see EncodeOptions.hfAllSpecialIds), where HF drops it.
 *   RSTRIP/LSTRIP then strip Python whitespace (str.isspace) instead of C isspace.
 */
export type SpacePrefixStyle = 'llama.cpp' | 'hf-slow';

export interface EncodeOptions {
  /** Add BOS/EOS as tokenizer.ggml.add_bos_token/add_eos_token say (llama_tokenize add_special). Default true. */
  addSpecial?: boolean;
  /** Recognise control tokens (e.g. <|user|>) in the text (llama_tokenize parse_special). Default false. */
  special?: boolean;
  /** SentencePiece space prefix placement; see SpacePrefixStyle. Default 'llama.cpp'. */
  prefixStyle?: SpacePrefixStyle;
  /**
   * 'hf-slow' only: the ids in the HF tokenizer's all_special_tokens (bos/eos/unk/pad plus
   * additional_special_tokens). Default: the vocabulary's BOS, EOS, UNK and padding ids, which is
   * what Phi-3's tokenizer_config gives (its <|user|> etc. are added tokens, not in that list).
   */
  hfAllSpecialIds?: readonly number[];
}

export interface DecodeOptions {
  /** Render control/unknown tokens as their text (llama.cpp unparse_special). Default false. */
  special?: boolean;
  /** Drop a leading BOS and trailing EOS when add_bos/add_eos (llama.cpp remove_special). Default false. */
  removeSpecial?: boolean;
  /**
   * Strip one leading space from the first token's piece. Default: the vocabulary's
   * add_space_prefix (true for SentencePiece), except that llama.cpp does not strip when
   * removeSpecial dropped a leading BOS.
   */
  stripLeadingSpace?: boolean;
  /** llama.cpp's clean_up_tokenization_spaces passes. Default: the vocabulary's clean_spaces. */
  cleanSpaces?: boolean;
}
