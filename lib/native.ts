/**
 * Loads the native addon: a prebuild for this platform first (prebuilds/<platform>-<arch>,
 * made by `npm run prebuild`), then the local build (build/Release, made by cmake-js at
 * install). HEALTHGPT_ADDON=path overrides both.
 */
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { HealthGPTError } from './errors.js';

export interface NativeTensorInfo {
  name: string;
  shape: Array<number | bigint>;
  typeId: number;
  type: string;
  offset: number | bigint;
  bytes: number | bigint;
}

export type NativeValue = number | bigint | boolean | string | Array<number | bigint | boolean | string>;

export interface NativeKV {
  key: string;
  type: string;
  itemType?: string;
  value: NativeValue;
}

export interface NativeGGUFInfo {
  version: number;
  alignment: number | bigint;
  dataOffset: number | bigint;
  fileSize: number | bigint;
  metadata: NativeKV[];
  tensors: NativeTensorInfo[];
}

export interface NativeGGUFFile {
  info(): NativeGGUFInfo;
  tensorData(index: number): Promise<Buffer>;
  convertTensor(index: number, dstType: number, threads?: number): Promise<Buffer>;
  close(): void;
}

export interface NativeTypeInfo {
  id: number;
  name: string;
  blockSize: number;
  blockBytes: number;
  supported: boolean;
}

/** One sequence's part of a batch (NativeModel.evalBatch; hg_batch_seq in native/include/healthgpt.h). */
export interface BatchSegment {
  /** the KV cache slot, 0 .. nSeq - 1, at most once per batch */
  seq: number;
  /** the slot's positions >= startPos are forgotten first; must be <= the slot's nPast */
  startPos: number;
  /** -1 takes the next row of embd */
  tokens: Int32Array;
  /** an id from loadPlugin; -1 (default) for the base alone */
  plugin?: number;
  /** nEmbd floats per token that is -1, in order */
  embd?: Float32Array;
  /** 0: none, 1: the last token's row, 2: every token's row */
  logits: 0 | 1 | 2;
  /**
   * Greedy in the engine (logits 1): next[0] gets the token of the last row's largest logit in
   * [lo, hi), the first of equal maxima, NaN never chosen, -1 when none is above -Infinity (a
   * range of one token is that token); the row is not returned. On a GPU the row stays there.
   */
  greedy?: { lo: number; hi: number; next: Int32Array };
}

/** A loaded language model (src/model_binding.cpp). */
export interface NativeModel {
  /** backend: "cpu", "cuda: <device> (...)", or "cpu (<why not cuda>)" after gpu 'auto'; nSeq: KV cache slots */
  info(): { nVocab: number; nEmbd: number; nCtx: number; nSeq: number; backend: string };
  /** Forgets cached positions >= startPos, then runs the tokens from there. plugin: an id from loadPlugin, -1 (default) for the base alone; embd: nEmbd floats per token that is -1, in order */
  eval(tokens: Int32Array, startPos: number, allLogits: boolean, plugin?: number, embd?: Float32Array): Promise<Float32Array>;
  /** Every segment in one pass over the weights (each on its own slot and plugin); the logits rows (nVocab floats each) of the segments that asked (greedy ones not), in segment order. Bit-identical to evaluating each alone. */
  evalBatch(segments: BatchSegment[]): Promise<Float32Array>;
  /** positions slot seq holds */
  seqNPast(seq: number): number;
  /** forgets slot seq's positions >= fromPos (applied before the next eval / evalBatch; never waits) */
  seqClear(seq: number, fromPos: number): void;
  /** adapterType: a ggml type id (0 f32, 1 f16, 30 bf16, 8 q8_0) or -1 for the file's own */
  loadPlugin(path: string, options?: { adapterType?: number; fused?: boolean }): Promise<{ id: number; name: string }>;
  dispose(): void;
}

/** hg_gpu: 0 off, 1 auto, 2 cuda */
export type NativeGpu = 0 | 1 | 2;

/**
 * Where an engine object runs (the `gpu` load option of LanguageModel, VisionTower and Vqgan):
 * 'auto' uses CUDA when the engine has it and the object can run there, else the CPU (its
 * info's `backend` says why); 'cuda' fails the load with the reason when CUDA cannot be used;
 * false (the default) keeps the CPU.
 */
export type GpuOption = 'auto' | 'cuda' | false;

/** Throws ERR_INVALID_ARG unless gpu is a GpuOption (or undefined). */
/** The most threads a model, CLIP tower or VQGAN runs on: the native pool refuses more. */
export const MAX_THREADS = 1024;

export function validateGpu(gpu: unknown): void {
  if (gpu !== undefined && gpu !== 'auto' && gpu !== 'cuda' && gpu !== false) throw new HealthGPTError('ERR_INVALID_ARG', `gpu must be "auto", "cuda" or false, got ${String(gpu)}`);
}

/** The hg_gpu id of a validated option. */
export function gpuId(gpu: GpuOption | undefined): NativeGpu {
  return gpu === 'auto' ? 1 : gpu === 'cuda' ? 2 : 0;
}

export interface NativeClipInfo {
  imageSize: number;
  patchSize: number;
  nEmbd: number;
  nPatches: number;
  /** layers the file holds */
  nLayer: number;
  /** hidden-state index of each tap (0: embeddings, i: after layer i of the original tower) */
  comprehensionLayer: number;
  generationLayer: number;
  /** output width of each projector (a plugin's after loadProjector); 0 when there is none */
  comprehensionProjectorDim: number;
  generationProjectorDim: number;
  /** where the tower runs: "cpu", or "cpu (<why not cuda>)" after gpu 'auto' */
  backend: string;
  imageMean: number[];
  imageStd: number[];
}

/** A loaded CLIP vision tower with its projectors (src/clip_binding.cpp). projector / tap: 0 comprehension, 1 generation. */
export interface NativeClip {
  info(): NativeClipInfo;
  /** hiddenState, when given, overrides the tap */
  encode(pixels: Float32Array, tap: number, hiddenState?: number): Promise<Float32Array>;
  /** the mlp2x_gelu (Linear, exact GELU, Linear) on rows of nEmbd floats */
  project(projector: number, features: Float32Array): Promise<Float32Array>;
  /** encode at the tap, then project, in one job: on a device the features never leave it */
  encodeProject(pixels: Float32Array, tap: number, projector: number): Promise<Float32Array>;
  /** replaces the projector with the one a plugin file carries; loaded false (nothing changed) when it has none; dim: the projector's output width after */
  loadProjector(projector: number, path: string): Promise<{ loaded: boolean; dim: number }>;
  dispose(): void;
}

export interface NativeVqganInfo {
  /** image side in pixels (256) */
  resolution: number;
  /** latent side (32): latent * latent indices per image */
  latent: number;
  /** codebook size (8192) */
  nEmbed: number;
  outChannels: number;
  inChannels: number;
  /** false for a decoder-only file: encode() throws ERR_NO_ENCODER */
  hasEncoder: boolean;
  /** where the VQGAN runs: "cpu", or "cpu (<why not cuda>)" after gpu 'auto' */
  backend: string;
}

/** A loaded VQGAN (src/vqgan_binding.cpp). */
export interface NativeVqgan {
  info(): NativeVqganInfo;
  /** latent^2 code indices -> the image as row-major RGB bytes and channel-major floats */
  decode(indices: Int32Array): Promise<{ rgb: Uint8Array; chw: Float32Array }>;
  encode(chw: Float32Array): Promise<Int32Array>;
  dispose(): void;
}

/**
 * The addon. The three engine objects share one shape: `X.load(path, options)` resolves with a
 * handle whose calls run off the JS thread, one at a time; `dispose()` makes a call in flight
 * reject and later calls throw ERR_DISPOSED, and frees the object off the JS thread.
 */
export interface NativeAddon {
  GGUFFile: new (path: string) => NativeGGUFFile;
  /** kvType: 0 (f32), 1 (f16) or 8 (q8_0), the ggml type ids; sequences: KV cache slots (default 1) */
  Model: { load(path: string, options: { contextSize?: number; threads?: number; kvType?: number; repack?: number; gpu?: NativeGpu; gpuLayers?: number; sequences?: number }): Promise<NativeModel> };
  /** gpu 2 (cuda) fails for now: CLIP has no CUDA implementation yet; 1 (auto) runs on the CPU */
  Clip: { load(path: string, options: { threads?: number; gpu?: NativeGpu }): Promise<NativeClip> };
  /** gpu as for Clip */
  Vqgan: { load(path: string, options: { threads?: number; gpu?: NativeGpu }): Promise<NativeVqgan> };
  types(): NativeTypeInfo[];
  cpu(): { features: string; best: string; active: string };
  setIsa(isa: 'scalar' | 'avx2' | 'avx512' | 'auto'): void;
  quantizeRow(type: number, values: Float32Array): Buffer;
  dequantizeRow(type: number, data: Uint8Array, n: number): Float32Array;
  matmul(type: number, w: Uint8Array, rows: number, k: number, x: Float32Array, n: number, threads?: number): Promise<Float32Array>;
  benchMatmul(type: number, rows: number, k: number, n: number, threads: number, iters: number): Promise<number[]>;
  readBandwidth(megabytes: number, reps: number, threads: number): Promise<number>;
}

/** Where the addon is looked for, in order: prebuilds first, then the local build. */
export function addonCandidates(root = join(__dirname, '..'), env = process.env): string[] {
  if (env.HEALTHGPT_ADDON) return [env.HEALTHGPT_ADDON];
  const out: string[] = [];
  const pre = join(root, 'prebuilds', `${process.platform}-${process.arch}`);
  if (existsSync(pre)) {
    for (const f of readdirSync(pre).sort()) if (f.endsWith('.node')) out.push(join(pre, f));
  }
  out.push(join(root, 'build', 'Release', 'healthgpt.node'));
  return out;
}

let addon: NativeAddon | undefined;

export function native(): NativeAddon {
  if (addon) return addon;
  const tried: string[] = [];
  for (const file of addonCandidates()) {
    if (!existsSync(file)) {
      tried.push(`${file} (missing)`);
      continue;
    }
    try {
      addon = require(file) as NativeAddon;
      return addon;
    } catch (err) {
      tried.push(`${file} (${(err as Error).message})`);
    }
  }
  throw new HealthGPTError('ERR_NO_ADDON', `the healthgpt native addon could not be loaded; run \`npm install\` (or \`npm run compile\`) to build it. Tried:\n  ${tried.join('\n  ')}`);
}
