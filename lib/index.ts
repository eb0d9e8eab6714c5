/** healthgpt: the public API. */
export { HealthGPTError, ERROR_CODES, type ErrorCode } from './errors.js';
export { GGUFFile, type GGUFInfo, type GGUFTensor, type GGUFValue } from './gguf/file.js';
export { GGUFWriter, type GGUFWriterOptions, type TensorSource } from './gguf/writer.js';
export { GGML_TYPES, GGMLType, ggmlType, tensorBytes, type GGMLTypeInfo } from './gguf/constants.js';
export { quantizeFile, parseTarget, type QuantizeOptions, type QuantizeResult } from './quantize/quantize.js';
export { QUANTIZE_TARGETS, type QuantizeTarget } from './quantize/plan.js';
export { native } from './native.js';
export {
  LanguageModel,
  type LoadOptions,
  type PluginOptions,
  type RequestOptions,
  type GenerateOptions,
  type CompleteOptions,
  type ChatOptions,
  type FinishReason,
  type PromptPiece,
} from './model/model.js';
export { Sampler, softmax, type LogitMask, type SamplingOptions } from './model/sampler.js';
export { PHI3_INSTRUCT, PHI4_INSTRUCT, TEMPLATES, renderChat, type ChatMessage, type ChatTemplate } from './prompt/template.js';
export { Tokenizer, StreamingDecoder, type EncodeOptions, type DecodeOptions } from './tokenizer/index.js';
export {
  decodeImage,
  loadPixelValues,
  preprocessImage,
  resizeForClip,
  normalizeForClip,
  vqganInput,
  decoderOutputToImage,
  encodePng,
  writePng,
  CLIP_IMAGE_SIZE,
  CLIP_MEAN,
  CLIP_STD,
  PAD_BACKGROUND,
  VQGAN_IMAGE_SIZE,
  type DecodedImage,
  type ImageDecodeOptions,
  type ImageFormat,
  type ImageInput,
  type PreprocessOptions,
  type PixelValues,
  type RgbImage,
  type VoiWindow,
} from './image/index.js';
export { VisionTower, type VisionTap, type VisionTowerInfo, type VisionLoadOptions, type EncodeOptions as VisionEncodeOptions } from './vision/clip.js';
export { Vqgan, type VqganInfo, type VqganInput, type VqganLoadOptions, type DecodedImage as VqganImage } from './vqgan/decoder.js';
export { convertLanguageModel, type ConvertLlmOptions, type ConvertResult } from './convert/llm.js';
export { openCheckpoint, type Checkpoint } from './convert/checkpoint.js';
export { openSafetensors, openSafetensorsIndex } from './convert/safetensors.js';
export { openTorchCheckpoint, type TorchCheckpoint } from './convert/torch.js';
export { unpickle } from './convert/pickle.js';
export { parseSentencePieceModel, type SentencePieceModel } from './convert/sentencepiece.js';
export { loadHfVocab, healthgptTokens } from './convert/hf-tokenizer.js';
export type { LazyTensor, DType } from './convert/tensor.js';
export {
  HealthGPT,
  type HealthGPTLoadOptions,
  type AskOptions,
  type AskResult,
  type AskTimings,
  type GenerateImageOptions,
  type GenerateImageResult,
  type Turn,
  type SessionImage,
  type SamplingRequest,
} from './session/healthgpt.js';
export { GENERATION_TASKS, type GenerationTask } from './generate/tasks.js';
export { startServer, type ServerOptions, type RunningServer } from './server/app.js';
export { resolveModelFiles, type ModelFiles } from './session/model-files.js';
export type { TokenLogprobs, TokenLogprob } from './model/logprobs.js';
