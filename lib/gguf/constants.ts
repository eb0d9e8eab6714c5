/**
 * GGUF format constants: metadata value types and the ggml tensor types with their block
 * sizes. Ids are the on-disk ones (ggml.h / gguf-py), so files interoperate with llama.cpp.
 */

export const GGUF_MAGIC = 0x46554747; // "GGUF" as a little-endian u32
export const GGUF_VERSION = 3;
export const GGUF_DEFAULT_ALIGNMENT = 32;

/** Metadata value type ids. */
export const GGUFValueType = {
  UINT8: 0,
  INT8: 1,
  UINT16: 2,
  INT16: 3,
  UINT32: 4,
  INT32: 5,
  FLOAT32: 6,
  BOOL: 7,
  STRING: 8,
  ARRAY: 9,
  UINT64: 10,
  INT64: 11,
  FLOAT64: 12,
} as const;
export type GGUFValueTypeId = (typeof GGUFValueType)[keyof typeof GGUFValueType];

/** Upper-case names by id ("UINT32"), as gguf-py and llama.cpp print them. */
export const GGUF_VALUE_TYPE_NAMES: readonly string[] = ['UINT8', 'INT8', 'UINT16', 'INT16', 'UINT32', 'INT32', 'FLOAT32', 'BOOL', 'STRING', 'ARRAY', 'UINT64', 'INT64', 'FLOAT64'];

/** Short names for the scalar value types, used to tag values given to the writer. */
export type GGUFType = 'u8' | 'i8' | 'u16' | 'i16' | 'u32' | 'i32' | 'f32' | 'bool' | 'str' | 'u64' | 'i64' | 'f64';

export const GGUF_TYPE_IDS: Readonly<Record<GGUFType, GGUFValueTypeId>> = {
  u8: GGUFValueType.UINT8,
  i8: GGUFValueType.INT8,
  u16: GGUFValueType.UINT16,
  i16: GGUFValueType.INT16,
  u32: GGUFValueType.UINT32,
  i32: GGUFValueType.INT32,
  f32: GGUFValueType.FLOAT32,
  bool: GGUFValueType.BOOL,
  str: GGUFValueType.STRING,
  u64: GGUFValueType.UINT64,
  i64: GGUFValueType.INT64,
  f64: GGUFValueType.FLOAT64,
};

/** Bytes of one value of a fixed-size type; 0 for strings. */
export const GGUF_TYPE_SIZES: Readonly<Record<GGUFType, number>> = {
  u8: 1,
  i8: 1,
  u16: 2,
  i16: 2,
  u32: 4,
  i32: 4,
  f32: 4,
  bool: 1,
  str: 0,
  u64: 8,
  i64: 8,
  f64: 8,
};

/** Tensor type ids (ggml_type). Ids 4, 5, 31-33 and 36-38 are retired and never valid. */
export const GGMLType = {
  F32: 0,
  F16: 1,
  Q4_0: 2,
  Q4_1: 3,
  Q5_0: 6,
  Q5_1: 7,
  Q8_0: 8,
  Q8_1: 9,
  Q2_K: 10,
  Q3_K: 11,
  Q4_K: 12,
  Q5_K: 13,
  Q6_K: 14,
  Q8_K: 15,
  IQ2_XXS: 16,
  IQ2_XS: 17,
  IQ3_XXS: 18,
  IQ1_S: 19,
  IQ4_NL: 20,
  IQ3_S: 21,
  IQ2_S: 22,
  IQ4_XS: 23,
  I8: 24,
  I16: 25,
  I32: 26,
  I64: 27,
  F64: 28,
  IQ1_M: 29,
  BF16: 30,
  TQ1_0: 34,
  TQ2_0: 35,
  MXFP4: 39,
  NVFP4: 40,
  Q1_0: 41,
} as const;

export interface GGMLTypeInfo {
  id: number;
  /** ggml's name, e.g. "q4_K" */
  name: string;
  /** elements per block (1 for plain types) */
  blockSize: number;
  /** bytes per block */
  typeSize: number;
}

const QK_K = 256;

/** Every tensor type a GGUF file may hold, sizes as in ggml (gguf-py's GGML_QUANT_SIZES). */
export const GGML_TYPES: readonly GGMLTypeInfo[] = [
  { id: 0, name: 'f32', blockSize: 1, typeSize: 4 },
  { id: 1, name: 'f16', blockSize: 1, typeSize: 2 },
  { id: 2, name: 'q4_0', blockSize: 32, typeSize: 2 + 16 },
  { id: 3, name: 'q4_1', blockSize: 32, typeSize: 2 + 2 + 16 },
  { id: 6, name: 'q5_0', blockSize: 32, typeSize: 2 + 4 + 16 },
  { id: 7, name: 'q5_1', blockSize: 32, typeSize: 2 + 2 + 4 + 16 },
  { id: 8, name: 'q8_0', blockSize: 32, typeSize: 2 + 32 },
  { id: 9, name: 'q8_1', blockSize: 32, typeSize: 2 + 2 + 32 }, // ggml's struct; gguf-py's 40 is stale
  { id: 10, name: 'q2_K', blockSize: QK_K, typeSize: 2 + 2 + QK_K / 16 + QK_K / 4 },
  { id: 11, name: 'q3_K', blockSize: QK_K, typeSize: 2 + QK_K / 4 + QK_K / 8 + 12 },
  { id: 12, name: 'q4_K', blockSize: QK_K, typeSize: 2 + 2 + QK_K / 2 + 12 },
  { id: 13, name: 'q5_K', blockSize: QK_K, typeSize: 2 + 2 + QK_K / 2 + QK_K / 8 + 12 },
  { id: 14, name: 'q6_K', blockSize: QK_K, typeSize: 2 + QK_K / 2 + QK_K / 4 + QK_K / 16 },
  { id: 15, name: 'q8_K', blockSize: QK_K, typeSize: 4 + QK_K + QK_K / 8 },
  { id: 16, name: 'iq2_xxs', blockSize: QK_K, typeSize: 2 + QK_K / 4 },
  { id: 17, name: 'iq2_xs', blockSize: QK_K, typeSize: 2 + QK_K / 4 + QK_K / 32 },
  { id: 18, name: 'iq3_xxs', blockSize: QK_K, typeSize: 2 + QK_K / 4 + QK_K / 8 },
  { id: 19, name: 'iq1_s', blockSize: QK_K, typeSize: 2 + QK_K / 8 + QK_K / 16 },
  { id: 20, name: 'iq4_nl', blockSize: 32, typeSize: 2 + 16 },
  { id: 21, name: 'iq3_s', blockSize: QK_K, typeSize: 2 + QK_K / 4 + QK_K / 8 + QK_K / 32 + 4 },
  { id: 22, name: 'iq2_s', blockSize: QK_K, typeSize: 2 + QK_K / 4 + QK_K / 16 },
  { id: 23, name: 'iq4_xs', blockSize: QK_K, typeSize: 2 + 2 + QK_K / 2 + QK_K / 64 },
  { id: 24, name: 'i8', blockSize: 1, typeSize: 1 },
  { id: 25, name: 'i16', blockSize: 1, typeSize: 2 },
  { id: 26, name: 'i32', blockSize: 1, typeSize: 4 },
  { id: 27, name: 'i64', blockSize: 1, typeSize: 8 },
  { id: 28, name: 'f64', blockSize: 1, typeSize: 8 },
  { id: 29, name: 'iq1_m', blockSize: QK_K, typeSize: QK_K / 8 + QK_K / 16 + QK_K / 32 },
  { id: 30, name: 'bf16', blockSize: 1, typeSize: 2 },
  { id: 34, name: 'tq1_0', blockSize: QK_K, typeSize: 2 + 4 * 13 },
  { id: 35, name: 'tq2_0', blockSize: QK_K, typeSize: 2 + 64 },
  { id: 39, name: 'mxfp4', blockSize: 32, typeSize: 1 + 16 },
  { id: 40, name: 'nvfp4', blockSize: 64, typeSize: 4 + 32 },
  { id: 41, name: 'q1_0', blockSize: 128, typeSize: 2 + 16 },
];

const BY_ID = new Map(GGML_TYPES.map((t) => [t.id, t]));
const BY_NAME = new Map(GGML_TYPES.map((t) => [t.name.toLowerCase(), t]));

/** The type with this id or name (names case-insensitive: "q4_k" finds q4_K); undefined if none. */
export function ggmlType(idOrName: number | string): GGMLTypeInfo | undefined {
  return typeof idOrName === 'number' ? BY_ID.get(idOrName) : BY_NAME.get(idOrName.toLowerCase());
}

/**
 * Bytes of a tensor of this type and shape (ggml order, dims[0] the row length); throws a
 * RangeError for an unknown type, a row length the block size does not divide, or a size
 * past 2^53.
 */
export function tensorBytes(typeId: number, dims: readonly number[]): number {
  const t = ggmlType(typeId);
  if (!t) throw new RangeError(`unknown ggml type id ${typeId}`);
  let n = 1;
  for (const d of dims) n *= d;
  if (dims.length > 0 && dims[0]! % t.blockSize !== 0) {
    throw new RangeError(`row length ${dims[0]} is not a multiple of the ${t.name} block size ${t.blockSize}`);
  }
  const bytes = (n / t.blockSize) * t.typeSize;
  if (!Number.isSafeInteger(bytes)) throw new RangeError(`tensor of shape [${dims.join(', ')}] is too large`);
  return bytes;
}
