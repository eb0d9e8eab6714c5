/** Tokenizers for HealthGPT's language models (Phi-3 SentencePiece, Phi-4 byte-level BPE). */
export { Tokenizer } from './tokenizer.js';
export { StreamingDecoder, type StreamingDecoderOptions } from './stream.js';
export { Vocab } from './vocab.js';
export {
  EOS_IDS_KEY,
  HF_TOKEN_FLAG_KEYS,
  TokenAttr,
  TokenType,
  type AddedTokenFlags,
  type DecodeOptions,
  type EncodeOptions,
  type SpacePrefixStyle,
  type TokenizerModelName,
  type TokenizerOptions,
  type TokenTypeId,
} from './types.js';
export { SUPPORTED_PRE_TOKENIZERS, preTokenize, preTokenizerSpec, type PreTokenizerSpec } from './pretokenize.js';
export {
  addBpeVocab,
  addSpmVocab,
  bpeVocabFromHfTokenizerJson,
  spmVocabFromHfTokenizerJson,
  type BpeVocab,
  type SpecialTokenConfig,
  type SpmVocab,
} from './vocab-gguf.js';
export { bpeVocabFromRanks, type RanksVocabOptions } from './ranks.js';
