/**
 * A first-come first-served lock: a request holds it for its whole run (a streamed answer
 * included), so two requests on one model never interleave in its KV cache.
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
}
