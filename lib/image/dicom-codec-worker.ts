/**
 * The compressed-frame decoders run on one worker thread, started on the first compressed frame
 * (a PNG or an uncompressed DICOM never starts it): a 512 x 512 16-bit JPEG 2000 slice takes
 * 80-200 ms in OpenJPEG, which would otherwise stall the JS thread. The worker loads each codec
 * module on first use; frames go in and samples come back as transferred buffers.
 *
 * The worker is referenced only while decodes are pending, so an idle one never keeps the
 * process alive. If it dies (a codec aborting the thread, an out-of-memory), its pending decodes
 * are rejected and the next decode starts a fresh one.
 *
 * The worker's source is evaluated from this string, as the quantization workers' is, so it is
 * the same from dist/ and from the TypeScript sources under vitest; codec modules are resolved
 * here and passed to it by absolute path.
 */
import { Worker } from 'node:worker_threads';

const SOURCE = `
const { parentPort } = require('node:worker_threads');
const modules = new Map();
// what the codec last printed (OpenJPEG reports its errors this way); the codecs' progress
// messages must not reach stdout, which is the CLI's answer stream
let said = '';
const keep = (s) => void (said = String(s).trim());
const message = (e) => (typeof e === 'string' ? e : String((e && e.message) || e));

function wasmModule(path) {
  let m = modules.get(path);
  if (!m) {
    m = Promise.resolve().then(() => require(path)({ print: keep, printErr: keep }));
    modules.set(path, m);
    m.catch(() => modules.delete(path));
  }
  return m;
}

function decodeWasm(m, cls, data) {
  const dec = new m[cls]();
  try {
    dec.getEncodedBuffer(data.length).set(data);
    dec.decode();
    const info = dec.getFrameInfo();
    // a view into the WebAssembly heap: copy it out before the decoder is deleted
    const bytes = Uint8Array.from(dec.getDecodedBuffer());
    const samples = info.bitsPerSample <= 8 ? bytes : info.isSigned ? new Int16Array(bytes.buffer) : new Uint16Array(bytes.buffer);
    return { samples, planar: info.componentCount > 1 && dec.getInterleaveMode?.() === 0 };
  } finally {
    dec.delete();
  }
}

parentPort.on('message', async ({ id, path, cls, data }) => {
  let m;
  try {
    m = cls ? await wasmModule(path) : require(path);
  } catch (e) {
    parentPort.postMessage({ id, failed: 'load', message: message(e) });
    return;
  }
  said = '';
  try {
    const r = cls ? decodeWasm(m, cls, data) : { samples: new m.Decoder().decode(data.buffer, data.byteOffset, data.length), planar: false };
    parentPort.postMessage({ id, ...r }, [r.samples.buffer]);
  } catch (e) {
    // a WebAssembly abort can leave the instance unusable: load a fresh one next time
    if (cls) modules.delete(path);
    parentPort.postMessage({ id, failed: 'decode', message: message(e), said });
  }
});
`;

/** a decoded frame: samples pixel-interleaved, in the smallest container that holds them */
export type CodecSamples = Uint8Array | Uint16Array | Int16Array;

/** what the worker answers: samples, or why the codec failed */
export type CodecResult = { samples: CodecSamples; planar: boolean } | { failed: 'load' | 'decode'; message: string; said?: string };

interface Pending {
  resolve: (r: CodecResult) => void;
  reject: (e: Error) => void;
}

interface CodecWorker {
  worker: Worker;
  pending: Map<number, Pending>;
}

let current: CodecWorker | undefined;
let nextId = 0;

function start(): CodecWorker {
  const worker = new Worker(SOURCE, { eval: true });
  const pending = new Map<number, Pending>();
  const w: CodecWorker = { worker, pending };
  worker.on('message', (m: CodecResult & { id: number }) => {
    const p = pending.get(m.id);
    if (!p) return;
    pending.delete(m.id);
    if (pending.size === 0) worker.unref();
    const { id: _, ...result } = m;
    p.resolve(result);
  });
  const stop = (why: string) => {
    if (current === w) current = undefined;
    for (const p of pending.values()) p.reject(new Error(`the codec worker thread stopped (${why})`));
    pending.clear();
  };
  worker.on('error', (e) => stop(e.message));
  worker.on('exit', (code) => stop(`exit code ${code}`));
  // after the listeners: adding a 'message' listener refs the worker again
  worker.unref();
  return w;
}

/**
 * Decodes `data` on the codec worker: with `cls`, the WebAssembly decoder class of the codec
 * module at `path`; without, jpeg-lossless-decoder-js at `path`. `data` is transferred (the
 * caller gives up its buffer). Rejects only if the worker stops; codec errors are results.
 */
export function decodeOnWorker(path: string, cls: string | undefined, data: Uint8Array): Promise<CodecResult> {
  const w = (current ??= start());
  const id = nextId++;
  return new Promise((resolve, reject) => {
    if (w.pending.size === 0) w.worker.ref();
    w.pending.set(id, { resolve, reject });
    w.worker.postMessage({ id, path, cls, data }, [data.buffer as ArrayBuffer]);
  });
}

/** Ends the codec worker, rejecting its pending decodes; the next decode starts a fresh one. */
export async function stopCodecWorker(): Promise<void> {
  const w = current;
  current = undefined;
  await w?.worker.terminate();
}

/** whether a codec worker is running (for tests: a PNG must never start one) */
export function codecWorkerRunning(): boolean {
  return current !== undefined;
}
