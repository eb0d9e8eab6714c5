/**
 * Hugging Face Phi3ForCausalLM (Phi-3, Phi-4) to llama.cpp's `phi3` GGUF: the tensor names and
 * the phi3.* hyper-parameters as llama.cpp's convert_hf_to_gguf.py writes them, and the shape each
 * tensor must have under config.json. qkv_proj (rows q, k, v) and gate_up_proj (rows gate, up)
 * keep their fused layouts: llama.cpp's attn_qkv and ffn_up are the same matrices.
 */
import type { GGUFWriter } from '../gguf/writer.js';
import { convertFail } from './tensor.js';

export interface Phi3Hparams {
  vocabSize: number;
  hidden: number;
  ffn: number;
  layers: number;
  heads: number;
  kvHeads: number;
  headDim: number;
  ropeDims: number;
  ropeTheta: number;
  rmsEps: number;
  context: number;
  originalContext?: number;
  /** 0: none (Phi-4), as llama.cpp writes it */
  slidingWindow: number;
  tieEmbeddings: boolean;
}

const LAYER_PARTS: Record<string, string> = {
  'input_layernorm.weight': 'attn_norm.weight',
  'self_attn.qkv_proj.weight': 'attn_qkv.weight',
  'self_attn.o_proj.weight': 'attn_output.weight',
  'post_attention_layernorm.weight': 'ffn_norm.weight',
  'mlp.gate_up_proj.weight': 'ffn_up.weight',
  'mlp.down_proj.weight': 'ffn_down.weight',
};
const GLOBAL_NAMES: Record<string, string> = {
  'model.embed_tokens.weight': 'token_embd.weight',
  'model.norm.weight': 'output_norm.weight',
  'lm_head.weight': 'output.weight',
};

/** Checkpoint tensors that carry nothing the GGUF needs (old checkpoints saved RoPE's table). */
export function ignoredTensor(name: string): boolean {
  return /(^|\.)rotary_emb\.inv_freq$/.test(name);
}

/** The GGUF name of a Phi3ForCausalLM tensor, or undefined when it is not one. */
export function phi3TensorName(hfName: string): string | undefined {
  const g = GLOBAL_NAMES[hfName];
  if (g) return g;
  const m = /^model\.layers\.(\d+)\.(.+)$/.exec(hfName);
  if (!m || String(Number(m[1])) !== m[1]) return undefined;
  const part = LAYER_PARTS[m[2]!];
  return part ? `blk.${m[1]}.${part}` : undefined;
}

/** The Phi3ForCausalLM name of a GGUF tensor name (for messages about missing tensors). */
export function phi3HfName(gguf: string): string {
  for (const [hf, g] of Object.entries(GLOBAL_NAMES)) if (g === gguf) return hf;
  const m = /^blk\.(\d+)\.(.+)$/.exec(gguf);
  const part = m && Object.entries(LAYER_PARTS).find(([, g]) => g === m[2]);
  return m && part ? `model.layers.${m[1]}.${part[0]}` : gguf;
}

function num(cfg: Record<string, unknown>, key: string, path: string, opts: { int?: boolean; optional?: boolean } = {}): number | undefined {
  const v = cfg[key];
  if (v === undefined || v === null) {
    if (opts.optional) return undefined;
    return convertFail(`${path}: ${key} is missing`);
  }
  if (typeof v !== 'number' || !Number.isFinite(v) || (opts.int && (!Number.isSafeInteger(v) || v <= 0)))
    convertFail(`${path}: ${key} = ${JSON.stringify(v)} is not a ${opts.int ? 'positive integer' : 'number'}`);
  return v;
}

/** Reads config.json of a Phi3ForCausalLM (transformers 4 and 5 spellings of the RoPE fields). */
export function readPhi3Config(cfg: Record<string, unknown>, path: string): Phi3Hparams {
  const arch = Array.isArray(cfg.architectures) ? cfg.architectures : [];
  if (!arch.includes('Phi3ForCausalLM') && cfg.model_type !== 'phi3')
    convertFail(`${path}: architectures ${JSON.stringify(cfg.architectures)} / model_type ${JSON.stringify(cfg.model_type)}: only Phi3ForCausalLM is converted`);
  const rope = (cfg.rope_parameters && typeof cfg.rope_parameters === 'object' ? cfg.rope_parameters : {}) as Record<string, unknown>;
  const scaling = cfg.rope_scaling as Record<string, unknown> | null | undefined;
  const ropeType = (scaling && (scaling.rope_type ?? scaling.type)) ?? rope.rope_type ?? 'default';
  if (ropeType !== 'default') convertFail(`${path}: RoPE scaling '${String(ropeType)}' (long-context Phi-3) is not supported by this engine`);
  const hidden = num(cfg, 'hidden_size', path, { int: true })!;
  const heads = num(cfg, 'num_attention_heads', path, { int: true })!;
  const kvHeads = num(cfg, 'num_key_value_heads', path, { int: true, optional: true }) ?? heads;
  if (hidden % heads !== 0) convertFail(`${path}: hidden_size ${hidden} is not a multiple of num_attention_heads ${heads}`);
  if (heads % kvHeads !== 0) convertFail(`${path}: num_attention_heads ${heads} is not a multiple of num_key_value_heads ${kvHeads}`);
  const ropeTheta = num(cfg, 'rope_theta', path, { optional: true }) ?? num(rope, 'rope_theta', `${path} rope_parameters`, { optional: true }) ?? 10000;
  const partial = num(cfg, 'partial_rotary_factor', path, { optional: true }) ?? num(rope, 'partial_rotary_factor', `${path} rope_parameters`, { optional: true }) ?? 1;
  const sw = cfg.sliding_window;
  if (sw !== undefined && sw !== null && (!Number.isSafeInteger(sw) || (sw as number) < 0)) convertFail(`${path}: sliding_window = ${JSON.stringify(sw)} is not a non-negative integer`);
  const headDim = hidden / heads;
  return {
    vocabSize: num(cfg, 'vocab_size', path, { int: true })!,
    hidden,
    ffn: num(cfg, 'intermediate_size', path, { int: true })!,
    layers: num(cfg, 'num_hidden_layers', path, { int: true })!,
    heads,
    kvHeads,
    headDim,
    // llama.cpp: int(partial_rotary_factor * n_embd) // n_head
    ropeDims: Math.floor(Math.floor(partial * hidden) / heads),
    ropeTheta,
    rmsEps: num(cfg, 'rms_norm_eps', path, { optional: true }) ?? 1e-5,
    context: num(cfg, 'max_position_embeddings', path, { int: true })!,
    originalContext: num(cfg, 'original_max_position_embeddings', path, { int: true, optional: true }),
    slidingWindow: (sw as number | null | undefined) ?? 0,
    tieEmbeddings: cfg.tie_word_embeddings === true,
  };
}

/** Every tensor the model needs: GGUF name -> HF shape ([out, in], torch order). */
export function phi3ExpectedShapes(h: Phi3Hparams): Map<string, number[]> {
  const m = new Map<string, number[]>();
  const qkv = h.hidden + 2 * h.kvHeads * h.headDim;
  m.set('token_embd.weight', [h.vocabSize, h.hidden]);
  for (let i = 0; i < h.layers; i++) {
    m.set(`blk.${i}.attn_norm.weight`, [h.hidden]);
    m.set(`blk.${i}.attn_qkv.weight`, [qkv, h.hidden]);
    m.set(`blk.${i}.attn_output.weight`, [h.hidden, h.hidden]);
    m.set(`blk.${i}.ffn_norm.weight`, [h.hidden]);
    m.set(`blk.${i}.ffn_up.weight`, [2 * h.ffn, h.hidden]);
    m.set(`blk.${i}.ffn_down.weight`, [h.hidden, h.ffn]);
  }
  m.set('output_norm.weight', [h.hidden]);
  m.set('output.weight', [h.vocabSize, h.hidden]);
  return m;
}

/** general.architecture and the phi3.* keys, as convert_hf_to_gguf.py's Phi3MiniModel writes them. */
export function addPhi3Metadata(w: GGUFWriter, h: Phi3Hparams, name: string, fileType: number): void {
  w.addKV('general.architecture', 'phi3');
  w.addKV('general.name', name);
  w.addKV('phi3.context_length', h.context, 'u32');
  if (h.originalContext !== undefined) w.addKV('phi3.rope.scaling.original_context_length', h.originalContext, 'u32');
  w.addKV('phi3.embedding_length', h.hidden, 'u32');
  w.addKV('phi3.feed_forward_length', h.ffn, 'u32');
  w.addKV('phi3.block_count', h.layers, 'u32');
  w.addKV('phi3.attention.head_count', h.heads, 'u32');
  w.addKV('phi3.attention.head_count_kv', h.kvHeads, 'u32');
  w.addKV('phi3.attention.layer_norm_rms_epsilon', h.rmsEps, 'f32');
  w.addKV('phi3.rope.dimension_count', h.ropeDims, 'u32');
  w.addKV('phi3.rope.freq_base', h.ropeTheta, 'f32');
  w.addKV('general.file_type', fileType, 'u32');
  w.addKV('phi3.attention.sliding_window', h.slidingWindow, 'u32');
  w.addKV('general.quantization_version', 2, 'u32');
}
