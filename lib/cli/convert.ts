/**
 * `healthgpt convert --llm DIR -o OUT.gguf [--type f16]`: a Hugging Face Phi-3 / Phi-4 folder to a
 * llama.cpp-compatible phi3 GGUF. With --vision, --plugins or --vqgan, -o names a folder that
 * receives every part and a manifest (lib/convert/healthgpt.ts).
 */
import { Command } from 'commander';
import { interruptSignal } from './interrupt.js';
import { INT_MAX, intArg, threadsArg } from './arg-parsers.js';
import { HealthGPTError } from '../errors.js';
import { convertHealthGPT, MANIFEST_NAME, type PluginSpec } from '../convert/healthgpt.js';
import { convertLanguageModel } from '../convert/llm.js';
import { QUANTIZE_TARGETS } from '../quantize/plan.js';
import { parseTarget } from '../quantize/quantize.js';
import { formatBytes } from './format.js';
import { Progress } from './progress.js';

interface ConvertOpts {
  llm?: string;
  vision?: string;
  plugins?: string;
  vqgan?: string;
  vqganConfig?: string;
  vqganResolution?: number;
  pluginSpec: string[];
  pluginFirstRow?: number;
  output?: string;
  type: string;
  name?: string;
  healthgptTokens?: boolean;
  embeddings?: string;
  threads: number;
  verbose?: boolean;
}

export function convertCommand(): Command {
  return new Command('convert')
    .description('convert released checkpoints (safetensors, PyTorch .bin/.pt/.ckpt) to GGUF')
    .option('--llm <dir>', 'Hugging Face Phi3ForCausalLM folder (config.json, weights, tokenizer files)')
    .option('--vision <dir>', 'CLIP vision tower folder (config.json, preprocessor_config.json, weights)')
    .option('--plugins <files>', 'HealthGPT plugin files, comma-separated: com_hlora_weights.bin,gen_hlora_weights.bin,fusion_layer_weights.bin (or name=path)')
    .option(
      '--plugin-spec <name:rank:alpha:experts>',
      'H-LoRA sizes of a plugin (default comprehension:64:128:4, generation:256:512:4); repeatable',
      (v: string, acc: string[]) => [...acc, v],
      [] as string[],
    )
    .option('--plugin-first-row <n>', 'first trained row of the embeddings / head the plugin files carry', intArg(0, INT_MAX))
    .option('--vqgan <file>', 'taming VQGAN Lightning checkpoint (last.ckpt)')
    .option('--vqgan-config <file>', 'its model.yaml (default: beside the checkpoint; without one the hyper-parameters are inferred from the shapes)')
    .option('--vqgan-resolution <px>', 'image size for inferred VQGAN hyper-parameters (default 256)', intArg(16, 65536))
    .option('-o, --output <path>', 'GGUF to write (--llm alone), else the folder to write every part and healthgpt.json into')
    .option('--type <type>', `weights type: ${QUANTIZE_TARGETS.join(' | ')}`, 'f16')
    .option('--name <text>', 'general.name to record (default: the folder name)')
    .option(
      '--healthgpt-tokens',
      "append HealthGPT's image tokens to the vocabulary: one <idx_k> per code of the --vqgan converted alongside, else 8192; without a fusion file the embeddings and head are resized for them as HealthGPT's utils.py does",
    )
    .option(
      '--embeddings <rows>',
      "language model rows with --plugins: fusion (the fusion file's trained rows, as app.py / gen_infer.py; default) or base (the base model's, the 8195 new rows = their mean, as com_infer.py)",
    )
    .option('--threads <n>', 'quantization threads (default: one per core)', threadsArg, 0)
    .option('-v, --verbose', "print each tensor's type")
    .action(async (o: ConvertOpts) => {
      const several = o.vision !== undefined || o.plugins !== undefined || o.vqgan !== undefined;
      if (!o.llm && !several) throw new HealthGPTError('ERR_INVALID_ARG', 'convert needs --llm <dir> (and/or --vision, --plugins, --vqgan)');
      if (!o.output) throw new HealthGPTError('ERR_INVALID_ARG', several ? 'convert needs -o <folder>' : 'convert needs -o <output.gguf>');
      const type = parseTarget(o.type);
      if (o.embeddings !== undefined && o.embeddings !== 'fusion' && o.embeddings !== 'base') throw new HealthGPTError('ERR_INVALID_ARG', `--embeddings must be fusion or base, got '${o.embeddings}'`);
      if (several) return convertAll(o, type);
      let progress: Progress | undefined;
      // Ctrl-C stops between two slices of work, so the partial file is removed, not left behind
      const stop = interruptSignal('convert interrupted');
      const r = await convertLanguageModel(o.llm!, o.output, {
        type,
        signal: stop.signal,
        threads: o.threads,
        name: o.name,
        healthgptTokens: o.healthgptTokens,
        onTensor: (e, done, total) => {
          progress ??= new Progress(`convert ${type}`, total);
          progress.tick(1, e.name);
          if (o.verbose) process.stderr.write(`${e.name} [${e.shape.join(', ')}] ${e.from} -> ${e.to}${e.note ? ` (${e.note})` : ''}\n`);
          if (done === total) progress.finish();
        },
      }).finally(() => stop.release());
      process.stdout.write(`wrote ${r.output}: ${r.plan.length} tensors, vocabulary ${r.vocabSize}, ${formatBytes(r.bytesWritten)} of tensor data in ${r.seconds.toFixed(1)} s\n`);
    });
}

function parsePluginSpecs(list: string[]): Record<string, PluginSpec> {
  const out: Record<string, PluginSpec> = {};
  for (const v of list) {
    const m = /^([a-z][a-z0-9_-]*):(\d+):([0-9.eE+-]+):(\d+)$/i.exec(v);
    if (!m) throw new HealthGPTError('ERR_INVALID_ARG', `--plugin-spec must be name:rank:alpha:experts, got '${v}'`);
    out[m[1]!.toLowerCase()] = { rank: Number(m[2]), alpha: Number(m[3]), experts: Number(m[4]) };
  }
  return out;
}

async function convertAll(o: ConvertOpts, type: ReturnType<typeof parseTarget>): Promise<void> {
  const stop = interruptSignal('convert interrupted');
  let progress: Progress | undefined;
  let part = '';
  try {
    const m = await convertHealthGPT(o.output!, {
      llm: o.llm,
      vision: o.vision,
      plugins: o.plugins
        ?.split(',')
        .map((s) => s.trim())
        .filter((s) => s !== ''),
      vqgan: o.vqgan,
      vqganConfig: o.vqganConfig,
      vqganResolution: o.vqganResolution,
      type,
      healthgptTokens: o.healthgptTokens,
      embeddings: o.embeddings as 'fusion' | 'base' | undefined,
      pluginFirstRow: o.pluginFirstRow,
      pluginSpecs: parsePluginSpecs(o.pluginSpec),
      threads: o.threads,
      signal: stop.signal,
      onTensor: (p, name, _done, total) => {
        if (p !== part) {
          progress?.finish();
          part = p;
          progress = new Progress(`convert ${p}`, total);
        }
        progress!.tick(1, name);
        if (o.verbose) process.stderr.write(`${p}: ${name}\n`);
      },
    });
    progress?.finish();
    for (const f of m.files) process.stdout.write(`wrote ${f.file} (${f.role}${f.plugin ? ` ${f.plugin}` : ''}): ${formatBytes(f.bytes)}\n`);
    for (const n of m.notes) process.stdout.write(`  ${n}\n`);
    process.stdout.write(`manifest: ${MANIFEST_NAME}\n`);
  } finally {
    stop.release();
  }
}
