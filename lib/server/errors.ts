/**
 * Errors as OpenAI's API returns them: an HTTP status and {error: {message, type, param, code}},
 * so every OpenAI client shows them as it shows OpenAI's own. Library errors map by their code;
 * anything unexpected is a 500 whose details go to the log, not to the client.
 */
import { HealthGPTError, type ErrorCode } from '../errors.js';

export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly code: string | null = null,
    readonly param: string | null = null,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
    this.name = 'ApiError';
  }

  /** OpenAI's error type for the status */
  get type(): string {
    if (this.status === 429) return 'rate_limit_error';
    if (this.status === 504) return 'timeout_error';
    if (this.status >= 500) return 'server_error';
    return 'invalid_request_error';
  }

  body(): { error: { message: string; type: string; param: string | null; code: string | null } } {
    return { error: { message: this.message, type: this.type, param: this.param, code: this.code } };
  }
}

export const badRequest = (message: string, param: string | null = null, code: string | null = null): ApiError => new ApiError(400, message, code, param);

/** Library error codes that are the request's fault, by HTTP status (others are the server's: 500). */
const CLIENT_CODES: Partial<Record<ErrorCode, [status: number, code: string | null]>> = {
  ERR_INVALID_ARG: [400, null],
  ERR_TOKENIZER: [400, null],
  ERR_CONTEXT: [400, 'context_length_exceeded'],
  ERR_IMAGE_DECODE: [400, 'invalid_image'],
  ERR_IMAGE_FORMAT: [400, 'invalid_image'],
  ERR_IMAGE_READ: [400, 'invalid_image'],
  ERR_IMAGE_TOO_LARGE: [413, 'image_too_large'],
  ERR_DICOM: [400, 'invalid_image'],
  ERR_DICOM_NO_PIXELS: [400, 'invalid_image'],
  ERR_DICOM_UNSUPPORTED: [400, 'invalid_image'],
  ERR_DICOM_AMBIGUOUS: [400, 'invalid_image'],
  ERR_NO_PLUGIN: [400, 'unsupported_by_model'],
  ERR_NO_VQGAN: [400, 'unsupported_by_model'],
};

/** Any thrown value as an ApiError; `internal` is true where the message is not for the client. */
export function apiErrorOf(err: unknown): { error: ApiError; internal: boolean } {
  if (err instanceof ApiError) return { error: err, internal: false };
  if (err instanceof HealthGPTError) {
    const known = CLIENT_CODES[err.code];
    if (known) return { error: new ApiError(known[0], err.message, known[1]), internal: false };
    return { error: new ApiError(500, `the model failed (${err.code})`, 'model_error'), internal: true };
  }
  // fastify's own (body too large, malformed JSON, multipart limits) carry a 4xx statusCode
  const e = err as { statusCode?: unknown; message?: unknown; code?: unknown };
  if (typeof e?.statusCode === 'number' && e.statusCode >= 400 && e.statusCode < 500) {
    const code = e.statusCode === 413 ? 'request_too_large' : typeof e.code === 'string' ? e.code : null;
    return { error: new ApiError(e.statusCode, String(e.message), code), internal: false };
  }
  return { error: new ApiError(500, 'internal server error', 'internal_error'), internal: true };
}
