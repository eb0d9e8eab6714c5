/**
 * `healthgpt bench --model M`: this engine alone on one GGUF: load time, prompt processing
 * and decode tokens/s, peak RSS. Prompts are random token ids (no tokenizer needed), a new
 * one per repeat so no run reuses another's cache. `npm run bench` puts node-llama-cpp beside it.
 */
import { Command } from 'commander';
import { cpus } from 'node:os';
import { LanguageModel } from '../model/model.js';
import { median, toJson } from './format.js';

export interface BenchResult {
  model: string;
  threads: number;
  load_ms: number;
  prompt_tokens: number;
  decode_tokens: number;
  pp_tok_s: number;
  tg_tok_s: number;
  peak_rss_mb: number;
}

export async function benchModel(path: string, o: { prompt: number; decode: number; threads: number; repeats: number; contextSize?: number }): Promise<BenchResult> {
  const t0 = performance.now();
  const model = await LanguageModel.load(path, { threads: o.threads, contextSize: o.contextSize ?? o.prompt + o.decode + 8 });
  const loadMs = performance.now() - t0;
  try {
    const { nVocab } = model.info;
    let seed = 12345;
    const rand = () => (seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) % nVocab;
    const pp: number[] = [];
    const tg: number[] = [];
    for (let r = 0; r < o.repeats; r++) {
      const prompt = Array.from({ length: o.prompt }, rand);
      const start = performance.now();
      let first = 0;
      let n = 0;
      for await (const _ of model.generate(prompt, { maxTokens: o.decode, stopTokens: [] })) {
        if (n++ === 0) first = performance.now();
      }
      const end = performance.now();
      pp.push(o.prompt / ((first - start) / 1000));
      if (n > 1) tg.push((n - 1) / ((end - first) / 1000));
    }
    return {
      model: path,
      threads: o.threads,
      load_ms: Math.round(loadMs),
      prompt_tokens: o.prompt,
      decode_tokens: o.decode,
      pp_tok_s: median(pp),
      tg_tok_s: tg.length ? median(tg) : 0,
      peak_rss_mb: Math.round(process.resourceUsage().maxRSS / 1024),
    };
  } finally {
    model.dispose();
  }
}

const positive = (name: string) => (v: string) => {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new Error(`${name} must be a positive integer, got ${v}`);
  return n;
};

export function benchCommand(): Command {
  return new Command('bench')
    .description('time prompt processing and decoding of a GGUF model on this machine')
    .requiredOption('-m, --model <file>', 'GGUF model')
    .option('--prompt <n>', 'prompt tokens', positive('--prompt'), 512)
    .option('--decode <n>', 'tokens to decode', positive('--decode'), 64)
    .option('--threads <n>', 'threads', positive('--threads'), cpus().length)
    .option('--repeats <n>', 'runs (the median is reported)', positive('--repeats'), 3)
    .option('--json', 'print JSON')
    .action(async (o: { model: string; prompt: number; decode: number; threads: number; repeats: number; json?: boolean }) => {
      const r = await benchModel(o.model, o);
      if (o.json) {
        process.stdout.write(toJson(r) + '\n');
        return;
      }
      process.stdout.write(
        `${r.model}: load ${r.load_ms} ms, prompt ${r.prompt_tokens} tokens ${r.pp_tok_s.toFixed(1)} tok/s, decode ${r.decode_tokens} tokens ${r.tg_tok_s.toFixed(1)} tok/s, ${r.threads} threads, peak RSS ${r.peak_rss_mb} MB (median of ${o.repeats})\n`,
      );
    });
}
