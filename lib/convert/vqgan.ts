/**
 * `healthgpt convert --vqgan last.ckpt`: taming-transformers' GumbelVQ Lightning checkpoint (and
 * the model.yaml beside it) to the engine's vqgan GGUF (native/models/vqgan.h): the state dict's
 * keys verbatim, hyper-parameters from model.yaml's model.params (ddconfig, embed_dim, n_embed;
 * read with the `yaml` package, so block, flow and the release's own layout all parse),
 * or, without a model.yaml, inferred from the shapes for a given resolution (default 256).
 *
 * Which checkpoint tensors are kept, by an explicit rule on the key's first component:
 *   kept     encoder.*, decoder.*, quant_conv.*, post_quant_conv.*, quantize.*
 *   skipped  loss.* (the training loss: LPIPS network and discriminator; not the model)
 *   anything else is an error naming it (a key this converter does not know is never dropped
 *   silently). The decoder tensors the hyper-parameters imply must all be present with their
 *   shapes (missing ones are named); the encoder is optional (the loader decodes without it).
 * Weights of 2 or more dimensions are written f16 (or f32 with type 'f32'), 1-D ones f32: the
 * loader takes f32 or f16 only, so q8_0/q4_* requests fall back to f16 here.
 */
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { GGMLType } from '../gguf/constants.js';
import { GGUFWriter } from '../gguf/writer.js';
import { abortError } from '../model/model.js';
import { native } from '../native.js';
import { openTorchCheckpoint } from './torch.js';
import { convertFail, numel, type LazyTensor } from './tensor.js';
import { parseDocument } from 'yaml';

export interface VqganHparams {
  ch: number;
  num_res_blocks: number;
  z_channels: number;
  resolution: number;
  in_channels: number;
  out_ch: number;
  embed_dim: number;
  n_embed: number;
  ch_mult: number[];
  attn_resolutions: number[];
}

export interface ConvertVqganOptions {
  /** model.yaml (default: model.yaml beside the checkpoint, else ../configs/model.yaml) */
  config?: string;
  /** without a model.yaml: the image size the hyper-parameters are inferred for (default 256) */
  resolution?: number;
  /** 'f32' keeps f32 weights; anything else writes f16 */
  type?: string;
  onTensor?: (name: string, done: number, total: number) => void;
  signal?: AbortSignal;
}

export const VQGAN_KEPT_PREFIXES = ['encoder.', 'decoder.', 'quant_conv.', 'post_quant_conv.', 'quantize.'];
export const VQGAN_SKIPPED_PREFIXES = ['loss.'];

const INT_KEYS = ['ch', 'num_res_blocks', 'z_channels', 'resolution', 'in_channels', 'out_ch'] as const;

function positiveInt(v: unknown, what: string): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v <= 0) convertFail(`${what} must be a positive integer, got ${JSON.stringify(v)}`);
  return v as number;
}

function intList(v: unknown, what: string, allowEmpty: boolean): number[] {
  if (!Array.isArray(v) || (!allowEmpty && v.length === 0)) convertFail(`${what} must be a list of integers, got ${JSON.stringify(v)}`);
  return (v as unknown[]).map((x, i) => positiveInt(x, `${what}[${i}]`));
}

type YamlMap = Record<string, unknown>;
const isMap = (v: unknown): v is YamlMap => typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * A YAML file as plain values (YAML 1.2 core schema). Syntax errors, duplicate keys and alias
 * bombs are refused with the file, line and column; nothing in the file is executed (no tags
 * beyond the core schema's).
 */
export function parseModelYaml(text: string, file: string): unknown {
  const doc = parseDocument(text, { uniqueKeys: true, prettyErrors: true, schema: 'core' });
  const err = doc.errors[0];
  if (err) convertFail(`${file}: ${err.message.split('\n')[0]}`);
  try {
    return doc.toJS({ maxAliasCount: 100 });
  } catch (e) {
    return convertFail(`${file}: ${(e as Error).message}`);
  }
}

/** model.yaml's hyper-parameters, checked. */
export function readVqganConfig(text: string, file: string): VqganHparams {
  const y = parseModelYaml(text, file);
  const model = isMap(y) ? y.model : undefined;
  if (!isMap(model)) return convertFail(`${file}: no 'model' mapping (not a taming-transformers config)`);
  // the engine decodes taming's GumbelVQ (its codebook is quantize.embed); other targets have other tensors
  if (model.target !== undefined && !(typeof model.target === 'string' && /(^|\.)GumbelVQ$/.test(model.target)))
    convertFail(`${file}: model.target is ${JSON.stringify(model.target)}, not taming's GumbelVQ (taming.models.vqgan.GumbelVQ)`);
  const params = model.params;
  if (!isMap(params)) return convertFail(`${file}: no model.params mapping`);
  const dd = params.ddconfig;
  if (!isMap(dd)) return convertFail(`${file}: no model.params.ddconfig mapping`);
  const h = {} as VqganHparams;
  for (const k of INT_KEYS) h[k] = positiveInt(dd[k], `${file}: model.params.ddconfig.${k}`);
  h.embed_dim = positiveInt(params.embed_dim, `${file}: model.params.embed_dim`);
  h.n_embed = positiveInt(params.n_embed, `${file}: model.params.n_embed`);
  h.ch_mult = intList(dd.ch_mult, `${file}: model.params.ddconfig.ch_mult`, false);
  h.attn_resolutions = intList(dd.attn_resolutions ?? [], `${file}: model.params.ddconfig.attn_resolutions`, true);
  if (dd.double_z === true) convertFail(`${file}: model.params.ddconfig.double_z true is not a VQGAN decoder config`);
  return h;
}

/** The decoder-side tensors the hyper-parameters imply, with their torch shapes. */
export function vqganDecoderShapes(h: VqganHparams): Map<string, number[]> {
  const s = new Map<string, number[]>();
  const conv = (name: string, cout: number, cin: number, k: number): void => {
    s.set(`${name}.weight`, [cout, cin, k, k]);
    s.set(`${name}.bias`, [cout]);
  };
  const norm = (name: string, c: number): void => {
    s.set(`${name}.weight`, [c]);
    s.set(`${name}.bias`, [c]);
  };
  const res = (name: string, cin: number, cout: number): void => {
    norm(`${name}.norm1`, cin);
    conv(`${name}.conv1`, cout, cin, 3);
    norm(`${name}.norm2`, cout);
    conv(`${name}.conv2`, cout, cout, 3);
    if (cin !== cout) conv(`${name}.nin_shortcut`, cout, cin, 1);
  };
  const attn = (name: string, c: number): void => {
    norm(`${name}.norm`, c);
    for (const p of ['q', 'k', 'v', 'proj_out']) conv(`${name}.${p}`, c, c, 1);
  };
  s.set('quantize.embed.weight', [h.n_embed, h.embed_dim]);
  conv('post_quant_conv', h.z_channels, h.embed_dim, 1);
  const L = h.ch_mult.length;
  let cin = h.ch * h.ch_mult[L - 1]!;
  let res_ = h.resolution / 2 ** (L - 1);
  conv('decoder.conv_in', cin, h.z_channels, 3);
  res('decoder.mid.block_1', cin, cin);
  attn('decoder.mid.attn_1', cin);
  res('decoder.mid.block_2', cin, cin);
  for (let i = L - 1; i >= 0; i--) {
    const cout = h.ch * h.ch_mult[i]!;
    for (let j = 0; j <= h.num_res_blocks; j++) {
      res(`decoder.up.${i}.block.${j}`, cin, cout);
      cin = cout;
      if (h.attn_resolutions.includes(res_)) attn(`decoder.up.${i}.attn.${j}`, cin);
    }
    if (i !== 0) {
      conv(`decoder.up.${i}.upsample.conv`, cin, cin, 3);
      res_ *= 2;
    }
  }
  norm('decoder.norm_out', cin);
  conv('decoder.conv_out', h.out_ch, cin, 3);
  return s;
}

function configPath(ckpt: string, given?: string): string | undefined {
  if (given) return given;
  for (const p of [join(dirname(ckpt), 'model.yaml'), join(dirname(ckpt), '..', 'configs', 'model.yaml')]) if (existsSync(p)) return p;
  return undefined;
}

/**
 * Hyper-parameters from the tensors' shapes, when no model.yaml is at hand. Convolutions do not
 * fix the image size, so `resolution` is an input (HealthGPT's VQGAN: 256); ch is read from the
 * encoder's conv_in when present, else taken as the first level's width (ch_mult[0] = 1, as in
 * every taming config).
 */
export function inferVqganHparams(tensors: readonly LazyTensor[], resolution: number, what: string): VqganHparams {
  if (!Number.isSafeInteger(resolution) || resolution <= 0) convertFail(`${what}: resolution must be a positive integer, got ${resolution}`);
  const by = new Map(tensors.map((t) => [t.name, t.shape]));
  const need = (name: string): readonly number[] => by.get(name) ?? convertFail(`${what}: no model.yaml, and '${name}' (needed to infer the hyper-parameters) is missing`);
  const [nEmbed, embedDim] = need('quantize.embed.weight');
  const z = need('post_quant_conv.weight')[0]!;
  const [outCh, lastWidth] = need('decoder.conv_out.weight');
  let L = 0;
  while (by.has(`decoder.up.${L}.block.0.conv1.weight`)) L++;
  if (L === 0) convertFail(`${what}: no decoder.up.0.block.0.conv1.weight to infer the levels from`);
  let blocks = 0;
  while (by.has(`decoder.up.0.block.${blocks}.conv1.weight`)) blocks++;
  const widths = Array.from({ length: L }, (_, i) => need(`decoder.up.${i}.block.0.conv1.weight`)[0]!);
  const ch = by.get('encoder.conv_in.weight')?.[0] ?? widths[0]!;
  if (widths.some((w) => w % ch)) convertFail(`${what}: level widths ${widths.join(', ')} are not multiples of ch ${ch}`);
  if (lastWidth !== widths[0]) convertFail(`${what}: decoder.conv_out takes ${lastWidth} channels, level 0 is ${widths[0]} wide`);
  const attn: number[] = [];
  for (let i = 0; i < L; i++) if (by.has(`decoder.up.${i}.attn.0.q.weight`)) attn.push(resolution / 2 ** i);
  return {
    ch,
    num_res_blocks: blocks - 1,
    z_channels: z,
    resolution,
    in_channels: by.get('encoder.conv_in.weight')?.[1] ?? 3,
    out_ch: outCh!,
    embed_dim: embedDim!,
    n_embed: nEmbed!,
    ch_mult: widths.map((w) => w / ch),
    attn_resolutions: attn.sort((a, b) => b - a),
  };
}

/** Encodes float32 values as f32 or f16 GGUF tensor bytes. */
export function encodeFloat(values: Float32Array, type: 'f32' | 'f16' | 'bf16'): Uint8Array {
  if (type === 'f32') return new Uint8Array(values.buffer, values.byteOffset, values.byteLength);
  return native().quantizeRow(type === 'f16' ? GGMLType.F16 : GGMLType.BF16, values);
}

export interface ConvertVqganResult {
  output: string;
  hparams: VqganHparams;
  tensors: number;
  skipped: string[];
  /** true when no model.yaml was found and the hyper-parameters come from the shapes */
  inferred: boolean;
}

/**
 * The codebook size (n_embed) of a VQGAN checkpoint: model.yaml's when there is one (as
 * convertVqgan finds it), else the rows of quantize.embed.weight. Reads no tensor data.
 */
export async function vqganCodebookSize(ckptPath: string, config?: string): Promise<number> {
  const found = configPath(ckptPath, config);
  if (found) {
    let text: string;
    try {
      text = await readFile(found, 'utf8');
    } catch (err) {
      return convertFail(`${found}: ${(err as Error).message}`);
    }
    return readVqganConfig(text, found).n_embed;
  }
  const ckpt = await openTorchCheckpoint(ckptPath);
  try {
    const t = ckpt.tensors.find((x) => x.name === 'quantize.embed.weight');
    if (t?.shape.length !== 2) return convertFail(`${ckptPath}: no quantize.embed.weight [n_embed, embed_dim]: cannot tell the codebook size`);
    return t.shape[0]!;
  } finally {
    await ckpt.close();
  }
}

export async function convertVqgan(ckptPath: string, output: string, opts: ConvertVqganOptions = {}): Promise<ConvertVqganResult> {
  const found = configPath(ckptPath, opts.config);
  let h: VqganHparams | undefined;
  if (found) {
    let text: string;
    try {
      text = await readFile(found, 'utf8');
    } catch (err) {
      return convertFail(`${found}: ${(err as Error).message}`);
    }
    h = readVqganConfig(text, found);
  }
  const cfgPath = found ?? 'the shapes (no model.yaml)';
  const ckpt = await openTorchCheckpoint(ckptPath);
  try {
    h ??= inferVqganHparams(ckpt.tensors, opts.resolution ?? 256, ckptPath);
    const kept: LazyTensor[] = [];
    const skipped: string[] = [];
    const unknown: string[] = [];
    for (const t of ckpt.tensors) {
      if (VQGAN_SKIPPED_PREFIXES.some((p) => t.name.startsWith(p))) skipped.push(t.name);
      else if (VQGAN_KEPT_PREFIXES.some((p) => t.name.startsWith(p))) kept.push(t);
      else unknown.push(t.name);
    }
    if (unknown.length) convertFail(`${ckptPath}: ${unknown.length} state_dict key(s) that are not VQGAN weights: ${unknown.slice(0, 12).join(', ')}`);
    const byName = new Map(kept.map((t) => [t.name, t]));
    const expected = vqganDecoderShapes(h);
    const missing = [...expected.keys()].filter((k) => !byName.has(k));
    if (missing.length) convertFail(`${ckptPath}: ${missing.length} decoder tensor(s) missing (for ${cfgPath}'s hyper-parameters): ${missing.slice(0, 12).join(', ')}`);
    for (const [k, shape] of expected) {
      const t = byName.get(k)!;
      if (t.shape.length !== shape.length || t.shape.some((d, i) => d !== shape[i]))
        convertFail(`${ckptPath}: tensor '${k}' has shape [${t.shape.join(', ')}], ${cfgPath} implies [${shape.join(', ')}]`);
    }
    for (const t of kept) {
      if (t.name.length >= 64) convertFail(`${ckptPath}: tensor name '${t.name}' is ${t.name.length} bytes, over GGUF's 63`);
      if (!['F32', 'F16', 'BF16'].includes(t.dtype)) convertFail(`${ckptPath}: tensor '${t.name}' is ${t.dtype}, not a float type`);
    }
    const w = new GGUFWriter();
    w.addKV('general.architecture', 'vqgan');
    w.addKV('general.name', 'taming GumbelVQ');
    for (const k of [...INT_KEYS, 'embed_dim', 'n_embed'] as const) w.addKV(`vqgan.${k}`, h[k], 'u32');
    w.addKV('vqgan.ch_mult', { type: 'u32', value: Uint32Array.from(h.ch_mult) });
    w.addKV('vqgan.attn_resolutions', { type: 'u32', value: Uint32Array.from(h.attn_resolutions) });
    const big = opts.type === 'f32' ? 'f32' : 'f16';
    let done = 0;
    for (const t of kept) {
      const type = t.shape.length >= 2 ? big : 'f32';
      w.addTensor(t.name, [...t.shape].reverse(), type === 'f32' ? GGMLType.F32 : GGMLType.F16, async () => {
        if (opts.signal?.aborted) throw abortError(opts.signal);
        const v = await t.readF32();
        if (v.length !== numel(t.shape)) convertFail(`${ckptPath}: tensor '${t.name}': read ${v.length} values`);
        const bytes = encodeFloat(v, type);
        opts.onTensor?.(t.name, ++done, kept.length);
        return bytes;
      });
    }
    await w.write(output);
    return { output, hparams: h, tensors: kept.length, skipped, inferred: !found };
  } finally {
    await ckpt.close();
  }
}
