/**
 * A first-come first-served lock. A model's batch step and plugin loading hold its lock for
 * one native call (lib/model/scheduler.ts); the vision tower and the VQGAN hold theirs for one
 * call, so jobs wait here, in order, instead of blocking threads of libuv's pool on a native
 * mutex.
 */
export class Mutex {
  private held = false;
  private readonly waiting: (() => void)[] = [];

  /** Resolves, in call order, with the function that releases the lock. */
  acquire(): Promise<() => void> {
    return new Promise((resolve) => this.enter(() => resolve(this.releaser())));
  }

  /**
   * Runs fn holding the lock; released however fn ends. A free lock runs fn at once, in this
   * call (so work started before a dispose() is already on its way).
   */
  run<T>(fn: () => Promise<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.enter(() => {
        const release = this.releaser();
        let work: Promise<T>;
        try {
          work = fn();
        } catch (err) {
          release();
          return reject(err);
        }
        work.then(
          (v) => {
            release();
            resolve(v);
          },
          (err) => {
            release();
            reject(err);
          },
        );
      }, true);
    });
  }

  private enter(start: () => void, now = false): void {
    if (!this.held && this.waiting.length === 0) {
      this.held = true;
      if (now) start();
      else queueMicrotask(start);
    } else {
      this.waiting.push(start);
    }
  }

  private releaser(): () => void {
    let done = false;
    return () => {
      if (done) return;
      done = true;
      const next = this.waiting.shift();
      if (next) next();
      else this.held = false;
    };
  }
}
