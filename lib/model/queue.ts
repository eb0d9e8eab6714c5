/**
 * A first-come first-served lock. A generation holds its model's lock from its prompt to its
 * last token (lib/model/model.ts, "Generation"); the vision tower and the VQGAN hold theirs
 * for one call, so jobs wait here, in order, instead of blocking threads of libuv's pool on a
 * native mutex.
 */
export class Mutex {
  private tail: Promise<void> = Promise.resolve();

  /** Resolves, in call order, with the function that releases the lock. */
  acquire(): Promise<() => void> {
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    const ready = this.tail.then(() => release);
    this.tail = this.tail.then(() => held);
    return ready;
  }

  /** Runs fn holding the lock; released however fn ends. */
  async run<T>(fn: () => Promise<T>): Promise<T> {
    const release = await this.acquire();
    try {
      return await fn();
    } finally {
      release();
    }
  }
}
