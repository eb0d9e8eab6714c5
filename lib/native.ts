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

/** A loaded language model (src/model_binding.cpp). */
export interface NativeModel {
  /** backend: "cpu", "cuda: <device> (...)", or "cpu (<why not cuda>)" after gpu 'auto' */
  info(): { nVocab: number; nEmbd: number; nCtx: number; backend: string };
  /** Forgets cached positions >= startPos, then runs the tokens from there. plugin: an id from loadPlugin, -1 (default) for the base alone; embd: nEmbd floats per token that is -1, in order */
  eval(tokens: Int32Array, startPos: number, allLogits: boolean, plugin?: number, embd?: Float32Array): Promise<Float32Array>;
  /** adapterType: a ggml type id (0 f32, 1 f16, 30 bf16, 8 q8_0) or -1 for the file's own */
  loadPlugin(path: string, options?: { adapterType?: number; fused?: boolean }): Promise<{ id: number; name: string }>;
  dispose(): void;
}

export interface NativeAddon {
  GGUFFile: new (path: string) => NativeGGUFFile;
  /** kvType: 0 (f32) or 1 (f16), the ggml type ids; gpu: 0 off, 1 auto, 2 cuda (hg_gpu) */
  Model: { load(path: string, options: { contextSize?: number; threads?: number; kvType?: number; repack?: number; gpu?: number; gpuLayers?: number }): Promise<NativeModel> };
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
