/**
 * A tiny random-weight HealthGPT in the RELEASED file layouts, written from TypeScript (the demo
 * has no Python): what `healthgpt convert --llm --vision --plugins --vqgan` reads, so the demo
 * can make it once, cache it, and convert it as a user converts the real release.
 *
 *   llm/       config.json (Phi3ForCausalLM), generation_config.json, model.safetensors, tokenizer.model,
 *              tokenizer_config.json (added chat tokens, BOS/EOS)
 *   clip/      config.json (CLIPModel with vision_config), preprocessor_config.json,
 *              model.safetensors (vision_model.* with post_layernorm and position_ids, plus
 *              text-model tensors and logit_scale the converter skips)
 *   com_hlora_weights.bin, gen_hlora_weights.bin   one plugin each, bf16, keys exactly as
 *              HealthGPT's release holds them (docs/model.md, "The released files"):
 *              base_model.model.model.layers.N.<linear>.lora_route.weight [n, in],
 *              .lora_A.weight [r, in] (the experts' rows stacked), .lora_B.weight [out, r],
 *              for <linear> in self_attn.qkv_proj, self_attn.o_proj, mlp.gate_up_proj,
 *              mlp.down_proj; and the plugin's projector base_model.model.model.mm_projector.{0,2}
 *   fusion_layer_weights.bin   base_model.model.model.embed_tokens.weight and
 *              base_model.model.lm_head.weight only, resized for the image tokens (tokenizer +
 *              n_embed + 3 rows, as the release's 32011 + 8195), bf16
 *   vqgan/     last.ckpt (a Lightning dict: epoch, global_step, state_dict with loss.* too),
 *              model.yaml (laid out as HealthGPT's taming_transformers/ckpt/model.yaml, block
 *              sequences included, with this model's numbers)
 * The .bin / .ckpt are torch.save zips (lib/synthetic/torch-writer.ts). The layout is what
 * HealthGPT's loader implies: llava/demo/utils.py load_weights runs
 * model.load_state_dict(torch.load(file), strict=False) on the PEFT-wrapped model, whose H-LoRA
 * linears (llava/peft/tuners/lora.py) own lora_route, one stacked lora_A and one lora_B, with no
 * adapter-name level; the Hugging Face file sizes of the M3 release equal these tensors' bf16
 * bytes (com 231 MB, gen 835 MB, fusion 494 MB).
 * Random weights: nothing means anything; sizes are small so writing and converting take about
 * a second. The VQGAN has HealthGPT's f8 geometry (a 32 x 32 latent, 256 x 256 images) so that a
 * generation emits 1024 image tokens, as the real model's does.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { ConvertHealthGPTOptions } from '../convert/healthgpt.js';
import { vqganDecoderShapes, type VqganHparams } from '../convert/vqgan.js';
import { randomNormal } from './phi3.js';
import { writeSafetensors, type SafetensorsEntry } from './safetensors-writer.js';
import { writeSentencePieceModel } from './spm-model-writer.js';
import { TorchDict, TorchTensor, writeTorchSave, type TorchValue } from './torch-writer.js';
import { syntheticSpmVocab } from './vocab.js';

export const SYNTHETIC_RELEASE = {
  /**
   * vocab: config.json's vocab_size (embedding rows of model.safetensors); tokenizer: the
   * tokenizer's own tokens, fewer, as Phi-3's 32011 of 32064
   */
  llm: { vocab: 1024, tokenizer: 1000, hidden: 64, ffn: 128, layers: 2, heads: 4, kvHeads: 4, context: 2048, ropeTheta: 10000 },
  clip: { imageSize: 56, patchSize: 14, width: 64, ff: 128, layers: 4, heads: 4 },
  plugins: {
    comprehension: { rank: 8, alpha: 16, experts: 4 },
    generation: { rank: 16, alpha: 32, experts: 4 },
  },
  /**
   * HealthGPT's image tokens start here (right after the tokenizer's own): the resized
   * embeddings / head in fusion_layer_weights.bin have tokenizer + n_embed + 3 rows
   */
  firstRow: 1000,
  /** the f8 geometry of HealthGPT's VQGAN (256 px, 32 x 32 latent, attention at 32), narrow and with a small codebook */
  vqgan: { ch: 32, ch_mult: [1, 1, 1, 1], num_res_blocks: 1, attn_resolutions: [32], z_channels: 16, resolution: 256, in_channels: 3, out_ch: 3, embed_dim: 16, n_embed: 64 } satisfies VqganHparams,
} as const;

/** Rows of the resized embeddings / head: the tokenizer's tokens and HealthGPT's image tokens. */
export const SYNTHETIC_RELEASE_ROWS = SYNTHETIC_RELEASE.llm.tokenizer + SYNTHETIC_RELEASE.vqgan.n_embed + 3;

const CLIP_MEAN = [0.48145466, 0.4578275, 0.40821073];
const CLIP_STD = [0.26862954, 0.26130258, 0.27577711];
const PEFT = 'base_model.model.';

/** Deterministic random values per tensor: seed from the name. */
function seedOf(name: string, seed: number): number {
  let h = 2166136261 ^ seed;
  for (let i = 0; i < name.length; i++) h = Math.imul(h ^ name.charCodeAt(i), 16777619);
  return h >>> 0;
}

/** A weight of torch shape `shape`: norms around 1, biases and embeddings small, matrices 1/sqrt(fan_in). */
function weight(name: string, shape: number[], seed: number, kind: 'norm' | 'bias' | 'embed' | 'matrix' = 'matrix', scale = 1): Float32Array {
  const n = shape.reduce((a, b) => a * b, 1);
  const fanIn = shape.slice(1).reduce((a, b) => a * b, 1);
  const std = kind === 'norm' ? 0.1 : kind === 'bias' ? 0.1 : kind === 'embed' ? 1 : scale / Math.sqrt(fanIn);
  const v = randomNormal(n, seedOf(name, seed), std);
  if (kind === 'norm') for (let i = 0; i < n; i++) v[i]! += 1;
  return v;
}

async function json(path: string, v: unknown): Promise<void> {
  await writeFile(path, JSON.stringify(v, null, 2) + '\n');
}

/** model.safetensors' embed_tokens / lm_head: vocab_size rows. */
function llmRows(which: 'embed' | 'head', seed: number): Float32Array {
  const s = SYNTHETIC_RELEASE.llm;
  return which === 'embed' ? weight('embed', [s.vocab, s.hidden], seed, 'embed') : weight('lm_head', [s.vocab, s.hidden], seed, 'matrix', 4);
}

/**
 * embed_tokens / lm_head resized for the image tokens, as HealthGPT saves them: the language
 * model's rows for the tokenizer's tokens, then `tag`'s rows for the image tokens.
 */
function resizedRows(which: 'embed' | 'head', tag: string, seed: number): Float32Array {
  const s = SYNTHETIC_RELEASE.llm;
  const out = new Float32Array(SYNTHETIC_RELEASE_ROWS * s.hidden);
  out.set(llmRows(which, seed).subarray(0, s.tokenizer * s.hidden));
  const extra = SYNTHETIC_RELEASE_ROWS - s.tokenizer;
  out.set(weight(`${tag}.${which}`, [extra, s.hidden], seed, which === 'embed' ? 'embed' : 'matrix', 4), s.tokenizer * s.hidden);
  return out;
}

async function writeLlm(dir: string, seed: number): Promise<void> {
  const s = SYNTHETIC_RELEASE.llm;
  await mkdir(dir, { recursive: true });
  const vocab = syntheticSpmVocab(s.tokenizer);
  await json(join(dir, 'config.json'), {
    architectures: ['Phi3ForCausalLM'],
    model_type: 'phi3',
    vocab_size: s.vocab,
    hidden_size: s.hidden,
    intermediate_size: s.ffn,
    num_hidden_layers: s.layers,
    num_attention_heads: s.heads,
    num_key_value_heads: s.kvHeads,
    max_position_embeddings: s.context,
    original_max_position_embeddings: s.context,
    rope_theta: s.ropeTheta,
    rms_norm_eps: 1e-5,
    sliding_window: s.context - 1,
    tie_word_embeddings: false,
    bos_token_id: vocab.bosId,
    eos_token_id: vocab.eosId,
    torch_dtype: 'float32',
  });
  // Phi-3-mini's generation_config.json lists three ends of sequence (32000 <|endoftext|>,
  // 32001 <|assistant|>, 32007 <|end|>); the converter records them and generation stops there
  const id = (piece: string): number => vocab.pieces.indexOf(piece);
  await json(join(dir, 'generation_config.json'), {
    bos_token_id: vocab.bosId,
    eos_token_id: [id('<|endoftext|>'), id('<|assistant|>'), id('<|end|>')],
    pad_token_id: vocab.eosId,
  });
  await writeSentencePieceModel(join(dir, 'tokenizer.model'), vocab);
  const added: Record<string, unknown> = {};
  vocab.pieces.forEach((p, i) => {
    if (vocab.types[i] === 3 && i > 2) added[String(i)] = { content: p, lstrip: false, normalized: false, rstrip: false, single_word: false, special: true };
  });
  await json(join(dir, 'tokenizer_config.json'), {
    add_bos_token: false,
    add_eos_token: false,
    added_tokens_decoder: added,
    bos_token: '<s>',
    eos_token: '<|endoftext|>',
    unk_token: '<unk>',
    pad_token: '<|endoftext|>',
    tokenizer_class: 'LlamaTokenizer',
  });
  const qkv = s.hidden + (2 * s.kvHeads * s.hidden) / s.heads;
  const t: SafetensorsEntry[] = [{ name: 'model.embed_tokens.weight', shape: [s.vocab, s.hidden], data: llmRows('embed', seed) }];
  for (let i = 0; i < s.layers; i++) {
    const p = `model.layers.${i}.`;
    const add = (n: string, shape: number[], kind: 'norm' | 'matrix' = 'matrix'): void => {
      t.push({ name: p + n, shape, data: weight(p + n, shape, seed, kind) });
    };
    add('input_layernorm.weight', [s.hidden], 'norm');
    add('self_attn.qkv_proj.weight', [qkv, s.hidden]);
    add('self_attn.o_proj.weight', [s.hidden, s.hidden]);
    add('post_attention_layernorm.weight', [s.hidden], 'norm');
    add('mlp.gate_up_proj.weight', [2 * s.ffn, s.hidden]);
    add('mlp.down_proj.weight', [s.hidden, s.ffn]);
  }
  t.push({ name: 'model.norm.weight', shape: [s.hidden], data: weight('norm', [s.hidden], seed, 'norm') });
  t.push({ name: 'lm_head.weight', shape: [s.vocab, s.hidden], data: llmRows('head', seed) });
  await writeSafetensors(join(dir, 'model.safetensors'), t);
}

async function writeClip(dir: string, seed: number): Promise<void> {
  const c = SYNTHETIC_RELEASE.clip;
  await mkdir(dir, { recursive: true });
  await json(join(dir, 'config.json'), {
    architectures: ['CLIPModel'],
    model_type: 'clip',
    projection_dim: 16,
    text_config: { hidden_size: 16, model_type: 'clip_text_model' },
    vision_config: {
      model_type: 'clip_vision_model',
      hidden_size: c.width,
      intermediate_size: c.ff,
      num_hidden_layers: c.layers,
      num_attention_heads: c.heads,
      num_channels: 3,
      image_size: c.imageSize,
      patch_size: c.patchSize,
      hidden_act: 'quick_gelu',
      layer_norm_eps: 1e-5,
      projection_dim: 16,
    },
  });
  await json(join(dir, 'preprocessor_config.json'), {
    crop_size: { height: c.imageSize, width: c.imageSize },
    do_center_crop: true,
    do_normalize: true,
    do_resize: true,
    image_mean: CLIP_MEAN,
    image_std: CLIP_STD,
    resample: 3,
    size: { shortest_edge: c.imageSize },
    image_processor_type: 'CLIPImageProcessor',
  });
  const nPos = (c.imageSize / c.patchSize) ** 2 + 1;
  const t: SafetensorsEntry[] = [];
  const add = (name: string, shape: number[], kind: 'norm' | 'bias' | 'embed' | 'matrix'): void => {
    t.push({ name, shape, data: weight(name, shape, seed, kind, kind === 'embed' ? 0.5 : 1) });
  };
  const v = 'vision_model.';
  add(`${v}embeddings.class_embedding`, [c.width], 'bias');
  add(`${v}embeddings.patch_embedding.weight`, [c.width, 3, c.patchSize, c.patchSize], 'matrix');
  add(`${v}embeddings.position_embedding.weight`, [nPos, c.width], 'bias');
  t.push({ name: `${v}embeddings.position_ids`, shape: [1, nPos], data: BigInt64Array.from({ length: nPos }, (_, i) => BigInt(i)) });
  add(`${v}pre_layrnorm.weight`, [c.width], 'norm');
  add(`${v}pre_layrnorm.bias`, [c.width], 'bias');
  for (let i = 0; i < c.layers; i++) {
    const p = `${v}encoder.layers.${i}.`;
    for (const m of ['self_attn.q_proj', 'self_attn.k_proj', 'self_attn.v_proj', 'self_attn.out_proj']) {
      add(`${p}${m}.weight`, [c.width, c.width], 'matrix');
      add(`${p}${m}.bias`, [c.width], 'bias');
    }
    for (const m of ['layer_norm1', 'layer_norm2']) {
      add(`${p}${m}.weight`, [c.width], 'norm');
      add(`${p}${m}.bias`, [c.width], 'bias');
    }
    add(`${p}mlp.fc1.weight`, [c.ff, c.width], 'matrix');
    add(`${p}mlp.fc1.bias`, [c.ff], 'bias');
    add(`${p}mlp.fc2.weight`, [c.width, c.ff], 'matrix');
    add(`${p}mlp.fc2.bias`, [c.width], 'bias');
  }
  add(`${v}post_layernorm.weight`, [c.width], 'norm');
  add(`${v}post_layernorm.bias`, [c.width], 'bias');
  add('text_model.embeddings.token_embedding.weight', [8, 16], 'embed');
  add('visual_projection.weight', [16, c.width], 'matrix');
  add('text_projection.weight', [16, 16], 'matrix');
  t.push({ name: 'logit_scale', shape: [], data: Float32Array.of(2.6592) });
  await writeSafetensors(join(dir, 'model.safetensors'), t);
}

/** A plugin's mlp2x_gelu projector, under the PEFT-wrapped model's names. */
function projector(tag: string, seed: number): Array<[string, TorchValue]> {
  const d = SYNTHETIC_RELEASE.llm.hidden;
  const w = SYNTHETIC_RELEASE.clip.width;
  const t = (n: string, shape: number[], kind: 'bias' | 'matrix'): [string, TorchValue] => [
    `${PEFT}model.mm_projector.${n}`,
    new TorchTensor(shape, weight(`${tag}.mm_projector.${n}`, shape, seed, kind), 'bf16'),
  ];
  return [t('0.weight', [d, w], 'matrix'), t('0.bias', [d], 'bias'), t('2.weight', [d, d], 'matrix'), t('2.bias', [d], 'bias')];
}

/** The H-LoRA adapters of one plugin: router, stacked A, B per linear, bf16. */
function adapters(name: 'comprehension' | 'generation', seed: number): Array<[string, TorchValue]> {
  const s = SYNTHETIC_RELEASE.llm;
  const { rank: r, experts: n } = SYNTHETIC_RELEASE.plugins[name];
  const qkv = s.hidden + (2 * s.kvHeads * s.hidden) / s.heads;
  const linears: Array<[string, number, number]> = [
    ['self_attn.qkv_proj', s.hidden, qkv],
    ['self_attn.o_proj', s.hidden, s.hidden],
    ['mlp.gate_up_proj', s.hidden, 2 * s.ffn],
    ['mlp.down_proj', s.ffn, s.hidden],
  ];
  const out: Array<[string, TorchValue]> = [];
  for (let i = 0; i < s.layers; i++)
    for (const [lin, din, dout] of linears) {
      const base = `${PEFT}model.layers.${i}.${lin}`;
      const key = `${name}.${base}`;
      // magnitudes as lib/synthetic/hlora.ts: router 2/sqrt(in), A 1/sqrt(in), B 0.15/sqrt(r)
      out.push([`${base}.lora_route.weight`, new TorchTensor([n, din], weight(`${key}.route`, [n, din], seed, 'matrix', 2), 'bf16')]);
      out.push([`${base}.lora_A.weight`, new TorchTensor([r, din], weight(`${key}.A`, [r, din], seed, 'matrix'), 'bf16')]);
      out.push([`${base}.lora_B.weight`, new TorchTensor([dout, r], randomNormal(dout * r, seedOf(`${key}.B`, seed), 0.15 / Math.sqrt(r)), 'bf16')]);
    }
  return out;
}

async function writeVqgan(dir: string, seed: number): Promise<void> {
  const h = SYNTHETIC_RELEASE.vqgan;
  await mkdir(dir, { recursive: true });
  const sd: Array<[string, TorchValue]> = [];
  for (const [name, shape] of vqganDecoderShapes(h)) {
    const kind = shape.length > 1 ? (name.startsWith('quantize.') ? 'embed' : 'matrix') : /norm/.test(name) ? (name.endsWith('.weight') ? 'norm' : 'bias') : 'bias';
    sd.push([name, new TorchTensor(shape, weight(name, shape, seed, kind))]);
  }
  // the training loss the released checkpoint carries (skipped by the converter)
  sd.push(['loss.discriminator.main.0.weight', new TorchTensor([8, 3, 4, 4], weight('loss.d', [8, 3, 4, 4], seed))]);
  sd.push(['loss.discriminator.main.0.bias', new TorchTensor([8], weight('loss.b', [8], seed, 'bias'))]);
  await writeTorchSave(
    join(dir, 'last.ckpt'),
    new TorchDict([
      ['epoch', 0],
      ['global_step', 0],
      ['pytorch-lightning_version', '1.0.8'],
      ['state_dict', new TorchDict(sd, true)],
    ]),
  );
  // HealthGPT's taming_transformers/ckpt/model.yaml line for line (block sequences, the unused
  // temperature schedule, the blank line), with this model's numbers
  const list = (v: readonly number[]): string => v.map((x) => `\n      - ${x}`).join('');
  await writeFile(
    join(dir, 'model.yaml'),
    `model:
  base_learning_rate: 4.5e-06
  target: taming.models.vqgan.GumbelVQ
  params:
    kl_weight: 1.0e-08
    embed_dim: ${h.embed_dim}
    n_embed: ${h.n_embed}
    monitor: val/rec_loss
    temperature_scheduler_config:
      target: taming.lr_scheduler.LambdaWarmUpCosineScheduler
      params:
        warm_up_steps: 0
        max_decay_steps: 1000001
        lr_start: 0.9
        lr_max: 0.9
        lr_min: 1.0e-06
    ddconfig:
      double_z: false
      z_channels: ${h.z_channels}
      resolution: ${h.resolution}
      in_channels: ${h.in_channels}
      out_ch: ${h.out_ch}
      ch: ${h.ch}
      ch_mult:${list(h.ch_mult)}
      num_res_blocks: ${h.num_res_blocks}
      attn_resolutions:${list(h.attn_resolutions)}
      dropout: 0.0

    lossconfig:
      target: taming.modules.losses.vqperceptual.DummyLoss
`,
  );
}

/**
 * Writes the synthetic release into `dir` and returns the options that convert it
 * (convertHealthGPT(outDir, options)).
 */
export async function writeSyntheticRelease(dir: string, seed = 2024): Promise<ConvertHealthGPTOptions> {
  await mkdir(dir, { recursive: true });
  await writeLlm(join(dir, 'llm'), seed);
  await writeClip(join(dir, 'clip'), seed);
  for (const [file, name, tag] of [
    ['com_hlora_weights.bin', 'comprehension', 'com'],
    ['gen_hlora_weights.bin', 'generation', 'gen'],
  ] as const)
    await writeTorchSave(join(dir, file), new TorchDict([...adapters(name, seed), ...projector(tag, seed)], true));
  const s = SYNTHETIC_RELEASE.llm;
  const rowsOf = (which: 'embed' | 'head'): TorchTensor => new TorchTensor([SYNTHETIC_RELEASE_ROWS, s.hidden], resizedRows(which, 'fusion', seed), 'bf16');
  await writeTorchSave(
    join(dir, 'fusion_layer_weights.bin'),
    new TorchDict(
      [
        [`${PEFT}model.embed_tokens.weight`, rowsOf('embed')],
        [`${PEFT}lm_head.weight`, rowsOf('head')],
      ],
      true,
    ),
  );
  await writeVqgan(join(dir, 'vqgan'), seed);
  return syntheticReleaseOptions(dir);
}

/** The options that convert a synthetic release written into `dir` (convertHealthGPT(outDir, options)). */
export function syntheticReleaseOptions(dir: string): ConvertHealthGPTOptions {
  return {
    llm: join(dir, 'llm'),
    vision: join(dir, 'clip'),
    plugins: ['com_hlora_weights.bin', 'gen_hlora_weights.bin', 'fusion_layer_weights.bin'].map((f) => join(dir, f)),
    vqgan: join(dir, 'vqgan', 'last.ckpt'),
    pluginSpecs: { ...SYNTHETIC_RELEASE.plugins },
    // the image tokens, one <idx_k> per entry of the VQGAN's codebook (read from vqgan/model.yaml)
    healthgptTokens: true,
  };
}
