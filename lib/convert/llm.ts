/**
 * `healthgpt convert --llm DIR`: a Hugging Face Phi3ForCausalLM folder (config.json, weights in
 * safetensors or torch zips, tokenizer files) to a llama.cpp-compatible phi3 GGUF, in f32, f16,
 * bf16 or quantized. Everything is checked before a byte is written: the config, every tensor's
 * name (unknown and missing ones reported by name) and shape, the tokenizer. Then tensors stream
 * through one at a time (read, converted, written, dropped), so memory holds one tensor, never
 * the model; quantization runs on worker threads (quantize-pool.ts); the GGUF appears under its
 * name only when complete.
 */
import { existsSync, statSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { GGUFWriter } from '../gguf/writer.js';
import { ggmlType } from '../gguf/constants.js';
import { abortError } from '../model/model.js';
import { FILE_TYPE, planQuantization, type PlanEntry, type QuantizeTarget } from '../quantize/plan.js';
import { addBpeVocab, addSpmVocab } from '../tokenizer/vocab-gguf.js';
import { openCheckpoint } from './checkpoint.js';
import { QuantizePool } from './quantize-pool.js';
import { loadHfVocab } from './hf-tokenizer.js';
import { resizeWithMean } from './resize.js';
import { addPhi3Metadata, ignoredTensor, phi3ExpectedShapes, phi3HfName, phi3TensorName, readPhi3Config } from './phi3.js';
import { convertFail, numel, type LazyTensor } from './tensor.js';

export interface ConvertLlmOptions {
  /** output type (default f16, as llama.cpp's converter) */
  type?: QuantizeTarget;
  /** general.name (default: the folder's name) */
  name?: string;
  /**
   * append HealthGPT's 8195 image tokens to the vocabulary; without `resized` rows the
   * embeddings and head are resized for them as HealthGPT's utils.py does (resize.ts)
   */
  healthgptTokens?: boolean;
  /** with healthgptTokens: how many <idx_k> tokens (the VQGAN's codebook size; default 8192) */
  codebookSize?: number;
  /** called after each tensor is written */
  onTensor?: (entry: PlanEntry, done: number, total: number) => void;
  /** quantization worker threads (default: one per core) */
  threads?: number;
  /** stops the conversion between two slices of work (ABORT_ERR); nothing is left on disk */
  signal?: AbortSignal;
  /**
   * Resized embeddings / head that replace the folder's (HealthGPT's fusion file carries them as
   * trained, with the image tokens' rows): the vocabulary size becomes their row count.
   */
  resized?: { embed: LazyTensor; head: LazyTensor };
}

export interface ConvertResult {
  output: string;
  plan: PlanEntry[];
  vocabSize: number;
  /** how many rows were added as the mean of the others (utils.py's resize), if any */
  resizedWithMean?: number;
  bytesWritten: number;
  seconds: number;
}

const ELEMENT_TYPE: Record<string, string> = { F32: 'f32', F16: 'f16', BF16: 'bf16' };

function listNames(names: string[]): string {
  const shown = names.slice(0, 12).join(', ');
  return names.length > 12 ? `${shown} and ${names.length - 12} more` : shown;
}

/** Encodes float32 values as GGUF tensor bytes of type `to` (row length `row`). */
async function encode(values: Float32Array, to: string, row: number, pool: QuantizePool | undefined, signal?: AbortSignal): Promise<Uint8Array> {
  if (to === 'f32') return new Uint8Array(values.buffer, values.byteOffset, values.byteLength);
  return pool!.quantize(values, row, ggmlType(to)!, signal);
}

export async function convertLanguageModel(dir: string, output: string, opts: ConvertLlmOptions = {}): Promise<ConvertResult> {
  const started = Date.now();
  const target = opts.type ?? 'f16';
  const signal = opts.signal;
  if (signal !== undefined && !(signal instanceof AbortSignal)) convertFail('signal must be an AbortSignal');
  if (signal?.aborted) throw abortError(signal);
  const outDir = dirname(resolve(output));
  if (!existsSync(outDir) || !statSync(outDir).isDirectory()) convertFail(`output ${output}: folder ${outDir} does not exist`);
  if (existsSync(output) && statSync(output).isDirectory()) convertFail(`output ${output} is a folder`);
  const configPath = join(dir, 'config.json');
  let cfgJson: Record<string, unknown>;
  try {
    cfgJson = JSON.parse(await readFile(configPath, 'utf8')) as Record<string, unknown>;
  } catch (err) {
    return convertFail(`${configPath}: ${(err as Error).message}`);
  }
  if (!cfgJson || typeof cfgJson !== 'object') convertFail(`${configPath}: not a JSON object`);
  const h = readPhi3Config(cfgJson, configPath);
  const rs = opts.resized;
  if (rs) {
    for (const t of [rs.embed, rs.head])
      if (t.shape.length !== 2 || t.shape[1] !== h.hidden) convertFail(`resized '${t.name}' (${t.file}) has shape [${t.shape.join(', ')}], expected [rows, ${h.hidden}]`);
    if (rs.embed.shape[0] !== rs.head.shape[0]) convertFail(`resized embeddings (${rs.embed.shape[0]} rows, ${rs.embed.file}) and head (${rs.head.shape[0]} rows, ${rs.head.file}) differ`);
    h.vocabSize = rs.embed.shape[0]!;
  }
  const vocab = await loadHfVocab(dir, { vocabSize: h.vocabSize, healthgptTokens: opts.healthgptTokens, codebookSize: opts.codebookSize, resize: !rs });

  const ckpt = await openCheckpoint(dir);
  let pool: QuantizePool | undefined;
  try {
    // names: every checkpoint tensor must be a model tensor, and every model tensor present once
    const expected = phi3ExpectedShapes(h);
    const byGguf = new Map<string, LazyTensor>();
    const unknown: string[] = [];
    for (const t of ckpt.tensors) {
      if (ignoredTensor(t.name)) continue;
      const g = phi3TensorName(t.name);
      if (!g || !expected.has(g)) {
        unknown.push(t.name);
        continue;
      }
      if (byGguf.has(g)) convertFail(`tensor '${t.name}' appears twice (${byGguf.get(g)!.file} and ${t.file})`);
      byGguf.set(g, t);
    }
    if (unknown.length) convertFail(`${dir}: ${unknown.length} tensor(s) that are not Phi3ForCausalLM weights: ${listNames(unknown)}`);
    if (rs) {
      byGguf.set('token_embd.weight', rs.embed);
      byGguf.set('output.weight', rs.head);
    }
    if (!byGguf.has('output.weight') && h.tieEmbeddings && byGguf.has('token_embd.weight')) byGguf.set('output.weight', byGguf.get('token_embd.weight')!);
    const missing = [...expected.keys()].filter((g) => !byGguf.has(g));
    if (missing.length) convertFail(`${dir}: ${missing.length} tensor(s) missing: ${listNames(missing.map(phi3HfName))}`);
    for (const [g, shape] of expected) {
      const t = byGguf.get(g)!;
      if (t.shape.length !== shape.length || t.shape.some((d, i) => d !== shape[i]))
        convertFail(`tensor '${t.name}' (${t.file}) has shape [${t.shape.join(', ')}], config.json implies [${shape.join(', ')}]`);
      if (!ELEMENT_TYPE[t.dtype]) convertFail(`tensor '${t.name}' (${t.file}) is ${t.dtype}; weights must be F32, F16 or BF16`);
    }
    // HealthGPT's tokens added as utils.py adds them: embeddings and head resized with the mean
    if (vocab.resize) {
      const { rows, keep } = vocab.resize;
      for (const g of ['token_embd.weight', 'output.weight']) {
        byGguf.set(g, resizeWithMean(byGguf.get(g)!, keep, rows));
        expected.set(g, [rows, h.hidden]);
      }
      h.vocabSize = rows;
    }

    // types: llama.cpp's choices (1-D and small tensors f32, k-quant fallbacks by row length)
    const order = [...expected.keys()];
    const plan = planQuantization(
      order.map((g) => ({ name: g, shape: [...expected.get(g)!].reverse(), type: ELEMENT_TYPE[byGguf.get(g)!.dtype]! })),
      target,
      h.layers,
      { blockSize: (name) => ggmlType(name)!.blockSize },
      () => true,
    );
    // the addon quantizes, on worker threads: started (or failing) now, not mid-file
    if (plan.some((e) => e.to !== 'f32')) pool = new QuantizePool(opts.threads ?? 0);

    const w = new GGUFWriter();
    addPhi3Metadata(w, h, opts.name ?? basename(resolve(dir)), FILE_TYPE[target]);
    if (vocab.kind === 'spm') addSpmVocab(w, vocab.vocab);
    else addBpeVocab(w, vocab.vocab);
    if (vocab.chatTemplate) w.addKV('tokenizer.chat_template', vocab.chatTemplate);

    let done = 0;
    let bytesWritten = 0;
    plan.forEach((entry) => {
      const t = byGguf.get(entry.name)!;
      w.addTensor(entry.name, entry.shape, ggmlType(entry.to)!.id, async () => {
        if (signal?.aborted) throw abortError(signal);
        const values = await t.readF32();
        if (values.length !== numel(t.shape)) convertFail(`tensor '${t.name}': read ${values.length} values`);
        const data = await encode(values, entry.to, entry.shape[0]!, pool, signal);
        bytesWritten += data.byteLength;
        opts.onTensor?.(entry, ++done, plan.length);
        return data;
      });
    });
    await w.write(output);
    const resizedWithMean = vocab.resize ? vocab.resize.rows - vocab.resize.keep : undefined;
    return { output, plan, vocabSize: h.vocabSize, resizedWithMean, bytesWritten, seconds: (Date.now() - started) / 1000 };
  } finally {
    await pool?.close();
    await ckpt.close();
  }
}
