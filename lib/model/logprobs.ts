/**
 * Log-probabilities of generated tokens under the model's own distribution (the raw logits'
 * log-softmax: before repetition penalty, masks, temperature or top-p), as OpenAI's `logprobs`
 * report them: the chosen token's, and the most likely alternatives at that step.
 */
import { HealthGPTError } from '../errors.js';

/** Alternatives an entry may list at most (OpenAI's top_logprobs bound). */
export const MAX_TOP_LOGPROBS = 20;

export interface TokenLogprob {
  token: number;
  logprob: number;
}

export interface TokenLogprobs extends TokenLogprob {
  /** the most likely tokens at this step, most likely first */
  top: TokenLogprob[];
}

export function validateTopLogprobs(v: unknown): void {
  if (v !== undefined && (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > MAX_TOP_LOGPROBS))
    throw new HealthGPTError('ERR_INVALID_ARG', `topLogprobs must be an integer in 0..${MAX_TOP_LOGPROBS}, got ${String(v)}`);
}

/** The chosen token's log-probability and the `top` most likely tokens', from one row of raw logits. */
export function tokenLogprobs(logits: Float32Array, token: number, top: number): TokenLogprobs {
  let max = -Infinity;
  for (const v of logits) if (v > max) max = v;
  let sum = 0;
  for (const v of logits) sum += Math.exp(v - max);
  const lse = max + Math.log(sum);
  // the k largest by insertion into a short sorted list (k <= 20: cheaper than sorting the vocabulary)
  const best: number[] = [];
  for (let i = 0; i < logits.length && top > 0; i++) {
    const v = logits[i]!;
    if (best.length === top && v <= logits[best[top - 1]!]!) continue;
    let j = best.length < top ? best.length : top - 1;
    while (j > 0 && logits[best[j - 1]!]! < v) j--;
    best.splice(j, 0, i);
    if (best.length > top) best.pop();
  }
  return { token, logprob: logits[token]! - lse, top: best.map((t) => ({ token: t, logprob: logits[t]! - lse })) };
}
