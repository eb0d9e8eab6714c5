/**
 * Random-weight models in llama.cpp's `phi3` GGUF layout, for the demo, tests and benchmarks
 * (no real weights can be downloaded on the machines this project is built on). Tensor names
 * and metadata keys are llama.cpp's, so the same file loads there too.
 */
import { GGMLType } from '../gguf/constants.js';
import { GGUFWriter } from '../gguf/writer.js';
import { addSpmVocab } from '../tokenizer/vocab-gguf.js';
import { syntheticSpmVocab } from './vocab.js';

export interface Phi3Shape {
  vocab: number;
  hidden: number;
  ffn: number;
  layers: number;
  heads: number;
  kvHeads: number;
  context: number;
  ropeTheta: number;
}

/** Phi-3-mini-4k-instruct's geometry (docs/model.md), with HealthGPT-M3's resized vocabulary. */
export const PHI3_MINI: Phi3Shape = { vocab: 40206, hidden: 3072, ffn: 8192, layers: 32, heads: 32, kvHeads: 32, context: 4096, ropeTheta: 10000 };

/** A tiny model with the same structure: fast to make and run anywhere. */
export const PHI3_TINY: Phi3Shape = { vocab: 1024, hidden: 256, ffn: 512, layers: 2, heads: 4, kvHeads: 4, context: 512, ropeTheta: 10000 };

/** Deterministic normal random numbers (xorshift32 + Box-Muller). */
export function randomNormal(n: number, seed: number, std = 1): Float32Array {
  let s = seed >>> 0 || 0x9e3779b9;
  const next = (): number => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return (s + 0.5) / 4294967296;
  };
  const out = new Float32Array(n);
  for (let i = 0; i < n; i += 2) {
    const r = Math.sqrt(-2 * Math.log(next())) * std;
    const a = 2 * Math.PI * next();
    out[i] = r * Math.cos(a);
    if (i + 1 < n) out[i + 1] = r * Math.sin(a);
  }
  return out;
}

const bytesOf = (a: Float32Array): Uint8Array => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);

/** The tensors of a phi3 model: name and ggml shape (row length first). */
export function phi3Tensors(s: Phi3Shape): Array<{ name: string; shape: number[] }> {
  const headDim = s.hidden / s.heads;
  const qkv = s.hidden + 2 * s.kvHeads * headDim;
  const t = [{ name: 'token_embd.weight', shape: [s.hidden, s.vocab] }];
  for (let i = 0; i < s.layers; i++) {
    t.push(
      { name: `blk.${i}.attn_norm.weight`, shape: [s.hidden] },
      { name: `blk.${i}.attn_qkv.weight`, shape: [s.hidden, qkv] },
      { name: `blk.${i}.attn_output.weight`, shape: [s.hidden, s.hidden] },
      { name: `blk.${i}.ffn_norm.weight`, shape: [s.hidden] },
      { name: `blk.${i}.ffn_up.weight`, shape: [s.hidden, 2 * s.ffn] }, // gate and up, fused
      { name: `blk.${i}.ffn_down.weight`, shape: [s.ffn, s.hidden] },
    );
  }
  t.push({ name: 'output_norm.weight', shape: [s.hidden] }, { name: 'output.weight', shape: [s.hidden, s.vocab] });
  return t;
}

/** general.architecture, general.name and the phi3.* hyper-parameters llama.cpp reads. */
export function addPhi3Hparams(w: GGUFWriter, s: Phi3Shape, name: string): void {
  w.addKV('general.architecture', 'phi3');
  // (a name with "phi-3" or "phi3" in it makes llama.cpp's vocabulary loader require
  // <|endoftext|>: keep it out unless the vocabulary has that token)
  w.addKV('general.name', name);
  w.addKV('phi3.context_length', s.context, 'u32');
  w.addKV('phi3.embedding_length', s.hidden, 'u32');
  w.addKV('phi3.feed_forward_length', s.ffn, 'u32');
  w.addKV('phi3.block_count', s.layers, 'u32');
  w.addKV('phi3.attention.head_count', s.heads, 'u32');
  w.addKV('phi3.attention.head_count_kv', s.kvHeads, 'u32');
  w.addKV('phi3.attention.layer_norm_rms_epsilon', 1e-5, 'f32');
  w.addKV('phi3.rope.dimension_count', s.hidden / s.heads, 'u32');
  w.addKV('phi3.rope.freq_base', s.ropeTheta, 'f32');
}

/** Writes an F32 phi3 GGUF with random weights (norms near 1, matrices scaled by 1/sqrt(in)). */
export async function writeRandomPhi3(path: string, s: Phi3Shape, seed = 1234): Promise<void> {
  const w = new GGUFWriter();
  addPhi3Hparams(w, s, 'healthgpt random weights (not a trained model)');
  w.addKV('general.file_type', 0, 'u32');
  addSpmVocab(w, syntheticSpmVocab(s.vocab));
  phi3Tensors(s).forEach((t, i) => {
    const n = t.shape.reduce((a, b) => a * b, 1);
    w.addTensor(t.name, t.shape, GGMLType.F32, () => {
      if (t.shape.length === 1) return bytesOf(randomNormal(n, seed + i, 0.1).map((v) => 1 + v));
      return bytesOf(randomNormal(n, seed + i, 1 / Math.sqrt(t.shape[0])));
    });
  });
  await w.write(path);
}
