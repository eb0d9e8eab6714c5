/**
 * Quantizes a GGUF file into another: metadata copied (file type and quantization version
 * updated), each tensor converted by the native engine off the JS thread, one at a time, and
 * streamed to disk, so memory holds one tensor, never the model.
 */
import { stat } from 'node:fs/promises';
import { HealthGPTError } from '../errors.js';
import { GGUFFile } from '../gguf/file.js';
import { ggmlType, type GGUFType } from '../gguf/constants.js';
import { GGUFWriter, type GGUFWriterValue } from '../gguf/writer.js';
import { native } from '../native.js';
import { FILE_TYPE, planQuantization, QUANTIZE_TARGETS, type PlanEntry, type QuantizeTarget } from './plan.js';

export interface QuantizeOptions {
  threads?: number;
  /** called after each tensor with its plan entry, the number done and the total */
  onTensor?: (entry: PlanEntry, done: number, total: number) => void;
  /** stops between two tensors; the partial file is removed */
  signal?: AbortSignal;
}

export interface QuantizeResult {
  plan: PlanEntry[];
  inputBytes: number;
  outputBytes: number;
  seconds: number;
}

export function parseTarget(s: string): QuantizeTarget {
  const t = s.toLowerCase() as QuantizeTarget;
  if (!QUANTIZE_TARGETS.includes(t)) throw new HealthGPTError('ERR_INVALID_ARG', `unknown quantization type "${s}": expected one of ${QUANTIZE_TARGETS.join(', ')}`);
  return t;
}

export async function quantizeFile(input: string, output: string, target: QuantizeTarget, opts: QuantizeOptions = {}): Promise<QuantizeResult> {
  const started = Date.now();
  if (await sameFile(input, output)) throw new HealthGPTError('ERR_INVALID_ARG', `the output ${output} is the input: write the quantized model to another file`);
  const src = GGUFFile.open(input);
  try {
    const info = src.info;
    const arch = info.metadata['general.architecture'];
    const blocks = typeof arch === 'string' ? info.metadata[`${arch}.block_count`] : undefined;
    const nLayers = typeof blocks === 'number' ? blocks : 0;
    const readable = new Set(
      native()
        .types()
        .filter((t) => t.supported)
        .map((t) => t.name),
    );
    const plan = planQuantization(info.tensors, target, nLayers, { blockSize: (name) => ggmlType(name)!.blockSize }, (name) => readable.has(name));

    const w = new GGUFWriter({ alignment: info.alignment });
    for (const [key, value] of Object.entries(info.metadata)) {
      if (key === 'general.alignment' || key === 'general.file_type' || key === 'general.quantization_version') continue;
      const t = info.types[key];
      if (t.type === 'array' && t.itemType === 'array') throw new HealthGPTError('ERR_UNSUPPORTED', `metadata ${key}: nested arrays are not copied`);
      w.addKV(key, value as GGUFWriterValue, (t.type === 'array' ? t.itemType : t.type) as GGUFType);
    }
    w.addKV('general.file_type', FILE_TYPE[target], 'u32');
    w.addKV('general.quantization_version', 2, 'u32');

    let done = 0;
    let outputBytes = 0;
    plan.forEach((entry, i) => {
      const to = ggmlType(entry.to)!;
      w.addTensor(entry.name, entry.shape, to.id, async () => {
        opts.signal?.throwIfAborted();
        const data = entry.to === entry.from ? await src.tensorData(i) : await src.convertTensor(i, to.id, opts.threads ?? 0);
        outputBytes += data.byteLength;
        opts.onTensor?.(entry, ++done, plan.length);
        return data;
      });
    });
    await w.write(output);
    return { plan, inputBytes: info.fileSize, outputBytes, seconds: (Date.now() - started) / 1000 };
  } finally {
    src.close();
  }
}

/** Whether two paths name one existing file (through links, or another spelling of the path). */
async function sameFile(a: string, b: string): Promise<boolean> {
  try {
    const [x, y] = await Promise.all([stat(a), stat(b)]);
    return x.dev === y.dev && x.ino === y.ino;
  } catch {
    return false; // the output does not exist yet (or the input does not: opening it says so)
  }
}
