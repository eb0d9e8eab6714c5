/**
 * Admission: `slots` requests run at once and at most `queue` more wait, in arrival order;
 * past that a request is refused at once (429) with a Retry-After estimated from recent
 * service times. A waiting request whose signal aborts (client gone, timeout) leaves the queue.
 */
import { ApiError } from './errors.js';

export class Admission {
  private active = 0;
  /** each waiting request's wake-up: the slot is handed over to it, never freed in between */
  private readonly waiters: (() => void)[] = [];
  /** a moving average of how long a request holds its slot, in ms */
  private serviceMs = 1000;

  constructor(
    readonly slots: number,
    readonly queue: number,
  ) {}

  get running(): number {
    return this.active;
  }

  get waiting(): number {
    return this.waiters.length;
  }

  /** Seconds until a refused request would likely find room. */
  retryAfter(): number {
    const s = Math.ceil((this.serviceMs * (this.waiters.length + 1)) / this.slots / 1000);
    return Math.min(Math.max(s, 1), 600);
  }

  /** Resolves with the slot's release once it runs; throws a 429 when the queue is full, the signal's reason when it aborts while waiting. */
  async enter(signal: AbortSignal): Promise<() => void> {
    signal.throwIfAborted();
    if (this.active < this.slots) {
      this.active++;
      return this.release();
    }
    if (this.waiters.length >= this.queue) {
      throw new ApiError(429, `the server is busy: ${this.active} request(s) running and ${this.waiters.length} waiting`, 'queue_full', null, { 'retry-after': String(this.retryAfter()) });
    }
    await new Promise<void>((resolve, reject) => {
      const wake = (): void => {
        signal.removeEventListener('abort', onAbort);
        resolve();
      };
      const onAbort = (): void => {
        this.waiters.splice(this.waiters.indexOf(wake), 1);
        reject(signal.reason);
      };
      signal.addEventListener('abort', onAbort, { once: true });
      this.waiters.push(wake);
    });
    return this.release();
  }

  /** The release of a slot held from now on. */
  private release(): () => void {
    const t0 = performance.now();
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.serviceMs = 0.8 * this.serviceMs + 0.2 * (performance.now() - t0);
      const next = this.waiters.shift();
      if (next)
        next(); // the slot passes to the longest waiting request
      else this.active--;
    };
  }
}
