/**
 * Random-weight H-LoRA plugins in the adapter GGUF format (README.md, "H-LoRA plugin files";
 * native/models/hlora_plugin.cpp) for a phi3 shape: for tests and benchmarks of the plugin
 * path, where no trained HealthGPT weights can be downloaded.
 */
import { GGMLType } from '../gguf/constants.js';
import { GGUFWriter } from '../gguf/writer.js';
import { native } from '../native.js';
import { randomNormal, type Phi3Shape } from './phi3.js';

export interface HLoraShape {
  /** hlora.plugin */
  name: string;
  rank: number;
  alpha: number;
  experts: number;
}

/** HealthGPT-M3's plugins (docs/model.md). */
export const M3_COMPREHENSION: HLoraShape = { name: 'comprehension', rank: 64, alpha: 128, experts: 4 };
export const M3_GENERATION: HLoraShape = { name: 'generation', rank: 256, alpha: 512, experts: 4 };

/** The linears a plugin adapts, with their (in, out) for a shape; never output (lm_head). */
export function hloraLinears(s: Phi3Shape): Array<{ linear: string; in: number; out: number }> {
  const qkv = s.hidden + (2 * s.kvHeads * s.hidden) / s.heads;
  return [
    { linear: 'attn_qkv', in: s.hidden, out: qkv },
    { linear: 'attn_output', in: s.hidden, out: s.hidden },
    { linear: 'ffn_up', in: s.hidden, out: 2 * s.ffn },
    { linear: 'ffn_down', in: s.ffn, out: s.hidden },
  ];
}

/** Every tensor of a plugin: name and ggml shape (row length first). */
export function hloraTensors(s: Phi3Shape, p: HLoraShape): Array<{ name: string; shape: number[] }> {
  const out: Array<{ name: string; shape: number[] }> = [];
  for (let i = 0; i < s.layers; i++)
    for (const l of hloraLinears(s))
      out.push(
        { name: `blk.${i}.${l.linear}.router`, shape: [l.in, p.experts] },
        { name: `blk.${i}.${l.linear}.lora_A`, shape: [l.in, p.rank] },
        { name: `blk.${i}.${l.linear}.lora_B`, shape: [p.rank, l.out] },
      );
  return out;
}

/** general.architecture "hlora" and the hlora.* keys, with the base sizes the loader checks. */
export function addHLoraHparams(w: GGUFWriter, s: Phi3Shape, p: HLoraShape): void {
  w.addKV('general.architecture', 'hlora');
  w.addKV('general.name', `healthgpt random ${p.name} plugin (not trained)`);
  w.addKV('hlora.plugin', p.name);
  w.addKV('hlora.rank', p.rank, 'u32');
  w.addKV('hlora.alpha', p.alpha, 'f32');
  w.addKV('hlora.expert_count', p.experts, 'u32');
  w.addKV('hlora.base.block_count', s.layers, 'u32');
  w.addKV('hlora.base.embedding_length', s.hidden, 'u32');
  w.addKV('hlora.base.feed_forward_length', s.ffn, 'u32');
}

/**
 * Writes a plugin with random adapters in F32, F16 or BF16, each tensor drawn as the writer
 * reaches it. Magnitudes: router 2/sqrt(in), lora_A 1/sqrt(in), lora_B 0.15/sqrt(r), so B g
 * is a fraction of W x, as a trained adapter's is.
 */
export async function writeRandomHLoraPlugin(path: string, s: Phi3Shape, p: HLoraShape, type: 'f32' | 'f16' | 'bf16' = 'f16', seed = 4321): Promise<void> {
  const w = new GGUFWriter();
  addHLoraHparams(w, s, p);
  const id = type === 'f32' ? GGMLType.F32 : type === 'f16' ? GGMLType.F16 : GGMLType.BF16;
  hloraTensors(s, p).forEach((t, i) => {
    const [cols, rows] = t.shape;
    const std = t.name.endsWith('.router') ? 2 / Math.sqrt(cols) : t.name.endsWith('.lora_A') ? 1 / Math.sqrt(cols) : 0.15 / Math.sqrt(cols);
    w.addTensor(t.name, t.shape, id, () => {
      const v = randomNormal(cols * rows, seed + i, std);
      return id === GGMLType.F32 ? new Uint8Array(v.buffer) : native().quantizeRow(id, v);
    });
  });
  await w.write(path);
}
