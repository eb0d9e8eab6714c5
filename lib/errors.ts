/** Every error the library throws on purpose: an Error with a stable `code`. */
export class HealthGPTError extends Error {
  readonly code: string;
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'HealthGPTError';
    this.code = code;
  }
}

/** Re-throws a native error (which carries a `code`) as a HealthGPTError. */
export function wrapNative(err: unknown, context?: string): HealthGPTError {
  if (err instanceof HealthGPTError) return err;
  const e = err as { code?: unknown; message?: unknown };
  const code = typeof e?.code === 'string' ? e.code : 'ERR_NATIVE';
  const message = typeof e?.message === 'string' ? e.message : String(err);
  return new HealthGPTError(code, context ? `${context}: ${message}` : message, { cause: err });
}
