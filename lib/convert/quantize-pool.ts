/**
 * Quantizes float32 rows on worker threads, each with its own instance of the addon. The
 * addon's reference quantizer runs on the thread that calls it, and the k-quants are slow there
 * (q4_K ~6M elements/s: ~10 min for Phi-3-mini on one thread); workers divide that by their
 * number and leave the JS thread free. Work goes out in waves of one chunk per worker, so the
 * copies in flight stay a few tens of MB whatever the tensor.
 */
import { existsSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { HealthGPTError } from '../errors.js';
import { abortError } from '../model/model.js';
import { addonCandidates, native } from '../native.js';

const WORKER = `
const { parentPort, workerData } = require('node:worker_threads');
const addon = require(workerData.addon);
parentPort.on('message', ({ id, type, values }) => {
  try {
    const out = new Uint8Array(addon.quantizeRow(type, values));
    parentPort.postMessage({ id, out }, [out.buffer]);
  } catch (e) {
    parentPort.postMessage({ id, error: String(e && e.message ? e.message : e) });
  }
});
`;

/** Elements per chunk sent to a worker. */
const CHUNK = 4 * 1024 * 1024;

/** The addon file native() loaded (require caches it, so asking again costs nothing). */
function addonPath(): string {
  native();
  for (const f of addonCandidates()) {
    if (!existsSync(f)) continue;
    try {
      require(f);
      return f;
    } catch {
      // native() skipped it too
    }
  }
  throw new HealthGPTError('ERR_NO_ADDON', 'the native addon could not be located for the quantization workers');
}

interface Pending {
  resolve: (b: Uint8Array) => void;
  reject: (e: Error) => void;
}

export class QuantizePool {
  private readonly workers: Worker[];
  private readonly pending = new Map<number, Pending>();
  private nextId = 0;
  private closing = false;

  private readonly chunk: number;

  /** `threads` workers (0: one per core); `chunk` elements per message (rounded to whole rows). */
  constructor(threads = 0, chunk = CHUNK) {
    this.chunk = chunk;
    const n = threads > 0 ? threads : availableParallelism();
    const addon = addonPath();
    this.workers = Array.from({ length: n }, () => {
      const w = new Worker(WORKER, { eval: true, workerData: { addon } });
      w.on('message', (m: { id: number; out?: Uint8Array; error?: string }) => {
        const p = this.pending.get(m.id);
        if (!p) return;
        this.pending.delete(m.id);
        if (m.error !== undefined) p.reject(new HealthGPTError('ERR_CONVERT', `quantization failed: ${m.error}`));
        else p.resolve(m.out!);
      });
      w.on('error', (e) => this.failAll(e));
      w.on('exit', (code) => {
        if (!this.closing) this.failAll(new Error(`exited with code ${code}`));
      });
      return w;
    });
  }

  get size(): number {
    return this.workers.length;
  }

  private failAll(e: Error): void {
    for (const p of this.pending.values()) p.reject(new HealthGPTError('ERR_CONVERT', `a quantization worker failed: ${e.message}`));
    this.pending.clear();
  }

  private run(worker: Worker, type: number, values: Float32Array): Promise<Uint8Array> {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      worker.postMessage({ id, type, values }, [values.buffer as ArrayBuffer]);
    });
  }

  /** Quantizes rows of `row` elements to ggml type `type` (`typeSize` bytes per `blockSize` elements). */
  async quantize(values: Float32Array, row: number, type: { id: number; blockSize: number; typeSize: number }, signal?: AbortSignal): Promise<Uint8Array> {
    const rows = values.length / row;
    const rowsPerChunk = Math.max(1, Math.floor(this.chunk / row));
    const rowBytes = (row / type.blockSize) * type.typeSize;
    const out = new Uint8Array(rows * rowBytes);
    for (let r = 0; r < rows; ) {
      if (signal?.aborted) throw abortError(signal);
      const wave: Array<Promise<void>> = [];
      for (const w of this.workers) {
        if (r >= rows) break;
        const n = Math.min(rowsPerChunk, rows - r);
        const at = r * rowBytes;
        // a copy of the chunk is transferred: the worker owns it, the tensor stays whole here
        wave.push(this.run(w, type.id, values.slice(r * row, (r + n) * row)).then((b) => out.set(b, at)));
        r += n;
      }
      await Promise.all(wave);
    }
    return out;
  }

  async close(): Promise<void> {
    this.closing = true;
    await Promise.all(this.workers.map((w) => w.terminate()));
  }
}
