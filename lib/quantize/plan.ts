/**
 * Which type each tensor gets when a GGUF file is quantized, following llama.cpp's choices
 * so files from `healthgpt quantize` and `llama-quantize` are alike:
 * - 1-D tensors (norms, biases) and small tensors stay F32;
 * - q8_0 / q4_0: every other weight matrix in that type;
 * - q4_k_m: q4_K, with q6_K for `output` and for `attn_v` / `ffn_down` in the layers that
 *   llama.cpp gives more bits (the first and last eighth, and every third between), q5_K for
 *   a fused `attn_qkv`;
 * - q5_k_m: the same with q5_K for q4_K, and q6_K for a fused `attn_qkv`;
 * - q6_k: q6_K everywhere;
 * - a row length the type's block does not divide falls back (k-quants to q5_0 / q8_0 as
 *   llama.cpp does, then to f16).
 */
import { HealthGPTError } from '../errors.js';

export type QuantizeTarget = 'f32' | 'f16' | 'bf16' | 'q8_0' | 'q4_0' | 'q4_k_m' | 'q5_k_m' | 'q6_k';
export const QUANTIZE_TARGETS: QuantizeTarget[] = ['f32', 'f16', 'bf16', 'q8_0', 'q4_0', 'q4_k_m', 'q5_k_m', 'q6_k'];

/** llama.cpp's `general.file_type` (LLAMA_FTYPE_*) per target. */
export const FILE_TYPE: Record<QuantizeTarget, number> = { f32: 0, f16: 1, q4_0: 2, q8_0: 7, q4_k_m: 15, q5_k_m: 17, q6_k: 18, bf16: 32 };

/** Tensors with fewer elements than this stay F32: quantizing them saves nothing. */
export const SMALL_TENSOR = 1024;

export interface TypeSizes {
  /** type name -> elements per block */
  blockSize(name: string): number;
}

export interface PlanInput {
  name: string;
  /** ggml order: shape[0] is the row length */
  shape: number[];
  type: string;
}

export interface PlanEntry {
  name: string;
  shape: number[];
  from: string;
  to: string;
  /** why it did not get the target's main type, for the log */
  note?: string;
}

const FALLBACK: Record<string, string> = { q4_K: 'q5_0', q5_K: 'q5_1', q6_K: 'q8_0', q4_0: 'f16', q8_0: 'f16', q5_0: 'f16', q5_1: 'f16' };

function layerOf(name: string): number | undefined {
  const m = name.match(/^blk\.(\d+)\./);
  return m ? Number(m[1]) : undefined;
}

/** llama.cpp's use_more_bits(i, n): first and last eighth of the layers, and every third between. */
export function useMoreBits(layer: number, nLayers: number): boolean {
  const eighth = Math.floor(nLayers / 8);
  return layer < eighth || layer >= 7 * eighth || (layer - eighth) % 3 === 2;
}

function targetFor(t: PlanInput, target: QuantizeTarget, nLayers: number): string {
  switch (target) {
    case 'f32':
      return 'f32';
    case 'f16':
      return 'f16';
    case 'bf16':
      return 'bf16';
    case 'q8_0':
      return 'q8_0';
    case 'q4_0':
      return 'q4_0';
    case 'q6_k':
      return 'q6_K';
    case 'q4_k_m':
    case 'q5_k_m': {
      const q5 = target === 'q5_k_m';
      if (t.name === 'output.weight') return 'q6_K';
      if (/\.attn_qkv\.weight$/.test(t.name)) return q5 ? 'q6_K' : 'q5_K';
      const layer = layerOf(t.name);
      if (/\.(attn_v|ffn_down)\.weight$/.test(t.name) && layer !== undefined && useMoreBits(layer, nLayers)) return 'q6_K';
      return q5 ? 'q5_K' : 'q4_K';
    }
  }
}

export function planQuantization(tensors: PlanInput[], target: QuantizeTarget, nLayers: number, sizes: TypeSizes, readable: (type: string) => boolean): PlanEntry[] {
  return tensors.map((t) => {
    const elements = t.shape.reduce((a, b) => a * b, 1);
    const keep = (to: string, note: string): PlanEntry => ({ name: t.name, shape: t.shape, from: t.type, to, note });
    if (!readable(t.type)) {
      if (t.shape.length === 1 || elements < SMALL_TENSOR) return keep(t.type, 'copied as is');
      throw new HealthGPTError('ERR_UNSUPPORTED', `tensor ${t.name}: source type ${t.type} cannot be read by this engine`);
    }
    if (t.shape.length === 1 || elements < SMALL_TENSOR) return keep('f32', t.shape.length === 1 ? '1-D: kept f32' : 'small: kept f32');
    let to = targetFor(t, target, nLayers);
    let note: string | undefined;
    while (t.shape[0] % sizes.blockSize(to) !== 0) {
      const next = FALLBACK[to] ?? 'f16';
      note = `row ${t.shape[0]} not a multiple of the ${to} block: ${next}`;
      to = next;
    }
    return { name: t.name, shape: t.shape, from: t.type, to, note };
  });
}
