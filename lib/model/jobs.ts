/**
 * The requests LanguageModel hands its scheduler (lib/model/scheduler.ts): a generation, which
 * samples each logits row into its caller's buffer and says which token to feed next, and an
 * evaluation, which gathers every prompt position's logits.
 */
import { HealthGPTError } from '../errors.js';
import { tokenLogprobs, type TokenLogprobs } from './logprobs.js';
import type { FinishReason } from './model.js';
import type { Sampler } from './sampler.js';
import type { Job, Position } from './scheduler.js';
import { TokenBuffer } from './token-buffer.js';

export function abortError(signal: AbortSignal): HealthGPTError {
  const reason = signal.reason instanceof Error ? signal.reason.message : 'the operation was aborted';
  return new HealthGPTError('ABORT_ERR', reason);
}

/** A generated token, with its log-probabilities when asked. */
export interface Produced {
  token: number;
  logprobs: TokenLogprobs | undefined;
}

/** What a generation asks besides its prompt. */
export interface GenerationSpec {
  positions: Position[];
  /** native plugin id, -1 for none */
  plugin: number;
  stop: Set<number>;
  sampler: Sampler;
  maxTokens: number;
  signal: AbortSignal | undefined;
  /** set when the caller wants each token's log-probabilities: how many alternatives */
  topLogprobs: number | undefined;
  nCtx: number;
}

/**
 * One generation request as a scheduler job: samples each logits row it is given into its
 * buffer and says which token to feed next, until a stop token, maxTokens, the context, or
 * its caller's abort or cancel ends it.
 */
export class Generation implements Job {
  readonly positions: Position[];
  readonly plugin: number;
  readonly allLogits = false;
  readonly out = new TokenBuffer<Produced, FinishReason>();
  /** the stop token that ended it, for onStop */
  stopToken?: number;
  /** the sampler's repetition penalty looks at token ids only */
  private readonly history: number[];
  private length: number;
  private produced = 0;

  constructor(private readonly spec: GenerationSpec) {
    this.positions = spec.positions;
    this.plugin = spec.plugin;
    this.history = spec.positions.filter((t): t is number => typeof t === 'number');
    this.length = spec.positions.length;
  }

  active(): boolean {
    const { signal } = this.spec;
    if (signal?.aborted) this.out.fail(abortError(signal));
    else if (this.out.cancelled) this.out.end('abort');
    else return true;
    return false;
  }

  /** Where the engine may pick the next token itself (Sampler.greedyRange), unless log-probabilities are wanted. */
  greedyRange(nVocab: number): readonly [number, number] | undefined {
    if (this.spec.topLogprobs !== undefined || this.produced === this.spec.maxTokens) return undefined;
    return this.spec.sampler.greedyRange(nVocab, this.history.length);
  }

  logits(row: Float32Array): number | undefined {
    const { spec, out } = this;
    if (this.produced === spec.maxTokens) return void out.end('length');
    // the sampler changes the row in place (penalty, mask): log-probabilities come from a copy
    const raw = spec.topLogprobs !== undefined ? row.slice() : undefined;
    return this.accept(spec.sampler.sample(row, this.history), raw);
  }

  /** The token the engine picked in greedyRange's range (-1: none there could be). */
  picked(token: number): number | undefined {
    if (token < 0) throw new HealthGPTError('ERR_SAMPLING', 'every token is masked out: nothing can be sampled');
    return this.accept(token, undefined);
  }

  private accept(token: number, raw: Float32Array | undefined): number | undefined {
    const { spec, out } = this;
    if (spec.stop.has(token)) {
      this.stopToken = token;
      return void out.end('stop');
    }
    this.history.push(token);
    this.length++;
    this.produced++;
    out.push({ token, logprobs: raw && tokenLogprobs(raw, token, spec.topLogprobs ?? 0) });
    if (this.produced === spec.maxTokens) return void out.end('length');
    if (this.length > spec.nCtx) return void out.end('context'); // the last one is sampled, never fed
    return token;
  }

  fail(err: unknown): void {
    this.out.fail(err);
  }
}

/** evaluate(): every prompt position's logits, gathered chunk by chunk. */
export class Evaluation implements Job {
  readonly allLogits = true;
  readonly done: Promise<Float32Array>;
  private readonly rows: Float32Array;
  private filled = 0;
  private resolve!: (v: Float32Array) => void;
  private reject!: (err: unknown) => void;

  constructor(
    readonly positions: Position[],
    readonly plugin: number,
    nVocab: number,
  ) {
    this.rows = new Float32Array(positions.length * nVocab);
    this.done = new Promise((resolve, reject) => {
      this.resolve = resolve;
      this.reject = reject;
    });
  }

  active(): boolean {
    return true;
  }

  logits(rows: Float32Array, last: boolean): undefined {
    this.rows.set(rows, this.filled);
    this.filled += rows.length;
    if (last) this.resolve(this.rows);
  }

  fail(err: unknown): void {
    this.reject(err);
  }
}
