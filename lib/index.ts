/** healthgpt: the public API. */
export { HealthGPTError } from './errors.js';
export { GGUFFile, type GGUFInfo, type GGUFTensor, type GGUFValue } from './gguf/file.js';
export { GGUFWriter, type GGUFWriterOptions, type TensorSource } from './gguf/writer.js';
export { GGML_TYPES, GGMLType, ggmlType, tensorBytes, type GGMLTypeInfo } from './gguf/constants.js';
export { quantizeFile, parseTarget, type QuantizeOptions, type QuantizeResult } from './quantize/quantize.js';
export { QUANTIZE_TARGETS, type QuantizeTarget } from './quantize/plan.js';
export { native } from './native.js';
export { LanguageModel, type LoadOptions, type PluginOptions, type RequestOptions, type GenerateOptions, type CompleteOptions, type ChatOptions, type FinishReason, type PromptPiece } from './model/model.js';
export { Sampler, softmax, type SamplingOptions } from './model/sampler.js';
export { PHI3_INSTRUCT, PHI4_INSTRUCT, TEMPLATES, renderChat, type ChatMessage, type ChatTemplate } from './prompt/template.js';
export { Tokenizer, StreamingDecoder, type EncodeOptions, type DecodeOptions } from './tokenizer/index.js';
