#!/usr/bin/env node
// node tools/bench-generate.mjs [--json] [--threads N] [--tokens N] [--repeats N] [--tiny]
//                               [--model FILE.gguf] [--plugin FILE.gguf] [--cache DIR]
//
// Image-token decode speed: how fast the engine emits HealthGPT's <idx_k> tokens, the work
// of image generation (1024 of them per 256 x 256 image). On the Phi-3-mini-shaped model with
// HealthGPT-M3's vocabulary (40206 tokens: <start_index> 32011, <idx_0..8191> 32012..40203,
// <end_index>, <pixel_newline>; lib/synthetic/vocab.ts) and a random generation plugin of
// M3's shape (r=256, alpha=512, 4 experts, F16; lib/synthetic/hlora.ts): the prompt is the
// chat template's user turn with a task instruction and <start_index>, then greedy decoding
// under the image-token logit mask (lib/generate/image-tokens.ts), as generateImage runs it.
// Reported: tokens/s over the decode steps (first sampled token to last), the same without
// the plugin (the base alone) for comparison, the seconds a full 1024-token image would take
// at that rate, and the prompt's prefill time. Runs interleave the two configurations so a
// busy machine slows both alike; medians.
//
// The model is random Q4_0 weights (the recipe of tools/bench.mjs) with that vocabulary, made
// once under the cache directory (about 2.1 GB, its weights copied from tools/bench.mjs's file
// when that is there; the plugin about 0.8 GB, the one tools/bench-hlora.mjs makes); --tiny uses a small
// F32 model of the same vocabulary instead (hidden 256, 2 layers: a smoke test, seconds to
// make). The library comes from dist/ (`npx tsc -p .`).
import { availableParallelism, homedir } from 'node:os';
import { join } from 'node:path';
import { ensureHealthGPTVocabModel, ensurePlugin, ensureTinyHealthGPTVocabModel } from './bench-model.mjs';
import { benchCli } from './bench-cli.mjs';

const USAGE = `usage: node tools/bench-generate.mjs [options]
  --json            print one JSON object instead of the table
  --threads N       threads (default: ${availableParallelism()}, one per core)
  --tokens N        image tokens decoded per run (default 64)
  --repeats N       timed runs of each configuration, the median reported (default 3)
  --tiny            a small F32 model with HealthGPT's vocabulary instead of the Phi-3-mini shape
  --model FILE      a phi3 GGUF with HealthGPT's image tokens to use instead
  --plugin FILE     a generation plugin GGUF for that model
  --cache DIR       where the random model and plugin are kept (default ~/.cache/healthgpt/bench)`;
const { fail, lib, parse } = benchCli('bench-generate', USAGE);

function parseArgs(argv) {
  const o = parse(
    argv,
    { json: false, tiny: false, threads: availableParallelism(), tokens: 64, repeats: 3, model: undefined, plugin: undefined, cache: join(homedir(), '.cache', 'healthgpt', 'bench') },
    ['threads', 'tokens', 'repeats'],
  );
  if (o.tokens < 2) fail('--tokens must be at least 2 (the rate is over the steps between tokens)');
  if ((o.model === undefined) !== (o.plugin === undefined)) fail('--model and --plugin go together');
  return o;
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

async function main() {
  const o = parseArgs(process.argv.slice(2));
  const log = o.json ? () => {} : (m) => console.error(m);
  const { LanguageModel } = lib('model/model.js');
  const { findImageTokens, imageTokenMask } = lib('generate/image-tokens.js');
  const { renderChat, PHI3_INSTRUCT } = lib('prompt/template.js');
  const { taskMessage } = lib('generate/tasks.js');

  let modelPath = o.model;
  let pluginPath = o.plugin;
  if (!modelPath) {
    const m = o.tiny ? await ensureTinyHealthGPTVocabModel(lib, o.cache, log) : await ensureHealthGPTVocabModel(lib, o.cache, log);
    modelPath = m.path;
    pluginPath = await ensurePlugin(lib, o.cache, m.shape, lib('synthetic/hlora.js').M3_GENERATION, log);
  }

  const t0 = performance.now();
  const model = await LanguageModel.load(modelPath, { threads: o.threads, contextSize: 512 + o.tokens, plugins: { generation: pluginPath } });
  const loadMs = performance.now() - t0;
  const ids = findImageTokens(model.tokenizer.vocab.tokenToId);
  const text =
    renderChat(PHI3_INSTRUCT, [{ role: 'user', content: taskMessage('report2cxr', { hasImage: false, report: 'No acute cardiopulmonary process. Heart size is normal.' }) }]) + '<start_index>';
  const prompt = model.tokenize(text, { special: true, prefixStyle: 'hf-slow' });
  if (prompt[prompt.length - 1] !== ids.start) fail('the prompt does not end with <start_index>: is this a HealthGPT vocabulary?');

  const configs = [
    { name: 'generation plugin', plugin: 'generation' },
    { name: 'base alone', plugin: undefined },
  ];
  const rates = Object.fromEntries(configs.map((c) => [c.name, /** @type {number[]} */ ([])]));
  const prefill = Object.fromEntries(configs.map((c) => [c.name, /** @type {number[]} */ ([])]));
  for (let r = 0; r < o.repeats; r++) {
    for (const c of configs) {
      // a fresh prompt each run: no prefix reuse across runs (the first token differs)
      const salt = [ids.firstIndex + r];
      const p = [...prompt.slice(0, -1), ...salt, ids.start];
      const stamps = [];
      const start = performance.now();
      for await (const t of model.generate(p, { plugin: c.plugin, maxTokens: o.tokens, stopTokens: [], temperature: 0, logitMask: imageTokenMask(ids, p.length, o.tokens) })) {
        if (t < ids.firstIndex || t >= ids.firstIndex + ids.codebookSize) fail(`token ${t} is not an image token`);
        stamps.push(performance.now());
      }
      prefill[c.name].push(stamps[0] - start);
      rates[c.name].push(((stamps.length - 1) * 1000) / (stamps[stamps.length - 1] - stamps[0]));
      log(`  run ${r + 1}/${o.repeats} ${c.name}: ${rates[c.name][r].toFixed(2)} tok/s`);
    }
  }
  model.dispose();

  const rows = configs.map((c) => {
    const tokS = median(rates[c.name]);
    return { config: c.name, tok_s: tokS, image_s: 1024 / tokS, prefill_ms: median(prefill[c.name]), prompt_tokens: prompt.length + 1 };
  });
  const result = { model: modelPath, plugin: pluginPath, threads: o.threads, tokens: o.tokens, repeats: o.repeats, load_ms: loadMs, results: rows };
  if (o.json) {
    console.log(JSON.stringify(result, null, 2));
    return;
  }
  console.log(`image-token decode, ${o.tokens} tokens, ${o.threads} threads (${modelPath})`);
  const table = [['config', 'tok/s', 's per 1024-token image', 'prefill ms'], ...rows.map((r) => [r.config, r.tok_s.toFixed(2), r.image_s.toFixed(1), r.prefill_ms.toFixed(0)])];
  const widths = table[0].map((_, i) => Math.max(...table.map((row) => row[i].length)));
  for (const row of table) console.log(row.map((cell, i) => (i ? cell.padStart(widths[i]) : cell.padEnd(widths[i]))).join('  '));
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
