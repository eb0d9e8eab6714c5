/**
 * Stop strings over streamed text: text that may be the start of a stop string is held back
 * until it is not; where one appears, the text before it is the last to go out.
 */
export class StopText {
  private pending = '';

  constructor(private readonly stops: readonly string[]) {}

  /** Adds generated text; returns what may go out now, and whether a stop string was reached. */
  push(text: string): { text: string; stopped: boolean } {
    this.pending += text;
    const hits = this.stops.map((s) => this.pending.indexOf(s)).filter((i) => i >= 0);
    if (hits.length) {
      const out = this.pending.slice(0, Math.min(...hits));
      this.pending = '';
      return { text: out, stopped: true };
    }
    // all but a tail that could still grow into a stop string
    let keep = 0;
    for (const s of this.stops) for (let k = Math.min(s.length - 1, this.pending.length); k > keep; k--) if (s.startsWith(this.pending.slice(this.pending.length - k))) keep = k;
    const out = this.pending.slice(0, this.pending.length - keep);
    this.pending = this.pending.slice(this.pending.length - keep);
    return { text: out, stopped: false };
  }

  /** At the end of the generation: what was held back, and `tail` after it. */
  flush(tail = ''): string {
    const out = this.pending + tail;
    this.pending = '';
    return out;
  }
}
