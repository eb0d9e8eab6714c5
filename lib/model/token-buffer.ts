/**
 * The tokens of one generation, between the scheduler that runs it (lib/model/scheduler.ts)
 * and the iterator its caller reads. The scheduler never waits for the reader, so a reader
 * that stops pulling cannot hold the model; the buffer is bounded by the request's maxTokens.
 */
export class TokenBuffer<T, R> {
  private readonly items: T[] = [];
  private ended: { value: R } | { error: unknown } | undefined;
  private wake: (() => void) | undefined;
  /** set by the reader when it stops (return(), a thrown consumer, an abort) */
  cancelled = false;

  push(item: T): void {
    this.items.push(item);
    this.signal();
  }

  end(value: R): void {
    this.ended ??= { value };
    this.signal();
  }

  fail(error: unknown): void {
    this.ended ??= { error };
    this.signal();
  }

  /** The next token, or the end (its return value, or its error thrown). */
  async take(): Promise<IteratorResult<T, R>> {
    for (;;) {
      if (this.items.length) return { done: false, value: this.items.shift() as T };
      if (this.ended) {
        if ('error' in this.ended) throw this.ended.error;
        return { done: true, value: this.ended.value };
      }
      await new Promise<void>((resolve) => (this.wake = resolve));
    }
  }

  private signal(): void {
    const w = this.wake;
    this.wake = undefined;
    w?.();
  }
}
