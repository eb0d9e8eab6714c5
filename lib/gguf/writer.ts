/**
 * GGUF v3 writer, for tests and the converter.
 *
 *   const w = new GGUFWriter();
 *   w.addKV('general.architecture', 'phi3');
 *   w.addKV('phi3.context_length', { type: 'u32', value: 4096 });
 *   w.addKV('tokenizer.ggml.scores', new Float32Array(scores)); // typed arrays infer their type
 *   w.addTensor('token_embd.weight', [3072, 32064], GGMLType.F16, bytes);
 *   await w.write('model.gguf');
 *
 * Values: strings, booleans, bigints (u64, or i64 when negative) and typed arrays carry their
 * type; a plain number does not (int or float?), so it needs a type: `addKV(k, 5, 'u32')` or
 * `addKV(k, { type: 'u32', value: 5 })`. For arrays the type names the element type.
 *
 * write() streams: the header (metadata and tensor infos) is built in memory, then each
 * tensor's data is written in turn, padded to the alignment. Tensor data may be given lazily
 * as a function, so a converter need not hold every tensor at once. The file appears under
 * its name only once complete (written to a temp name, then renamed).
 */
import { open, realpath, rename, rm, stat } from 'node:fs/promises';
import type { Stats } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';

import { HealthGPTError } from '../errors.js';
import { GGUF_DEFAULT_ALIGNMENT, GGUF_MAGIC, GGUF_TYPE_IDS, GGUF_TYPE_SIZES, GGUF_VERSION, GGUFValueType, ggmlType, tensorBytes, type GGUFType } from './constants.js';

export type GGUFScalar = string | number | bigint | boolean;
export type GGUFArrayValue = readonly GGUFScalar[] | Int8Array | Uint8Array | Int16Array | Uint16Array | Int32Array | Uint32Array | Float32Array | Float64Array | BigInt64Array | BigUint64Array;
/** A value with its type spelled out; for arrays, the element type. */
export interface GGUFTypedValue {
  type: GGUFType;
  value: GGUFScalar | GGUFArrayValue;
}
export type GGUFWriterValue = GGUFScalar | GGUFArrayValue | GGUFTypedValue;

/** Tensor bytes, or a function giving them when write() reaches the tensor. */
export type TensorSource = Uint8Array | (() => Uint8Array | Promise<Uint8Array>);

export interface GGUFWriterOptions {
  /** Tensor data alignment, a power of two; written as general.alignment when not 32. */
  alignment?: number;
}

interface PendingTensor {
  name: string;
  dims: number[];
  typeId: number;
  bytes: number;
  source: TensorSource;
}

// Writes go out in pieces of at most this size (one fs write is limited to 2 GiB).
const WRITE_CHUNK = 64 * 1024 * 1024;

/**
 * Where to put the file for `path`: the path itself when nothing is there, the file a symbolic
 * link names (written through, the link kept), and never a device, pipe or folder, which
 * renaming the new file over would replace (`/dev/null` as output would become a file).
 */
async function replaceable(path: string): Promise<string> {
  let st: Stats;
  try {
    st = await stat(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return path;
    throw new HealthGPTError('ERR_GGUF_WRITE', `${path}: ${(err as Error).message}`);
  }
  if (!st.isFile()) fail(`${path} exists and is not a regular file (${st.isDirectory() ? 'a folder' : 'a device, pipe or socket'}): not replaced`);
  return realpath(path);
}

function fail(message: string): never {
  throw new HealthGPTError('ERR_GGUF_WRITE', message);
}

/** Strings must survive UTF-8 encoding unchanged: a lone surrogate would become U+FFFD. */
function checkWellFormed(s: string, what: string): void {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0xd800 && c <= 0xdbff) {
      const d = i + 1 < s.length ? s.charCodeAt(i + 1) : 0;
      if (d >= 0xdc00 && d <= 0xdfff) {
        i++;
        continue;
      }
      fail(`${what} holds a lone UTF-16 surrogate at index ${i}`);
    } else if (c >= 0xdc00 && c <= 0xdfff) {
      fail(`${what} holds a lone UTF-16 surrogate at index ${i}`);
    }
  }
}

function checkName(name: string, what: string): void {
  if (typeof name !== 'string' || name.length === 0) fail(`${what} must be a non-empty string`);
  if (name.includes('\0')) fail(`${what} '${name}' contains a NUL character`);
  checkWellFormed(name, `${what} '${name}'`);
}

function isTypedValue(v: GGUFWriterValue): v is GGUFTypedValue {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !ArrayBuffer.isView(v);
}

function isArrayValue(v: GGUFScalar | GGUFArrayValue): v is GGUFArrayValue {
  return Array.isArray(v) || ArrayBuffer.isView(v);
}

function typedArrayType(v: ArrayBufferView): GGUFType | undefined {
  if (v instanceof Int8Array) return 'i8';
  if (v instanceof Uint8Array) return 'u8';
  if (v instanceof Int16Array) return 'i16';
  if (v instanceof Uint16Array) return 'u16';
  if (v instanceof Int32Array) return 'i32';
  if (v instanceof Uint32Array) return 'u32';
  if (v instanceof Float32Array) return 'f32';
  if (v instanceof Float64Array) return 'f64';
  if (v instanceof BigInt64Array) return 'i64';
  if (v instanceof BigUint64Array) return 'u64';
  return undefined;
}

function inferScalar(v: GGUFScalar, key: string): GGUFType {
  switch (typeof v) {
    case 'string':
      return 'str';
    case 'boolean':
      return 'bool';
    case 'bigint':
      return v < 0n ? 'i64' : 'u64';
    default:
      return fail(`key '${key}': a number needs a type (e.g. { type: 'u32', value: ${String(v)} }): ints and floats look alike`);
  }
}

function inferArray(v: GGUFArrayValue, key: string): GGUFType {
  if (ArrayBuffer.isView(v)) {
    const t = typedArrayType(v);
    if (!t) fail(`key '${key}': unsupported typed array`);
    return t;
  }
  const items = v as readonly GGUFScalar[];
  if (items.length === 0) fail(`key '${key}': an empty array needs an element type`);
  const first = typeof items[0];
  if (!items.every((x) => typeof x === first)) fail(`key '${key}': array items are of mixed types`);
  if (first === 'bigint') return (items as readonly bigint[]).some((x) => x < 0n) ? 'i64' : 'u64';
  if (Array.isArray(items[0])) fail(`key '${key}': nested arrays are not supported`);
  if (first === 'number') fail(`key '${key}': an array of numbers needs an element type (ints and floats look alike)`);
  if (first !== 'string' && first !== 'boolean') fail(`key '${key}': unsupported array item type ${first}`);
  return inferScalar(items[0]!, key);
}

const INT_RANGES: Partial<Record<GGUFType, [bigint, bigint]>> = {
  u8: [0n, 0xffn],
  i8: [-0x80n, 0x7fn],
  u16: [0n, 0xffffn],
  i16: [-0x8000n, 0x7fffn],
  u32: [0n, 0xffffffffn],
  i32: [-0x80000000n, 0x7fffffffn],
  u64: [0n, 0xffffffffffffffffn],
  i64: [-0x8000000000000000n, 0x7fffffffffffffffn],
};

/** Encodes one scalar at `at`; returns the next offset. Strings are handled by the caller. */
function putScalar(buf: Buffer, at: number, type: GGUFType, v: GGUFScalar, what: string): number {
  if (type === 'bool') {
    if (typeof v !== 'boolean') fail(`${what}: expected a boolean, got ${typeof v}`);
    return buf.writeUInt8(v ? 1 : 0, at);
  }
  if (type === 'f32' || type === 'f64') {
    if (typeof v !== 'number') fail(`${what}: expected a number for ${type}, got ${typeof v}`);
    return type === 'f32' ? buf.writeFloatLE(v, at) : buf.writeDoubleLE(v, at);
  }
  const range = INT_RANGES[type];
  if (!range) return fail(`${what}: ${type} is not a scalar type`);
  let n: bigint;
  if (typeof v === 'bigint') n = v;
  else if (typeof v === 'number' && Number.isSafeInteger(v)) n = BigInt(v);
  else return fail(`${what}: expected an integer for ${type}, got ${String(v)}`);
  if (n < range[0] || n > range[1]) fail(`${what}: ${n} is out of range for ${type}`);
  switch (type) {
    case 'u8':
      return buf.writeUInt8(Number(n), at);
    case 'i8':
      return buf.writeInt8(Number(n), at);
    case 'u16':
      return buf.writeUInt16LE(Number(n), at);
    case 'i16':
      return buf.writeInt16LE(Number(n), at);
    case 'u32':
      return buf.writeUInt32LE(Number(n), at);
    case 'i32':
      return buf.writeInt32LE(Number(n), at);
    case 'u64':
      return buf.writeBigUInt64LE(n, at);
    default:
      return buf.writeBigInt64LE(n, at);
  }
}

/** The value part of a key/value (type id, then the value), ready to copy into the header. */
function encodeValue(key: string, value: GGUFWriterValue, explicit?: GGUFType): Buffer {
  let type = explicit;
  let v: GGUFScalar | GGUFArrayValue;
  if (isTypedValue(value)) {
    if (explicit && explicit !== value.type) fail(`key '${key}': type given twice ('${explicit}' and '${value.type}')`);
    type = value.type;
    v = value.value;
  } else {
    v = value;
  }
  if (type !== undefined && !(type in GGUF_TYPE_IDS)) fail(`key '${key}': unknown value type '${String(type)}'`);

  if (!isArrayValue(v)) {
    const t = type ?? inferScalar(v, key);
    if (t === 'str') {
      if (typeof v !== 'string') fail(`key '${key}': expected a string, got ${typeof v}`);
      checkWellFormed(v, `key '${key}'`);
      const n = Buffer.byteLength(v, 'utf8');
      const buf = Buffer.alloc(4 + 8 + n);
      buf.writeUInt32LE(GGUFValueType.STRING, 0);
      buf.writeBigUInt64LE(BigInt(n), 4);
      buf.write(v, 12, 'utf8');
      return buf;
    }
    const buf = Buffer.alloc(4 + GGUF_TYPE_SIZES[t]);
    buf.writeUInt32LE(GGUF_TYPE_IDS[t], 0);
    putScalar(buf, 4, t, v, `key '${key}'`);
    return buf;
  }

  const et = type ?? inferArray(v, key);
  const n = v.length;
  const head = 4 + 4 + 8;
  let buf: Buffer;
  if (et === 'str') {
    const items = v as readonly GGUFScalar[];
    let size = head;
    for (let i = 0; i < n; i++) {
      const s = items[i];
      if (typeof s !== 'string') fail(`key '${key}' element ${i}: expected a string, got ${typeof s}`);
      checkWellFormed(s, `key '${key}' element ${i}`);
      size += 8 + Buffer.byteLength(s, 'utf8');
    }
    buf = Buffer.alloc(size);
    let at = head;
    for (let i = 0; i < n; i++) {
      const s = items[i] as string;
      const len = buf.write(s, at + 8, 'utf8');
      buf.writeBigUInt64LE(BigInt(len), at);
      at += 8 + len;
    }
  } else {
    buf = Buffer.alloc(head + n * GGUF_TYPE_SIZES[et]);
    let at = head;
    for (let i = 0; i < n; i++) at = putScalar(buf, at, et, v[i] as GGUFScalar, `key '${key}' element ${i}`);
  }
  buf.writeUInt32LE(GGUFValueType.ARRAY, 0);
  buf.writeUInt32LE(GGUF_TYPE_IDS[et], 4);
  buf.writeBigUInt64LE(BigInt(n), 8);
  return buf;
}

function checkAlignment(a: unknown): number {
  if (typeof a !== 'number' || !Number.isInteger(a) || a <= 0 || a > 0x80000000 || (a & (a - 1)) !== 0) {
    fail(`alignment must be a power of two up to 2^31, got ${String(a)}`);
  }
  return a;
}

const alignUp = (n: number, a: number): number => Math.ceil(n / a) * a;

async function writeAll(fh: FileHandle, data: Uint8Array): Promise<void> {
  for (let off = 0; off < data.byteLength; ) {
    const len = Math.min(WRITE_CHUNK, data.byteLength - off);
    const { bytesWritten } = await fh.write(data, off, len);
    if (bytesWritten <= 0) fail('write made no progress');
    off += bytesWritten;
  }
}

export class GGUFWriter {
  private readonly kvs = new Map<string, Buffer>();
  private readonly tensors: PendingTensor[] = [];
  private readonly tensorNames = new Set<string>();
  private alignmentValue: number;

  constructor(options: GGUFWriterOptions = {}) {
    this.alignmentValue = checkAlignment(options.alignment ?? GGUF_DEFAULT_ALIGNMENT);
    if (this.alignmentValue !== GGUF_DEFAULT_ALIGNMENT) {
      this.addKV('general.alignment', { type: 'u32', value: this.alignmentValue });
    }
  }

  get alignment(): number {
    return this.alignmentValue;
  }

  /** Adds a metadata key; duplicate keys are refused (readers refuse them too). */
  addKV(key: string, value: GGUFWriterValue, type?: GGUFType): this {
    checkName(key, 'key');
    if (this.kvs.has(key)) fail(`duplicate key '${key}'`);
    const enc = encodeValue(key, value, type);
    if (key === 'general.alignment') {
      // Readers take the alignment only from a u32.
      if (enc.readUInt32LE(0) !== GGUFValueType.UINT32) fail(`general.alignment must be a u32`);
      this.alignmentValue = checkAlignment(enc.readUInt32LE(4));
    }
    this.kvs.set(key, enc);
    return this;
  }

  /**
   * Adds a tensor: dims in ggml order (dims[0] the row length, at most 4), a ggml type id or
   * name, and its bytes (or a function returning them, called during write()).
   */
  addTensor(name: string, dims: readonly number[], typeId: number | string, data: TensorSource): this {
    checkName(name, 'tensor name');
    if (this.tensorNames.has(name)) fail(`duplicate tensor '${name}'`);
    const type = ggmlType(typeId);
    if (!type) fail(`tensor '${name}': unknown ggml type ${String(typeId)}`);
    if (dims.length < 1 || dims.length > 4) fail(`tensor '${name}': ${dims.length} dimensions (1 to 4 allowed)`);
    for (const d of dims) {
      if (!Number.isSafeInteger(d) || d <= 0) fail(`tensor '${name}': dimension ${String(d)} is not a positive integer`);
    }
    let bytes: number;
    try {
      bytes = tensorBytes(type.id, dims);
    } catch (err) {
      return fail(`tensor '${name}': ${(err as Error).message}`);
    }
    if (typeof data !== 'function' && data.byteLength !== bytes) {
      fail(`tensor '${name}': ${data.byteLength} bytes given, ${type.name} [${dims.join(', ')}] needs ${bytes}`);
    }
    this.tensors.push({ name, dims: [...dims], typeId: type.id, bytes, source: data });
    this.tensorNames.add(name);
    return this;
  }

  /** Offsets of each tensor in the data section, as write() will lay them out. */
  tensorOffsets(): number[] {
    const out: number[] = [];
    let off = 0;
    for (const t of this.tensors) {
      out.push(off);
      off = alignUp(off + t.bytes, this.alignmentValue);
    }
    return out;
  }

  /** The header: magic, version, counts, key/values and tensor infos (no padding). */
  private header(offsets: number[]): Buffer {
    const parts: Buffer[] = [];
    const fixed = Buffer.alloc(24);
    fixed.writeUInt32LE(GGUF_MAGIC, 0);
    fixed.writeUInt32LE(GGUF_VERSION, 4);
    fixed.writeBigUInt64LE(BigInt(this.tensors.length), 8);
    fixed.writeBigUInt64LE(BigInt(this.kvs.size), 16);
    parts.push(fixed);
    const str = (s: string): Buffer => {
      const n = Buffer.byteLength(s, 'utf8');
      const b = Buffer.alloc(8 + n);
      b.writeBigUInt64LE(BigInt(n), 0);
      b.write(s, 8, 'utf8');
      return b;
    };
    for (const [key, enc] of this.kvs) parts.push(str(key), enc);
    this.tensors.forEach((t, i) => {
      const info = Buffer.alloc(4 + 8 * t.dims.length + 4 + 8);
      info.writeUInt32LE(t.dims.length, 0);
      t.dims.forEach((d, k) => info.writeBigUInt64LE(BigInt(d), 4 + 8 * k));
      info.writeUInt32LE(t.typeId, 4 + 8 * t.dims.length);
      info.writeBigUInt64LE(BigInt(offsets[i]!), 8 + 8 * t.dims.length);
      parts.push(str(t.name), info);
    });
    return Buffer.concat(parts);
  }

  /** Writes the file: header, padding, then each tensor's data padded to the alignment. */
  async write(path: string): Promise<void> {
    const offsets = this.tensorOffsets();
    const header = this.header(offsets);
    const target = await replaceable(path);
    const tmp = `${target}.tmp-${process.pid}`;
    const fh = await open(tmp, 'w');
    try {
      const zeros = Buffer.alloc(this.alignmentValue);
      await writeAll(fh, header);
      await writeAll(fh, zeros.subarray(0, alignUp(header.length, this.alignmentValue) - header.length));
      for (const t of this.tensors) {
        const data = typeof t.source === 'function' ? await t.source() : t.source;
        if (!(data instanceof Uint8Array) || data.byteLength !== t.bytes) {
          fail(`tensor '${t.name}': its source gave ${data instanceof Uint8Array ? data.byteLength : typeof data} bytes, ${t.bytes} expected`);
        }
        await writeAll(fh, data);
        await writeAll(fh, zeros.subarray(0, alignUp(t.bytes, this.alignmentValue) - t.bytes));
      }
      await fh.close();
      await rename(tmp, target);
    } catch (err) {
      await fh.close().catch(() => undefined);
      await rm(tmp, { force: true });
      throw err;
    }
  }
}
