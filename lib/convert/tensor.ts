/**
 * A tensor in a checkpoint, read lazily: the readers (safetensors, torch zips) give its name,
 * dtype and shape up front and its values only when asked, straight from the file at its offset,
 * so a converter holds one tensor at a time, never the model.
 */
import type { FileHandle } from 'node:fs/promises';
import { HealthGPTError } from '../errors.js';

/** Element types as safetensors names them (torch storages map onto the same set). */
export type DType = 'F64' | 'F32' | 'F16' | 'BF16' | 'I64' | 'I32' | 'I16' | 'I8' | 'U8' | 'BOOL';

export const DTYPE_SIZE: Record<DType, number> = { F64: 8, F32: 4, F16: 2, BF16: 2, I64: 8, I32: 4, I16: 2, I8: 1, U8: 1, BOOL: 1 };

export interface LazyTensor {
  /** the name in the checkpoint */
  readonly name: string;
  readonly dtype: DType;
  /** torch order: the last dimension is the contiguous one */
  readonly shape: readonly number[];
  /** the file it lives in, for messages */
  readonly file: string;
  /** the values, row-major, as float32 (integers and f64 rounded to the nearest float32) */
  readF32(): Promise<Float32Array>;
}

export function convertFail(message: string): never {
  throw new HealthGPTError('ERR_CONVERT', message);
}

export const numel = (shape: readonly number[]): number => shape.reduce((a, b) => a * b, 1);

/** Reads exactly `length` bytes at `position`, in pieces (one fs read stops at 2 GiB). */
export async function readExact(fh: FileHandle, position: number, length: number, what: string): Promise<Uint8Array> {
  const out = new Uint8Array(length);
  const CHUNK = 256 * 1024 * 1024;
  for (let off = 0; off < length; ) {
    const n = Math.min(CHUNK, length - off);
    const { bytesRead } = await fh.read(out, off, n, position + off);
    if (bytesRead <= 0) convertFail(`${what}: file ends ${length - off} bytes early (truncated?)`);
    off += bytesRead;
  }
  return out;
}

// f16 -> f32 through a table of all 65536 values: exact, and fast enough for gigabytes.
let f16Table: Float32Array | undefined;
function halfTable(): Float32Array {
  if (f16Table) return f16Table;
  const t = new Float32Array(65536);
  for (let h = 0; h < 65536; h++) {
    const s = h & 0x8000 ? -1 : 1;
    const e = (h >> 10) & 0x1f;
    const m = h & 0x3ff;
    if (e === 0) t[h] = s * m * 2 ** -24;
    else if (e === 31) t[h] = m ? NaN : s * Infinity;
    else t[h] = s * (1 + m / 1024) * 2 ** (e - 15);
  }
  f16Table = t;
  return t;
}

/** Decodes `count` little-endian elements of `dtype` from `bytes` into float32. */
export function decodeF32(bytes: Uint8Array, dtype: DType, count: number): Float32Array {
  const need = count * DTYPE_SIZE[dtype];
  if (bytes.byteLength < need) convertFail(`decode: ${bytes.byteLength} bytes for ${count} ${dtype} elements`);
  // copy into an aligned buffer so typed-array views are legal whatever the file offset was
  const aligned = bytes.byteOffset % 8 === 0 ? bytes : bytes.slice(0, need);
  const buf = aligned.buffer;
  const at = aligned.byteOffset;
  switch (dtype) {
    case 'F32':
      return new Float32Array(buf, at, count);
    case 'F64':
      return Float32Array.from(new Float64Array(buf, at, count));
    case 'F16': {
      const t = halfTable();
      const h = new Uint16Array(buf, at, count);
      const out = new Float32Array(count);
      for (let i = 0; i < count; i++) out[i] = t[h[i]!]!;
      return out;
    }
    case 'BF16': {
      const h = new Uint16Array(buf, at, count);
      const u = new Uint32Array(count);
      for (let i = 0; i < count; i++) u[i] = h[i]! << 16;
      return new Float32Array(u.buffer);
    }
    case 'I64': {
      const v = new BigInt64Array(buf, at, count);
      const out = new Float32Array(count);
      for (let i = 0; i < count; i++) out[i] = Number(v[i]!);
      return out;
    }
    case 'I32':
      return Float32Array.from(new Int32Array(buf, at, count));
    case 'I16':
      return Float32Array.from(new Int16Array(buf, at, count));
    case 'I8':
      return Float32Array.from(new Int8Array(buf, at, count));
    case 'U8':
    case 'BOOL':
      return Float32Array.from(new Uint8Array(buf, at, count));
  }
}
