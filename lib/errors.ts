/**
 * Every error the library throws on purpose is a HealthGPTError whose `code` is one of these,
 * one code per cause (README.md, "Errors", has the same table; test/errors.test.ts keeps the
 * two equal and checks that a test produces each).
 */
export const ERROR_CODES = {
  ERR_INVALID_ARG: 'an argument or option is missing, of the wrong type or out of range (the message names it)',
  ABORT_ERR: "the request's AbortSignal fired",
  ERR_DISPOSED: 'the model, session or file was disposed (or closed) before or during the call',
  ERR_INVALID_FILE: 'a model file cannot be read or is not what it claims to be (bad GGUF, missing tensor, wrong shape, parts that do not fit together)',
  ERR_UNSUPPORTED: 'a tensor type or model feature this engine does not compute or convert',
  ERR_NO_MEMORY: 'an allocation failed (e.g. a KV cache larger than the memory)',
  ERR_CONTEXT: 'the prompt (or prompt plus generation) needs more positions than the KV cache holds',
  ERR_NO_ADDON: 'the native addon is not built or does not load',
  ERR_NO_TOKENIZER: 'the model file has no tokenizer, so text cannot be given',
  ERR_NO_PLUGIN: 'the request needs an H-LoRA plugin that was not loaded',
  ERR_NO_VQGAN: 'generateImage needs a VQGAN file that was not loaded',
  ERR_NO_ENCODER: 'the VQGAN file has no encoder (decoder-only)',
  ERR_VOCAB: "the vocabulary lacks (or misplaces) tokens the request needs, e.g. HealthGPT's image tokens",
  ERR_TOKENIZER: 'a tokenizer file or vocabulary is malformed',
  ERR_SAMPLING: 'nothing can be sampled (every token masked out)',
  ERR_IMAGE_TOKENS: 'a generated image-token sequence is not latent^2 <idx_k> tokens',
  ERR_IMAGE_READ: 'an image file cannot be read',
  ERR_IMAGE_FORMAT: 'an image format, sample depth or channel layout the decoders do not take',
  ERR_IMAGE_DECODE: 'an image file is corrupt or truncated',
  ERR_IMAGE_TOO_LARGE: 'an image (file or pixels) larger than the limits maxFileBytes / maxPixels',
  ERR_IMAGE_WRITE: 'an output image cannot be encoded (PNG) or written to its file',
  ERR_DICOM: 'a DICOM file is malformed or inconsistent',
  ERR_DICOM_NO_PIXELS: 'a DICOM file has no pixel data',
  ERR_DICOM_AMBIGUOUS: 'a DICOM folder or DICOMDIR holds several images: the message lists them, name one',
  ERR_DICOM_UNSUPPORTED: 'a DICOM encoding (transfer syntax, photometric interpretation) the decoder does not handle',
  ERR_CONVERT: 'a checkpoint cannot be converted (missing or inconsistent tensors)',
  ERR_PICKLE: 'a PyTorch pickle holds something the safe unpickler refuses',
  ERR_GGUF_WRITE: 'a GGUF file cannot be written (bad metadata or tensor)',
  ERR_NETWORK: 'the model hub cannot be reached, or a download broke off',
  ERR_HTTP: 'the model hub answered with an error or an unexpected listing',
  ERR_CHECKSUM: "a downloaded file does not match the hub's size or hash",
  ERR_LISTEN: 'the server cannot listen on its address and port (in use, not this machine)',
} as const;

/** Every code a HealthGPTError can carry. */
export type ErrorCode = keyof typeof ERROR_CODES;

function isErrorCode(code: unknown): code is ErrorCode {
  return typeof code === 'string' && Object.hasOwn(ERROR_CODES, code);
}

/** Every error the library throws on purpose: an Error with a stable `code`. */
export class HealthGPTError extends Error {
  readonly code: ErrorCode;
  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'HealthGPTError';
    this.code = code;
  }
}

/** Re-throws a native error (which carries its status's code, src/addon.cpp) as a HealthGPTError. */
export function wrapNative(err: unknown, context?: string): HealthGPTError {
  if (err instanceof HealthGPTError) return err;
  const e = err as { code?: unknown; message?: unknown };
  // an error without a known code is a bad argument the addon caught (its only other errors)
  const code = isErrorCode(e?.code) ? e.code : 'ERR_INVALID_ARG';
  const message = typeof e?.message === 'string' ? e.message : String(err);
  return new HealthGPTError(code, context ? `${context}: ${message}` : message, { cause: err });
}
