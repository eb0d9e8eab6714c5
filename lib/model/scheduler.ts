/**
 * Continuous batching over a model's sequences (KV cache slots), as llama-server's slots do:
 * each step is ONE `evalBatch` holding the next token of every decoding request and a prompt
 * chunk of requests that just got a slot; each request then reads its own logits rows. A
 * request waits in arrival order until a slot is free; it takes the free slot whose cached
 * positions share the longest prefix with its prompt under the same plugin (so a second
 * question about the same image recomputes only what differs), else an empty one, else the
 * least recently used.
 *
 * Prompt chunks start at fixed offsets of each request's own prompt, whatever else is in the
 * batch: every sequence's rows are the same ones alone or batched, and the engine's batch is
 * bit-identical to evaluating each segment alone, so batched greedy results equal solo ones.
 */
import { HealthGPTError, wrapNative } from '../errors.js';
import type { BatchSegment, NativeModel } from '../native.js';
import type { Mutex } from './queue.js';

/** A prompt position: a token id or one embedding row (a copy the caller cannot change). */
export type Position = number | Float32Array;

export function samePosition(a: Position, b: Position): boolean {
  if (typeof a === 'number' || typeof b === 'number') return a === b;
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/**
 * A step's embedding rows as the one Float32Array the engine reads: a view of their buffer when
 * they lie back to back in it (an image's rows, as LanguageModel splits them), else a copy.
 */
export function embeddingRows(rows: readonly Float32Array[]): Float32Array {
  const first = rows[0]!;
  let end = first.byteOffset + first.byteLength;
  let contiguous = true;
  for (let i = 1; i < rows.length && contiguous; i++) {
    const r = rows[i]!;
    contiguous = r.buffer === first.buffer && r.byteOffset === end;
    end += r.byteLength;
  }
  if (contiguous) return new Float32Array(first.buffer, first.byteOffset, (end - first.byteOffset) / 4);
  const out = new Float32Array(rows.reduce((n, r) => n + r.length, 0));
  let at = 0;
  for (const r of rows) {
    out.set(r, at);
    at += r.length;
  }
  return out;
}

/** Prompt positions a request feeds per step at most (its chunks start at multiples of this). */
export const PROMPT_CHUNK = 256;
/** Positions one step holds at most, beyond its first prompt chunk (bounds how long decoding requests wait on prompts). */
const STEP_POSITIONS = 512;

/** What the scheduler runs: a prompt, then one token at a time while the job asks for more. */
export interface Job {
  readonly positions: readonly Position[];
  /** native plugin id, -1 for the base alone */
  readonly plugin: number;
  /** every prompt position's logits are wanted (no prefix reuse), not only the last one's */
  readonly allLogits: boolean;
  /** false when the job has ended by itself (abort, cancel): it is dropped and its slot freed */
  active(): boolean;
  /**
   * Logits after the prompt (every position's, row after row, when allLogits; chunk by chunk,
   * `done` on the last one), or after the token it last asked to feed. Returns the next token
   * to feed, or undefined when it is done.
   */
  logits(rows: Float32Array, done: boolean): number | undefined;
  /**
   * When the next token is the largest logit in a range (greedy decoding), that range: the
   * engine picks it and `picked` gets it in place of `logits` (the row never comes here).
   */
  greedyRange?(nVocab: number): readonly [number, number] | undefined;
  /** The engine's pick (-1: no token in the range could be picked); returns as `logits` does. */
  picked?(token: number): number | undefined;
  fail(err: unknown): void;
}

interface Slot {
  readonly seq: number;
  /** positions whose keys and values the slot holds, in order */
  cached: Position[];
  /** the plugin they were computed under */
  plugin: number;
  /** the job running on it */
  job: Job | undefined;
  /** prompt positions of the job already in the cache */
  fed: number;
  /** the token the job asked to feed next (decoding), else undefined (its prompt is being fed) */
  next: number | undefined;
  /** when it was last used, for eviction */
  used: number;
}

/** One row group of a step: the slot and the positions it feeds. */
interface Planned {
  slot: Slot;
  feed: Position[];
  logits: 0 | 1 | 2;
  /** the last chunk of the prompt, or a decoded token */
  last: boolean;
  /** the engine's greedy pick of the last row, when the job's next token is one */
  greedy?: { lo: number; hi: number; next: Int32Array };
}

export class Scheduler {
  private readonly slots: Slot[];
  private readonly queue: Job[] = [];
  private running = false;
  private clock = 0;
  /** positions run through the model so far (diagnostics: prefix reuse shows as fewer) */
  evaluated = 0;

  /** n: slots; live(): the native model, or ERR_DISPOSED; lock: the model's, held for each step */
  constructor(
    n: number,
    private readonly nVocab: number,
    private readonly live: () => NativeModel,
    private readonly lock: Mutex,
  ) {
    this.slots = Array.from({ length: n }, (_, seq) => ({ seq, cached: [], plugin: -1, job: undefined, fed: 0, next: undefined, used: 0 }));
  }

  /** requests running and waiting */
  get load(): { running: number; waiting: number } {
    return { running: this.slots.filter((s) => s.job).length, waiting: this.queue.length };
  }

  /** Queues a job; the loop starts after this task, so requests made together start in one batch. */
  submit(job: Job): void {
    this.queue.push(job);
    queueMicrotask(() => void this.run());
  }

  /** Drops a job that has not got a slot yet (an abort); a running one leaves at the next step. */
  withdraw(job: Job): void {
    const i = this.queue.indexOf(job);
    if (i >= 0) this.queue.splice(i, 1);
  }

  /** Fails every job with `err` and forgets what the slots held (dispose). */
  clear(err: unknown): void {
    for (const job of this.queue.splice(0)) job.fail(err);
    for (const s of this.slots) {
      s.job?.fail(err);
      this.free(s);
      s.cached = [];
    }
  }

  /** Steps while any job runs or waits; one loop at a time. */
  private async run(): Promise<void> {
    if (this.running) return;
    this.running = true;
    try {
      for (;;) {
        this.admit();
        const plan = this.plan();
        if (plan.length === 0) return;
        await this.step(plan);
      }
    } catch (err) {
      this.clear(err); // a bug here must not leave requests waiting forever (step itself fails only its jobs)
    } finally {
      this.running = false;
    }
  }

  /** Gives waiting jobs free slots, in arrival order. */
  private admit(): void {
    while (this.queue.length) {
      const free = this.slots.filter((s) => !s.job);
      if (free.length === 0) return;
      const job = this.queue.shift() as Job;
      if (!job.active()) continue;
      const shared = (s: Slot): number => {
        if (job.allLogits || s.plugin !== job.plugin) return 0;
        let n = 0;
        while (n < job.positions.length && n < s.cached.length && samePosition(job.positions[n]!, s.cached[n]!)) n++;
        return n;
      };
      // the longest shared prefix, then an empty slot (keeping the others' caches), then the least recently used
      const score = (s: Slot): [number, number, number] => [shared(s), s.cached.length === 0 ? 1 : 0, -s.used];
      let best = free[0]!;
      let bestScore = score(best);
      for (const s of free.slice(1)) {
        const sc = score(s);
        const i = sc.findIndex((v, k) => v !== bestScore[k]);
        if (i >= 0 && sc[i]! > bestScore[i]!) {
          best = s;
          bestScore = sc;
        }
      }
      const bestShared = bestScore[0];
      // the last prompt position runs again when all of it is cached: its logits are wanted
      const common = Math.min(bestShared, job.positions.length - 1);
      best.cached.length = common; // evalBatch forgets the slot's positions from startPos on
      best.plugin = job.plugin;
      best.job = job;
      best.fed = common;
      best.next = undefined;
    }
  }

  /** This step's segments: every decoding job's next token, then prompt chunks within the step's size. */
  private plan(): Planned[] {
    const out: Planned[] = [];
    let size = 0;
    for (const s of this.slots) {
      if (!s.job) continue;
      if (!s.job.active()) {
        this.free(s);
        continue;
      }
      if (s.next !== undefined) {
        out.push({ slot: s, feed: [s.next], logits: 1, last: true });
        size++;
      }
    }
    let prompts = 0;
    for (const s of this.slots) {
      if (!s.job || s.next !== undefined) continue;
      const { positions, allLogits } = s.job;
      // chunks end at multiples of PROMPT_CHUNK past the reused prefix: the same rows alone or batched
      const end = Math.min(positions.length, s.fed + PROMPT_CHUNK);
      const feed = positions.slice(s.fed, end);
      if (prompts > 0 && size + feed.length > STEP_POSITIONS) continue;
      const last = end === positions.length;
      out.push({ slot: s, feed, logits: allLogits ? 2 : last ? 1 : 0, last });
      size += feed.length;
      prompts++;
    }
    return out;
  }

  private async step(plan: Planned[]): Promise<void> {
    for (const p of plan) {
      const job = p.slot.job;
      let range: readonly [number, number] | undefined;
      try {
        range = p.logits === 1 && job?.picked ? job.greedyRange?.(this.nVocab) : undefined;
      } catch {
        range = undefined; // the job's mask refuses this position: its logits() says so, below
      }
      if (range) p.greedy = { lo: range[0], hi: range[1], next: new Int32Array(1) };
    }
    const segments: BatchSegment[] = plan.map(({ slot, feed, logits, greedy }) => {
      // embedding rows go in as token -1, their floats in order beside
      const rows = feed.filter((t): t is Float32Array => typeof t !== 'number');
      const embd = rows.length ? embeddingRows(rows) : undefined;
      return { seq: slot.seq, startPos: slot.cached.length, tokens: Int32Array.from(feed, (t) => (typeof t === 'number' ? t : -1)), plugin: slot.plugin, embd, logits, greedy };
    });
    let logits: Float32Array;
    try {
      logits = await this.lock.run(async () => this.live().evalBatch(segments));
      this.live(); // disposed meanwhile: ERR_DISPOSED
    } catch (err) {
      const e = err instanceof HealthGPTError ? err : wrapNative(err, 'eval');
      for (const { slot } of plan) {
        slot.job?.fail(e);
        this.free(slot);
        slot.cached = []; // what the slot holds is not known: nothing is reused from it
      }
      return;
    }
    let row = 0;
    const { nVocab } = this;
    for (const p of plan) this.evaluated += p.feed.length;
    for (const p of plan) {
      const { slot } = p;
      const job = slot.job;
      const rowsHere = p.logits === 2 ? p.feed.length : p.greedy ? 0 : p.logits;
      const rows = logits.subarray(row * nVocab, (row + rowsHere) * nVocab);
      row += rowsHere;
      slot.cached.push(...p.feed);
      if (slot.next !== undefined) slot.next = undefined;
      else slot.fed += p.feed.length;
      if (!job || slot.job !== job) continue; // failed meanwhile (dispose)
      if (!job.active()) {
        this.free(slot);
        continue;
      }
      if (rowsHere === 0 && !p.greedy) continue; // a prompt chunk before the last
      try {
        const next = p.greedy && job.picked ? job.picked(p.greedy.next[0]!) : job.logits(rows, p.last);
        if (next === undefined) {
          if (p.last) this.free(slot);
        } else slot.next = next;
      } catch (err) {
        job.fail(err);
        this.free(slot);
      }
    }
  }

  private free(s: Slot): void {
    s.job = undefined;
    s.next = undefined;
    s.used = ++this.clock;
  }
}
