/** A one-line progress bar on stderr for long CLI work; silent when stderr is not a TTY. */
export class Progress {
  private readonly label: string;
  private readonly total: number;
  private done = 0;
  private readonly tty: boolean;
  private readonly started = Date.now();
  private lastDraw = 0;

  constructor(label: string, total: number, stream: NodeJS.WriteStream = process.stderr) {
    this.label = label;
    this.total = Math.max(1, total);
    this.tty = Boolean(stream.isTTY) && process.env.HEALTHGPT_NO_PROGRESS !== '1';
    this.stream = stream;
  }
  private readonly stream: NodeJS.WriteStream;

  tick(amount = 1, detail = ''): void {
    this.done = Math.min(this.total, this.done + amount);
    const now = Date.now();
    if (!this.tty || (now - this.lastDraw < 100 && this.done < this.total)) return;
    this.lastDraw = now;
    const frac = this.done / this.total;
    const width = 30;
    const bar = '#'.repeat(Math.round(frac * width)).padEnd(width, '.');
    const secs = ((now - this.started) / 1000).toFixed(1);
    this.stream.write(`\r${this.label} [${bar}] ${(frac * 100).toFixed(0).padStart(3)}% ${secs}s ${detail}`.slice(0, 120).padEnd(120));
  }

  finish(): void {
    if (this.tty) this.stream.write('\n');
  }
}
