/** Flags shared by `ask` and `generate`: the model files, threads and sampling. */
import { type Command, Option } from 'commander';
import { INT_MAX, intArg, threadsArg } from './arg-parsers.js';
import { HealthGPTError } from '../errors.js';
import type { ImageDecodeOptions } from '../image/index.js';
import type { GpuOption, KvType } from '../model/model.js';
import type { SamplingRequest } from '../session/healthgpt.js';

const num = (v: string) => Number(v);

export interface SessionFlags {
  model: string;
  vision?: string;
  threads?: number;
  context?: number;
  kvType?: KvType;
  gpu?: 'auto' | 'cuda' | 'off';
  gpuLayers?: number;
  window?: string;
  frame?: string;
  temperature?: number;
  topK?: number;
  topP?: number;
  minP?: number;
  repeatPenalty?: number;
  seed?: number;
  json?: boolean;
}

export function addSessionOptions(c: Command): Command {
  return c
    .requiredOption('-m, --model <name>', 'a folder from convert / pull (healthgpt.json names every part), m3 or l14 after pull, or a language model GGUF')
    .option('--vision <file>', "CLIP vision tower GGUF (mmproj layout); replaces the folder's")
    .addOption(new Option('--window <center,width>', 'VOI window for DICOM / 16-bit images, e.g. -600,1500'))
    .addOption(new Option('--frame <n>', 'frame of a multi-frame DICOM image (default 0)'))
    .addOption(new Option('--temperature <t>', '0: greedy (default)').argParser(num))
    .addOption(new Option('--top-k <k>', 'keep the k most likely tokens (0: all)').argParser(intArg(0, INT_MAX)))
    .addOption(new Option('--top-p <p>', 'nucleus sampling').argParser(num))
    .addOption(new Option('--min-p <p>', 'drop tokens below p x the top probability').argParser(num))
    .addOption(new Option('--repeat-penalty <r>', '1: off').argParser(num))
    .addOption(new Option('--seed <s>', 'PRNG seed').argParser(num))
    .addOption(new Option('--threads <n>', 'threads (default: one per core)').argParser(threadsArg))
    .addOption(new Option('--context <n>', "context size (default: the model's)").argParser(intArg(0, INT_MAX)))
    .addOption(new Option('--kv-type <type>', 'KV cache precision (default f16; q8_0: half the memory)').choices(['f16', 'f32', 'q8_0']))
    .addOption(new Option('--gpu <mode>', 'where the language model, CLIP and the VQGAN run: off (default, the CPU), auto (CUDA when present and it fits), cuda').choices(['auto', 'cuda', 'off']))
    .addOption(new Option('--gpu-layers <n>', 'with a GPU: only the first n layers there, the rest on the CPU').argParser(intArg(0, INT_MAX)))
    .option('--json', 'print one JSON object at the end instead of streaming');
}

/** --gpu as LoadOptions.gpu. */
export function gpuOf(f: { gpu?: 'auto' | 'cuda' | 'off' }): GpuOption | undefined {
  return f.gpu === undefined ? undefined : f.gpu === 'off' ? false : f.gpu;
}

/** After gpu 'auto' fell back to the CPU in a CUDA build: one line on stderr saying why. */
export function reportBackend(backend: string, gpu: GpuOption | undefined): void {
  if (gpu === false || !backend.startsWith('cpu (') || backend.includes('built without the CUDA backend')) return;
  process.stderr.write(`healthgpt: running on the ${backend}\n`);
}

export function samplingOf(f: SessionFlags): SamplingRequest {
  const out: SamplingRequest = {};
  if (f.temperature !== undefined) out.temperature = f.temperature;
  if (f.topK !== undefined) out.topK = f.topK;
  if (f.topP !== undefined) out.topP = f.topP;
  if (f.minP !== undefined) out.minP = f.minP;
  if (f.repeatPenalty !== undefined) out.repeatPenalty = f.repeatPenalty;
  if (f.seed !== undefined) out.seed = f.seed;
  return out;
}

export function imageOptionsOf(f: SessionFlags): ImageDecodeOptions | undefined {
  if (f.window === undefined && f.frame === undefined) return undefined;
  const out: ImageDecodeOptions = {};
  if (f.window !== undefined) {
    const parts = f.window.split(',').map(Number);
    if (parts.length !== 2 || !parts.every(Number.isFinite) || parts[1]! <= 0)
      throw new HealthGPTError('ERR_INVALID_ARG', `--window must be "center,width" with a positive width, got ${JSON.stringify(f.window)}`);
    out.window = { center: parts[0]!, width: parts[1]! };
  }
  if (f.frame !== undefined) {
    if (!/^\d+$/.test(f.frame)) throw new HealthGPTError('ERR_INVALID_ARG', `--frame must be a non-negative integer, got ${JSON.stringify(f.frame)}`);
    out.frame = Number(f.frame);
  }
  return out;
}
