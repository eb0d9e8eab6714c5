/**
 * `healthgpt eval --model M --tokens 1,2,3 [--top 5] --json`: next-token probabilities after
 * each position, and the mean negative log-likelihood of tokens[1..] with its perplexity.
 */
import { Command, Option } from 'commander';
import { INT_MAX, intArg, threadsArg } from './arg-parsers.js';
import { readFileSync } from 'node:fs';
import { HealthGPTError } from '../errors.js';
import { LanguageModel } from '../model/model.js';
import { softmax } from '../model/sampler.js';
import { toJson } from './format.js';
import { gpuOf, reportBackend } from './session-flags.js';

export interface EvalResult {
  nll: number;
  ppl: number;
  top: Array<Array<[number, number]>>;
}

export async function evalTokens(model: LanguageModel, tokens: number[], top: number): Promise<EvalResult> {
  const logits = await model.evaluate(tokens);
  const V = model.info.nVocab;
  let nll = 0;
  const out: EvalResult['top'] = [];
  for (let t = 0; t < tokens.length; t++) {
    const p = softmax(logits.subarray(t * V, (t + 1) * V));
    if (t + 1 < tokens.length) nll -= Math.log(p[tokens[t + 1]]);
    const ids = Array.from(p.keys())
      .sort((a, b) => p[b] - p[a])
      .slice(0, top);
    out.push(ids.map((i) => [i, p[i]]));
  }
  const n = Math.max(1, tokens.length - 1);
  return { nll: nll / n, ppl: Math.exp(nll / n), top: out };
}

export function parseTokenList(s: string): number[] {
  const ids = s.split(',').map((x) => x.trim());
  const out = ids.map(Number);
  const bad = ids.findIndex((x, i) => x === '' || !Number.isInteger(out[i]) || out[i] < 0);
  if (bad >= 0) throw new HealthGPTError('ERR_INVALID_ARG', `--tokens: "${ids[bad]}" (item ${bad + 1}) is not a token id`);
  return out;
}

export function evalCommand(): Command {
  return new Command('eval')
    .description('next-token probabilities and perplexity of a token sequence or a text file')
    .requiredOption('-m, --model <file>', 'GGUF model')
    .option('--tokens <ids>', 'comma-separated token ids')
    .option('--file <text>', "a text file (needs the model's tokenizer)")
    .option('--top <k>', 'probabilities to list per position', intArg(0, INT_MAX), 5)
    .option('--threads <n>', 'threads', threadsArg)
    .addOption(new Option('--gpu <mode>', 'where the model runs: off (default, the CPU), auto (CUDA when present and it fits), cuda').choices(['auto', 'cuda', 'off']))
    .addOption(new Option('--gpu-layers <n>', 'with a GPU: only the first n layers there, the rest on the CPU').argParser(intArg(0, INT_MAX)))
    .option('--json', 'print JSON')
    .action(async (o: { model: string; tokens?: string; file?: string; top: number; threads?: number; gpu?: 'auto' | 'cuda' | 'off'; gpuLayers?: number; json?: boolean }) => {
      if (!o.tokens === !o.file) throw new HealthGPTError('ERR_INVALID_ARG', 'give exactly one of --tokens or --file');
      if (!Number.isInteger(o.top) || o.top < 1) throw new HealthGPTError('ERR_INVALID_ARG', `--top must be a positive integer, got ${o.top}`);
      const model = await LanguageModel.load(o.model, { threads: o.threads, gpu: gpuOf(o), gpuLayers: o.gpuLayers });
      reportBackend(model.info.backend, gpuOf(o));
      try {
        const tokens = o.tokens ? parseTokenList(o.tokens) : model.tokenize(readFileSync(o.file!, 'utf8'));
        if (tokens.length > model.info.nCtx) throw new HealthGPTError('ERR_CONTEXT', `${tokens.length} tokens do not fit the context of ${model.info.nCtx}`);
        const r = await evalTokens(model, tokens, o.top);
        if (o.json) process.stdout.write(toJson(r) + '\n');
        else process.stdout.write(`${tokens.length} tokens: nll ${r.nll.toFixed(4)}, perplexity ${r.ppl.toFixed(3)}\n`);
      } finally {
        model.dispose();
      }
    });
}
