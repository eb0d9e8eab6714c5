/**
 * Next-token sampling over a row of logits: repetition penalty, an optional caller mask
 * (only some tokens allowed: image generation restricts the model to `<idx_k>` tokens), then
 * greedy, or temperature with top-k, top-p and min-p filtering, drawn with a seeded PRNG so a
 * seed reproduces a run.
 */
import { HealthGPTError } from '../errors.js';

/**
 * Restricts or reshapes a row of logits in place before sampling. `range`, when the mask only
 * keeps one range of tokens at a position, says which ([lo, hi); a range of one token forces
 * it whatever its logit): greedy decoding then picks in the engine, where the logits are,
 * and the row never comes to JavaScript (on a GPU it stays on the device).
 */
export type LogitMask = ((logits: Float32Array, position: number) => void) & {
  range?: (position: number) => readonly [number, number];
};

export interface SamplingOptions {
  /** 0 (default): greedy. */
  temperature?: number;
  /** keep the k most likely tokens; 0: all */
  topK?: number;
  /** keep the smallest set whose probability reaches p; 1: all */
  topP?: number;
  /** drop tokens below minP times the top token's probability; 0: none */
  minP?: number;
  /** divide positive logits (multiply negative ones) of recent tokens by this; 1: off */
  repeatPenalty?: number;
  /** how many recent tokens the penalty looks at */
  repeatLastN?: number;
  /** PRNG seed for temperature sampling */
  seed?: number;
  /**
   * Restricts or reshapes the logits in place before sampling, e.g. set -Infinity on every
   * token but the allowed ones. Called once per generated token.
   */
  logitMask?: LogitMask;
}

function check(name: string, v: number | undefined, ok: (v: number) => boolean, what: string): void {
  if (v !== undefined && (typeof v !== 'number' || !Number.isFinite(v) || !ok(v))) throw new HealthGPTError('ERR_INVALID_ARG', `${name} must be ${what}, got ${String(v)}`);
}

export function validateSampling(o: SamplingOptions): void {
  check('temperature', o.temperature, (v) => v >= 0, 'a number >= 0');
  check('topK', o.topK, (v) => Number.isInteger(v) && v >= 0, 'an integer >= 0');
  check('topP', o.topP, (v) => v > 0 && v <= 1, 'in (0, 1]');
  check('minP', o.minP, (v) => v >= 0 && v < 1, 'in [0, 1)');
  check('repeatPenalty', o.repeatPenalty, (v) => v > 0, 'a number > 0');
  check('repeatLastN', o.repeatLastN, (v) => Number.isInteger(v) && v >= 0, 'an integer >= 0');
  check('seed', o.seed, (v) => Number.isInteger(v), 'an integer');
  if (o.logitMask !== undefined && typeof o.logitMask !== 'function') throw new HealthGPTError('ERR_INVALID_ARG', `logitMask must be a function, got ${typeof o.logitMask}`);
}

/** mulberry32: small, fast, good enough for sampling, reproducible from a 32-bit seed. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export class Sampler {
  private readonly o: Required<Omit<SamplingOptions, 'logitMask' | 'seed'>> & Pick<SamplingOptions, 'logitMask'>;
  private readonly random: () => number;

  constructor(options: SamplingOptions = {}) {
    validateSampling(options);
    this.o = {
      temperature: options.temperature ?? 0,
      topK: options.topK ?? 0,
      topP: options.topP ?? 1,
      minP: options.minP ?? 0,
      repeatPenalty: options.repeatPenalty ?? 1,
      repeatLastN: options.repeatLastN ?? 64,
      logitMask: options.logitMask,
    };
    this.random = prng(options.seed ?? 0x5eed);
  }

  /**
   * The vocabulary range [lo, hi) in which the next token is the largest logit, when that is
   * all this sampler does at `position` (greedy, no repetition penalty, no mask or one that
   * keeps a range): the engine can then pick it (ops/greedy.h) and `sample` is not needed.
   */
  greedyRange(nVocab: number, position: number): readonly [number, number] | undefined {
    const o = this.o;
    if (o.temperature !== 0 || (o.repeatPenalty !== 1 && o.repeatLastN > 0)) return undefined;
    if (o.logitMask === undefined) return [0, nVocab];
    return o.logitMask.range?.(position);
  }

  /** Picks the next token; `logits` is modified (penalty, mask). */
  sample(logits: Float32Array, history: readonly number[], position = history.length): number {
    const o = this.o;
    if (o.repeatPenalty !== 1 && o.repeatLastN > 0) {
      const seen = new Set(history.slice(-o.repeatLastN));
      for (const t of seen) if (t >= 0 && t < logits.length) logits[t] = logits[t] > 0 ? logits[t] / o.repeatPenalty : logits[t] * o.repeatPenalty;
    }
    o.logitMask?.(logits, position);

    let best = -1;
    for (let i = 0; i < logits.length; i++) if (!Number.isNaN(logits[i]) && (best < 0 || logits[i] > logits[best])) best = i;
    if (best < 0 || logits[best] === -Infinity) throw new HealthGPTError('ERR_SAMPLING', 'every token is masked out: nothing can be sampled');
    if (o.temperature === 0) return best;

    // candidates sorted by logit, cut by top-k; probabilities at the temperature
    let ids = Array.from(logits.keys()).filter((i) => logits[i] > -Infinity);
    ids.sort((a, b) => logits[b] - logits[a]);
    if (o.topK > 0 && ids.length > o.topK) ids = ids.slice(0, o.topK);
    const max = logits[ids[0]];
    let probs = ids.map((i) => Math.exp((logits[i] - max) / o.temperature));
    let sum = probs.reduce((a, b) => a + b, 0);
    probs = probs.map((p) => p / sum);

    let keep = probs.length;
    if (o.minP > 0) {
      const floor = probs[0] * o.minP;
      keep = Math.max(1, probs.findIndex((p) => p < floor) === -1 ? keep : probs.findIndex((p) => p < floor));
    }
    if (o.topP < 1) {
      let acc = 0;
      for (let i = 0; i < keep; i++) {
        acc += probs[i];
        if (acc >= o.topP) {
          keep = i + 1;
          break;
        }
      }
    }
    ids = ids.slice(0, keep);
    probs = probs.slice(0, keep);
    sum = probs.reduce((a, b) => a + b, 0);
    let r = this.random() * sum;
    for (let i = 0; i < ids.length; i++) {
      r -= probs[i];
      if (r <= 0) return ids[i];
    }
    return ids[ids.length - 1];
  }
}

/** Softmax of one row of logits (for `eval` and tests). */
export function softmax(logits: Float32Array): Float64Array {
  let max = -Infinity;
  for (const v of logits) if (v > max) max = v;
  const out = new Float64Array(logits.length);
  let sum = 0;
  for (let i = 0; i < logits.length; i++) sum += out[i] = Math.exp(logits[i] - max);
  for (let i = 0; i < out.length; i++) out[i] /= sum;
  return out;
}
