/** Reading GGUF files through the native reader (mmap'ed, every extent checked). */
import { wrapNative } from '../errors.js';
import { native, type NativeGGUFFile, type NativeTensorInfo, type NativeValue } from '../native.js';

export type GGUFValue = NativeValue;

export interface GGUFTensor {
  name: string;
  /** ggml order: shape[0] is the row length. */
  shape: number[];
  type: string;
  typeId: number;
  /** Offset in the data section. */
  offset: number;
  bytes: number;
}

export interface GGUFInfo {
  path: string;
  version: number;
  alignment: number;
  dataOffset: number;
  fileSize: number;
  metadata: Record<string, GGUFValue>;
  /** Value type per key ("u32", "str", "array"), and the item type of arrays. */
  types: Record<string, { type: string; itemType?: string }>;
  tensors: GGUFTensor[];
}

// Shapes, offsets and sizes of any file this engine can map fit in a double exactly.
const num = (v: number | bigint): number => Number(v);

function tensorOf(t: NativeTensorInfo): GGUFTensor {
  return { name: t.name, shape: t.shape.map(num), type: t.type, typeId: t.typeId, offset: num(t.offset), bytes: num(t.bytes) };
}

export class GGUFFile {
  readonly path: string;
  readonly info: GGUFInfo;
  private handle: NativeGGUFFile;

  private constructor(path: string, handle: NativeGGUFFile) {
    this.path = path;
    this.handle = handle;
    const raw = handle.info();
    const metadata: Record<string, GGUFValue> = {};
    const types: GGUFInfo['types'] = {};
    for (const kv of raw.metadata) {
      metadata[kv.key] = kv.value;
      types[kv.key] = kv.itemType ? { type: kv.type, itemType: kv.itemType } : { type: kv.type };
    }
    this.info = {
      path,
      version: raw.version,
      alignment: num(raw.alignment),
      dataOffset: num(raw.dataOffset),
      fileSize: num(raw.fileSize),
      metadata,
      types,
      tensors: raw.tensors.map(tensorOf),
    };
  }

  /** Opens and validates a GGUF file; throws a HealthGPTError (code ERR_INVALID_FILE) naming the fault. */
  static open(path: string): GGUFFile {
    try {
      return new GGUFFile(path, new (native().GGUFFile)(path));
    } catch (err) {
      throw wrapNative(err);
    }
  }

  tensorIndex(name: string): number {
    return this.info.tensors.findIndex((t) => t.name === name);
  }

  /** A copy of the tensor's raw bytes. */
  async tensorData(index: number): Promise<Buffer> {
    try {
      return await this.handle.tensorData(index);
    } catch (err) {
      throw wrapNative(err, this.path);
    }
  }

  /** The tensor converted to another type (dequantize, then the reference quantizer). */
  async convertTensor(index: number, dstTypeId: number, threads = 0): Promise<Buffer> {
    try {
      return await this.handle.convertTensor(index, dstTypeId, threads);
    } catch (err) {
      throw wrapNative(err, this.path);
    }
  }

  close(): void {
    this.handle.close();
  }
}
