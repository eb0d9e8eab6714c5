/**
 * `healthgpt convert --vision DIR`: a Hugging Face CLIP folder (openai/clip-vit-large-patch14-336
 * as released: config.json of a CLIPModel or CLIPVisionModel, preprocessor_config.json, weights
 * in safetensors or pytorch_model.bin) to llama.cpp's mmproj GGUF for a LLaVA-style tower, as
 * native/models/clip.h reads it, plus HealthGPT's generation tap and projector.
 *
 * Layers: like LLaVA's converters we keep the layers up to the comprehension tap, hidden state
 * -2 of the original tower (23 of ViT-L's 24), and record it as clip.vision.feature_layer =
 * [L - 1] with clip.vision.block_count = L - 1; the generation tap (hidden state 1) is
 * clip.vision.generation_feature_layer. The last layer and post_layernorm are never run
 * (docs/model.md), so they are not written.
 * Projectors: HealthGPT trains one per plugin (model.mm_projector in each plugin's file); the
 * engine runs them in the VisionTower, so the comprehension plugin's becomes mm.0 / mm.2 and
 * the generation plugin's mm.gen.0 / mm.gen.2 here (and the plugin files go without them).
 *
 * Checkpoint keys, by an explicit rule: vision_model.* (or the same names without the prefix,
 * as a bare CLIPVisionModel saves them) are mapped; text_model.*, text_projection.*,
 * visual_projection.*, logit_scale, *.position_ids (a buffer), vision_model.post_layernorm.*
 * and the layers past the kept ones are skipped; anything else is an error naming it.
 */
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { GGMLType } from '../gguf/constants.js';
import { GGUFWriter } from '../gguf/writer.js';
import { abortError } from '../model/model.js';
import { native } from '../native.js';
import { openCheckpoint } from './checkpoint.js';
import { encodeFloat } from './vqgan.js';
import { convertFail, numel, type LazyTensor } from './tensor.js';

export interface ClipHparams {
  imageSize: number;
  patchSize: number;
  width: number;
  ff: number;
  layers: number;
  heads: number;
  eps: number;
  mean: number[];
  std: number[];
}

/** The four tensors of an mlp2x_gelu projector, torch shapes [d, in], [d], [out, d], [out]. */
export interface ProjectorTensors {
  'mm.0.weight': LazyTensor;
  'mm.0.bias': LazyTensor;
  'mm.2.weight': LazyTensor;
  'mm.2.bias': LazyTensor;
}

export interface ConvertClipOptions {
  /** matrices' type; q8_0 as llama.cpp quantizes an mmproj: patch conv and position table f16;
   *  bf16: the patch conv f16 (llama.cpp cannot run a bf16 conv) */
  type?: 'f32' | 'f16' | 'bf16' | 'q8_0';
  comprehension?: ProjectorTensors;
  generation?: ProjectorTensors;
  /** stops between two tensors (ABORT_ERR) */
  signal?: AbortSignal;
  onTensor?: (name: string, done: number, total: number) => void;
}

const CLIP_MEAN = [0.48145466, 0.4578275, 0.40821073];
const CLIP_STD = [0.26862954, 0.26130258, 0.27577711];

const SKIPPED = [/^text_model\./, /^text_projection\./, /^visual_projection\./, /^logit_scale$/, /(^|\.)position_ids$/, /^(vision_model\.)?post_layernorm\./];

const LAYER_PARTS: Record<string, string> = {
  'self_attn.q_proj': 'attn_q',
  'self_attn.k_proj': 'attn_k',
  'self_attn.v_proj': 'attn_v',
  'self_attn.out_proj': 'attn_out',
  layer_norm1: 'ln1',
  layer_norm2: 'ln2',
  'mlp.fc1': 'ffn_up',
  'mlp.fc2': 'ffn_down',
};

async function readJson(path: string): Promise<Record<string, unknown>> {
  try {
    const v = JSON.parse(await readFile(path, 'utf8')) as unknown;
    if (!v || typeof v !== 'object' || Array.isArray(v)) convertFail(`${path}: not a JSON object`);
    return v as Record<string, unknown>;
  } catch (err) {
    if ((err as { code?: string }).code === 'ERR_CONVERT') throw err;
    return convertFail(`${path}: ${(err as Error).message}`);
  }
}

export async function readClipConfig(dir: string): Promise<ClipHparams> {
  const path = join(dir, 'config.json');
  const top = await readJson(path);
  const v = (top.vision_config ?? top) as Record<string, unknown>;
  const int = (k: string): number => {
    const x = v[k];
    if (typeof x !== 'number' || !Number.isSafeInteger(x) || x <= 0) convertFail(`${path}: vision config '${k}' must be a positive integer, got ${JSON.stringify(x)}`);
    return x as number;
  };
  const act = v.hidden_act ?? 'quick_gelu';
  if (act !== 'quick_gelu') convertFail(`${path}: hidden_act '${String(act)}' (the engine's CLIP runs quick_gelu)`);
  const h: ClipHparams = {
    imageSize: int('image_size'),
    patchSize: int('patch_size'),
    width: int('hidden_size'),
    ff: int('intermediate_size'),
    layers: int('num_hidden_layers'),
    heads: int('num_attention_heads'),
    eps: typeof v.layer_norm_eps === 'number' ? v.layer_norm_eps : 1e-5,
    mean: CLIP_MEAN,
    std: CLIP_STD,
  };
  if (h.layers < 2) convertFail(`${path}: ${h.layers} layer(s); hidden state -2 needs at least 2`);
  if (h.imageSize % h.patchSize) convertFail(`${path}: image_size ${h.imageSize} is not a multiple of patch_size ${h.patchSize}`);
  if (h.width % h.heads) convertFail(`${path}: hidden_size ${h.width} is not a multiple of ${h.heads} heads`);
  const pre = join(dir, 'preprocessor_config.json');
  if (existsSync(pre)) {
    const p = await readJson(pre);
    for (const k of ['image_mean', 'image_std'] as const) {
      const a = p[k];
      if (a === undefined) continue;
      if (!Array.isArray(a) || a.length !== 3 || a.some((x) => typeof x !== 'number' || !Number.isFinite(x))) convertFail(`${pre}: ${k} must be 3 numbers`);
      h[k === 'image_mean' ? 'mean' : 'std'] = a as number[];
    }
  }
  return h;
}

/** mmproj name of a checkpoint key (prefix removed), or undefined when it is not a tower weight. */
function mmprojName(key: string, kept: number): string | 'skip' | undefined {
  const k = key.startsWith('vision_model.') ? key.slice('vision_model.'.length) : key;
  const fixed: Record<string, string> = {
    'embeddings.patch_embedding.weight': 'v.patch_embd.weight',
    'embeddings.class_embedding': 'v.class_embd',
    'embeddings.position_embedding.weight': 'v.position_embd.weight',
    'pre_layrnorm.weight': 'v.pre_ln.weight',
    'pre_layrnorm.bias': 'v.pre_ln.bias',
  };
  if (fixed[k]) return fixed[k];
  const m = /^encoder\.layers\.(\d+)\.(.+)\.(weight|bias)$/.exec(k);
  if (!m || !LAYER_PARTS[m[2]!]) return undefined;
  const i = Number(m[1]);
  if (i >= kept) return 'skip';
  return `v.blk.${i}.${LAYER_PARTS[m[2]!]}.${m[3]}`;
}

/** The checkpoint name (vision_model.*) of an mmproj tensor name, for messages. */
function hfName(g: string): string {
  const fixed: Record<string, string> = {
    'v.patch_embd.weight': 'embeddings.patch_embedding.weight',
    'v.class_embd': 'embeddings.class_embedding',
    'v.position_embd.weight': 'embeddings.position_embedding.weight',
    'v.pre_ln.weight': 'pre_layrnorm.weight',
    'v.pre_ln.bias': 'pre_layrnorm.bias',
  };
  if (fixed[g]) return `vision_model.${fixed[g]}`;
  const m = /^v\.blk\.(\d+)\.(\w+)\.(weight|bias)$/.exec(g);
  const part = m && Object.entries(LAYER_PARTS).find(([, v]) => v === m[2]);
  return m && part ? `vision_model.encoder.layers.${m[1]}.${part[0]}.${m[3]}` : g;
}

function expectedShapes(h: ClipHparams, kept: number): Map<string, number[]> {
  const s = new Map<string, number[]>();
  const n = (h.imageSize / h.patchSize) ** 2 + 1;
  s.set('v.patch_embd.weight', [h.width, 3, h.patchSize, h.patchSize]);
  s.set('v.class_embd', [h.width]);
  s.set('v.position_embd.weight', [n, h.width]);
  s.set('v.pre_ln.weight', [h.width]);
  s.set('v.pre_ln.bias', [h.width]);
  for (let i = 0; i < kept; i++) {
    for (const p of ['attn_q', 'attn_k', 'attn_v', 'attn_out']) {
      s.set(`v.blk.${i}.${p}.weight`, [h.width, h.width]);
      s.set(`v.blk.${i}.${p}.bias`, [h.width]);
    }
    for (const p of ['ln1', 'ln2']) {
      s.set(`v.blk.${i}.${p}.weight`, [h.width]);
      s.set(`v.blk.${i}.${p}.bias`, [h.width]);
    }
    s.set(`v.blk.${i}.ffn_up.weight`, [h.ff, h.width]);
    s.set(`v.blk.${i}.ffn_up.bias`, [h.ff]);
    s.set(`v.blk.${i}.ffn_down.weight`, [h.width, h.ff]);
    s.set(`v.blk.${i}.ffn_down.bias`, [h.width]);
  }
  return s;
}

export interface ConvertClipResult {
  output: string;
  hparams: ClipHparams;
  blockCount: number;
  featureLayer: number;
  skipped: number;
  projectors: string[];
}

export async function convertClip(dir: string, output: string, o: ConvertClipOptions = {}): Promise<ConvertClipResult> {
  const h = await readClipConfig(dir);
  const kept = h.layers - 1; // hidden state -2 = the output of layer L - 1
  const ckpt = await openCheckpoint(dir);
  try {
    const byName = new Map<string, LazyTensor>();
    const unknown: string[] = [];
    let skipped = 0;
    for (const t of ckpt.tensors) {
      if (SKIPPED.some((r) => r.test(t.name))) {
        skipped++;
        continue;
      }
      const g = mmprojName(t.name, kept);
      if (g === 'skip') skipped++;
      else if (g === undefined) unknown.push(t.name);
      else if (byName.has(g)) convertFail(`${dir}: tensor '${t.name}' appears twice`);
      else byName.set(g, t);
    }
    if (unknown.length) convertFail(`${dir}: ${unknown.length} tensor(s) that are not CLIP vision weights: ${unknown.slice(0, 12).join(', ')}`);
    const expected = expectedShapes(h, kept);
    const missing = [...expected.keys()].filter((g) => !byName.has(g));
    if (missing.length) convertFail(`${dir}: ${missing.length} tensor(s) missing: ${missing.slice(0, 12).map(hfName).join(', ')}`);
    for (const [g, shape] of expected) {
      const t = byName.get(g)!;
      if (t.shape.length !== shape.length || t.shape.some((d, i) => d !== shape[i]))
        convertFail(`${dir}: tensor '${t.name}' has shape [${t.shape.join(', ')}], config.json implies [${shape.join(', ')}]`);
      if (!['F32', 'F16', 'BF16'].includes(t.dtype)) convertFail(`${dir}: tensor '${t.name}' is ${t.dtype}, not a float type`);
    }
    const tensors: Array<[string, LazyTensor]> = [...expected.keys()].map((g) => [g, byName.get(g)!]);
    const projectors: string[] = [];
    let projDim = 0;
    for (const [which, prefix] of [
      ['comprehension', 'mm.'],
      ['generation', 'mm.gen.'],
    ] as const) {
      const p = o[which];
      if (!p) continue;
      const w0 = p['mm.0.weight'];
      if (w0.shape.length !== 2 || w0.shape[1] !== h.width) convertFail(`${which} projector: '${w0.name}' (${w0.file}) has shape [${w0.shape.join(', ')}]; the tower's width is ${h.width}`);
      const d = w0.shape[0]!;
      const out = p['mm.2.weight'].shape[0]!;
      const want: Array<[LazyTensor, number[]]> = [
        [p['mm.0.bias'], [d]],
        [p['mm.2.weight'], [out, d]],
        [p['mm.2.bias'], [out]],
      ];
      for (const [t, shape] of want)
        if (t.shape.length !== shape.length || t.shape.some((x, i) => x !== shape[i]))
          convertFail(`${which} projector: '${t.name}' (${t.file}) has shape [${t.shape.join(', ')}], expected [${shape.join(', ')}]`);
      if (which === 'comprehension') projDim = out;
      for (const k of ['mm.0.weight', 'mm.0.bias', 'mm.2.weight', 'mm.2.bias'] as const) tensors.push([prefix + k.slice(3), p[k]]);
      projectors.push(which);
    }

    const w = new GGUFWriter();
    w.addKV('general.architecture', 'clip');
    w.addKV('general.name', 'healthgpt vision tower');
    w.addKV('clip.has_text_encoder', false);
    w.addKV('clip.has_vision_encoder', true);
    w.addKV('clip.has_llava_projector', true);
    w.addKV('clip.projector_type', 'mlp');
    w.addKV('clip.use_gelu', false);
    w.addKV('clip.vision.image_size', h.imageSize, 'u32');
    w.addKV('clip.vision.patch_size', h.patchSize, 'u32');
    w.addKV('clip.vision.embedding_length', h.width, 'u32');
    w.addKV('clip.vision.feed_forward_length', h.ff, 'u32');
    if (projDim) w.addKV('clip.vision.projection_dim', projDim, 'u32');
    w.addKV('clip.vision.attention.head_count', h.heads, 'u32');
    w.addKV('clip.vision.attention.layer_norm_epsilon', h.eps, 'f32');
    w.addKV('clip.vision.block_count', kept, 'u32');
    w.addKV('clip.vision.feature_layer', { type: 'i32', value: Int32Array.of(kept) });
    w.addKV('clip.vision.generation_feature_layer', 1, 'u32');
    w.addKV('clip.vision.image_mean', Float32Array.from(h.mean));
    w.addKV('clip.vision.image_std', Float32Array.from(h.std));
    const big = o.type ?? 'f16';
    let done = 0;
    for (const [g, t] of tensors) {
      let type = t.shape.length >= 2 ? big : 'f32';
      if (type === 'q8_0' && (g === 'v.patch_embd.weight' || g === 'v.position_embd.weight' || t.shape[t.shape.length - 1]! % 32 !== 0)) type = 'f16';
      // llama.cpp's CPU conv (im2col) has no bf16 kernel: its clip.cpp aborts on a bf16 patch conv
      if (type === 'bf16' && g === 'v.patch_embd.weight') type = 'f16';
      const id = { f32: GGMLType.F32, f16: GGMLType.F16, bf16: GGMLType.BF16, q8_0: GGMLType.Q8_0 }[type];
      w.addTensor(g, [...t.shape].reverse(), id, async () => {
        if (o.signal?.aborted) throw abortError(o.signal);
        const v = await t.readF32();
        if (v.length !== numel(t.shape)) convertFail(`${t.file}: tensor '${t.name}': read ${v.length} values`);
        const bytes = type === 'q8_0' ? native().quantizeRow(GGMLType.Q8_0, v) : encodeFloat(v, type);
        o.onTensor?.(g, ++done, tensors.length);
        return bytes;
      });
    }
    await w.write(output);
    return { output, hparams: h, blockCount: kept, featureLayer: kept, skipped, projectors };
  } finally {
    await ckpt.close();
  }
}
