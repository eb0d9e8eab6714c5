/**
 * `healthgpt convert --llm DIR -o OUT.gguf [--type f16]`: a Hugging Face Phi-3 / Phi-4 folder to a
 * llama.cpp-compatible phi3 GGUF. The vision tower, the H-LoRA plugins and the VQGAN come next:
 * their flags are listed but refused until then.
 */
import { Command } from 'commander';
import { HealthGPTError } from '../errors.js';
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
  output?: string;
  type: string;
  name?: string;
  healthgptTokens?: boolean;
  threads: number;
  verbose?: boolean;
}

export function convertCommand(): Command {
  return new Command('convert')
    .description('convert released checkpoints (safetensors, PyTorch .bin/.pt/.ckpt) to GGUF')
    .option('--llm <dir>', 'Hugging Face Phi3ForCausalLM folder (config.json, weights, tokenizer files)')
    .option('--vision <dir>', 'CLIP vision tower folder (not supported yet)')
    .option('--plugins <dir>', 'HealthGPT H-LoRA plugin files (not supported yet)')
    .option('--vqgan <file>', 'taming VQGAN last.ckpt (not supported yet)')
    .option('-o, --output <file>', 'GGUF to write')
    .option('--type <type>', `weights type: ${QUANTIZE_TARGETS.join(' | ')}`, 'f16')
    .option('--name <text>', 'general.name to record (default: the folder name)')
    .option('--healthgpt-tokens', "append HealthGPT's 8195 image tokens to the vocabulary (embeddings must be resized for them)")
    .option('--threads <n>', 'quantization threads (default: one per core)', (v) => parseInt(v, 10), 0)
    .option('-v, --verbose', "print each tensor's type")
    .action(async (o: ConvertOpts) => {
      for (const flag of ['vision', 'plugins', 'vqgan'] as const)
        if (o[flag] !== undefined) throw new HealthGPTError('ERR_NOT_SUPPORTED', `convert --${flag} is not supported yet (this version converts --llm only)`);
      if (!o.llm) throw new HealthGPTError('ERR_INVALID_ARG', 'convert needs --llm <dir>');
      if (!o.output) throw new HealthGPTError('ERR_INVALID_ARG', 'convert needs -o <output.gguf>');
      const type = parseTarget(o.type);
      if (!Number.isInteger(o.threads) || o.threads < 0) throw new HealthGPTError('ERR_INVALID_ARG', `--threads must be a non-negative integer, got ${o.threads}`);
      let progress: Progress | undefined;
      // Ctrl-C stops between two slices of work, so the partial file is removed, not left behind
      const ac = new AbortController();
      const interrupt = (): void => ac.abort(new Error('convert interrupted'));
      process.once('SIGINT', interrupt);
      const r = await convertLanguageModel(o.llm, o.output, {
        type,
        signal: ac.signal,
        threads: o.threads,
        name: o.name,
        healthgptTokens: o.healthgptTokens,
        onTensor: (e, done, total) => {
          progress ??= new Progress(`convert ${type}`, total);
          progress.tick(1, e.name);
          if (o.verbose) process.stderr.write(`${e.name} [${e.shape.join(', ')}] ${e.from} -> ${e.to}${e.note ? ` (${e.note})` : ''}\n`);
          if (done === total) progress.finish();
        },
      }).finally(() => process.off('SIGINT', interrupt));
      process.stdout.write(`wrote ${r.output}: ${r.plan.length} tensors, vocabulary ${r.vocabSize}, ${formatBytes(r.bytesWritten)} of tensor data in ${r.seconds.toFixed(1)} s\n`);
    });
}
