#!/usr/bin/env node
// node tools/bench-hlora.mjs [--json] [--threads N] [--repeats N] [--prompt N] [--decode N]
//                            [--context N] [--model FILE.gguf] [--cache DIR]
//
// What H-LoRA plugins cost (docs/design.md, "How we know it is fast": H-LoRA overhead against the
// base model alone): prompt processing and decode tokens/s of one phi3 model run alone and
// with HealthGPT-M3's plugin shapes, comprehension (r=64, alpha=128, 4 experts) and
// generation (r=256, alpha=512, 4 experts), each
//   - fused (router and lora_A in one pass over the input: the engine's path),
//   - unfused (router and lora_A as passes of their own: what fusing saves),
//   - re-encoded as q8_0 at load (half the adapter bytes of f16 per token),
// in one process (one model holding every configuration as a plugin), the configurations
// taking turns prompt by prompt and decode run by decode run, so a busy machine slows them
// alike; each is compared with the base of the same round (paired ratios), medians reported.
// At one token a step reads every weight once, so the overhead to expect is the adapters'
// bytes over the base's: printed beside the measurement.
//
// The base is the Phi-3-mini-shaped random Q4_0 file of tools/bench.mjs (the same recipe and
// the same cache file, made once, about 2.1 GB); the plugins are random F16 files made once
// beside it (lib/synthetic/hlora: about 0.2 GB and 0.8 GB). The library comes from dist/
// (`npx tsc -p .`).
import { availableParallelism, homedir } from 'node:os';
import { join } from 'node:path';
import { ensureBenchModel, ensurePlugin } from './bench-model.mjs';
import { benchCli } from './bench-cli.mjs';

const USAGE = `usage: node tools/bench-hlora.mjs [options]
  --json            print one JSON object instead of the table
  --threads N       threads (default: ${availableParallelism()}, one per core)
  --repeats N       timed prompt runs of each configuration, the median reported (default 3)
  --prompt N        prompt tokens for prompt processing (default 64)
  --decode N        decode steps per run (one run per configuration and round; default 16)
  --context N       KV cache positions (default 256)
  --model FILE      a phi3 GGUF to use instead of the cached random Phi-3-mini Q4_0
  --cache DIR       where the random model and plugins are kept (default ~/.cache/healthgpt/bench)`;
const { fail, lib, parse } = benchCli('bench-hlora', USAGE);

function parseArgs(argv) {
  const o = parse(argv, { json: false, threads: availableParallelism(), repeats: 3, prompt: 64, decode: 16, context: 256, model: undefined, cache: join(homedir(), '.cache', 'healthgpt', 'bench') }, [
    'threads',
    'repeats',
    'prompt',
    'decode',
    'context',
  ]);
  if (o.prompt + 1 > o.context || o.decode + 2 > o.context) fail(`--context ${o.context} is too small for --prompt ${o.prompt} and --decode ${o.decode}`);
  return o;
}

const GB = 1e9;

// ---------------------------------------------------------------------------------------------
// the base: the shared random Phi-3-mini Q4_0 of tools/bench-model.mjs (the file tools/bench.mjs
// uses), so whichever bench runs first makes it for both

/** The phi3 shape of a GGUF's metadata (for plugins that fit a --model of any size). */
function shapeOf(info) {
  const md = info.metadata;
  const embd = info.tensors.find((t) => t.name === 'token_embd.weight');
  const hidden = Number(md['phi3.embedding_length']);
  const heads = Number(md['phi3.attention.head_count']);
  return {
    vocab: Number(embd.shape[1]),
    hidden,
    ffn: Number(md['phi3.feed_forward_length']),
    layers: Number(md['phi3.block_count']),
    heads,
    kvHeads: Number(md['phi3.attention.head_count_kv'] ?? heads),
    context: Number(md['phi3.context_length']),
    ropeTheta: 10000,
  };
}

/** Bytes one token reads from a plugin's adapters: router and lora_A rows, lora_B, per linear. */
function adapterBytesPerToken(shape, spec, bytesPerValue) {
  const { hloraLinears } = lib('synthetic/hlora.js');
  let values = 0;
  for (const l of hloraLinears(shape)) values += (spec.experts + spec.rank) * l.in + l.out * spec.rank;
  return values * shape.layers * bytesPerValue;
}

/** Deterministic token ids in [300, vocab), a distinct first token per run so no prefix is reused. */
function tokens(n, vocab, seed) {
  let s = (seed * 2654435761) >>> 0 || 1;
  return Array.from({ length: n }, (_, i) => {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    return i === 0 ? 300 + (seed % 1000) : 300 + ((s >>> 0) % (vocab - 300));
  });
}

async function main() {
  const o = parseArgs(process.argv.slice(2));
  const log = o.json ? (m) => console.error(m) : (m) => console.log(m);
  const { GGUFFile } = lib('gguf/file.js');
  const { LanguageModel } = lib('model/model.js');
  const { M3_COMPREHENSION, M3_GENERATION } = lib('synthetic/hlora.js');
  const { median } = lib('cli/format.js');
  const { native } = lib('native.js');

  const model = o.model ?? (await ensureBenchModel(lib, o.cache, log));
  const f = GGUFFile.open(model);
  const info = f.info;
  f.close();
  const shape = shapeOf(info);
  const embd = info.tensors.find((t) => t.name === 'token_embd.weight');
  const weightBytes = info.tensors.reduce((a, t) => a + Number(t.bytes), 0);
  const baseBytesPerToken = weightBytes - Number(embd.bytes) + Number(embd.bytes) / shape.vocab; // one embedding row
  const com = await ensurePlugin(lib, o.cache, shape, M3_COMPREHENSION, log);
  const gen = await ensurePlugin(lib, o.cache, shape, M3_GENERATION, log);

  // name -> [plugin file, spec, load options]; undefined: the base alone
  const configs = [
    { name: 'base', plugin: /** @type {string | undefined} */ (undefined) },
    { name: 'comprehension', spec: M3_COMPREHENSION, file: com, options: { adapterType: 'f16' }, bytesPerValue: 2 },
    { name: 'comprehension unfused', spec: M3_COMPREHENSION, file: com, options: { adapterType: 'f16', fused: false }, bytesPerValue: 2 },
    { name: 'comprehension q8_0', spec: M3_COMPREHENSION, file: com, options: { adapterType: 'q8_0' }, bytesPerValue: 34 / 32 },
    { name: 'generation', spec: M3_GENERATION, file: gen, options: { adapterType: 'f16' }, bytesPerValue: 2 },
    { name: 'generation unfused', spec: M3_GENERATION, file: gen, options: { adapterType: 'f16', fused: false }, bytesPerValue: 2 },
    { name: 'generation q8_0', spec: M3_GENERATION, file: gen, options: { adapterType: 'q8_0' }, bytesPerValue: 34 / 32 },
  ];
  // One model holds every configuration as a plugin of its own (a plugin is picked per
  // request and shares the base weights): one copy of the packed base, as an application
  // with both plugins has.
  log(`loading ${model} with ${configs.length - 1} plugins (${o.threads} threads) ...`);
  const t0 = performance.now();
  const lm = await LanguageModel.load(model, { threads: o.threads, contextSize: o.context, kvType: 'f16' });
  const loadMs = performance.now() - t0;
  for (const c of configs) {
    if (!c.spec) continue;
    const t = performance.now();
    await lm.loadPlugin(c.name.replace(/ /g, '-'), c.file, c.options);
    c.pluginLoadMs = performance.now() - t;
    c.plugin = c.name.replace(/ /g, '-');
  }

  const prefill = async (c, prompt) => {
    const t = performance.now();
    for await (const _ of lm.generate(prompt, { maxTokens: 1, stopTokens: [], plugin: c.plugin }));
    return performance.now() - t;
  };
  // A run of decode steps after a one-token prompt: the median time of its steps.
  const decode = async (c, first) => {
    const steps = [];
    const g = lm.generate([first], { maxTokens: o.decode + 1, stopTokens: [], plugin: c.plugin });
    await g.next(); // the one-token prompt and the first token
    for (let k = 0; k < o.decode; k++) {
      const t = performance.now();
      const step = await g.next();
      if (step.done) throw new Error(`${c.name}: decode ended after ${k} steps`);
      steps.push(performance.now() - t);
    }
    await g.return(undefined);
    return median(steps);
  };

  // Configurations take turns: one prompt each per round, then one run of decode steps each
  // per round, so a load that comes and goes on this shared machine lands on all of them
  // alike; each configuration's time is also compared with the base's of the same round
  // (paired).
  log(`warming up, then ${o.repeats} rounds of prompts (${o.prompt} tokens) and of ${o.decode} decode steps, configurations in turn ...`);
  for (const c of configs) await prefill(c, tokens(16, shape.vocab, 7)); // pages the weights in
  const ppMs = Object.fromEntries(configs.map((c) => [c.name, /** @type {number[]} */ ([])]));
  const tgMs = Object.fromEntries(configs.map((c) => [c.name, /** @type {number[]} */ ([])]));
  let seed = 1;
  for (let r = 0; r < o.repeats; r++) {
    for (const c of configs) ppMs[c.name].push(await prefill(c, tokens(o.prompt, shape.vocab, seed++)));
    log(`  prompt round ${r + 1}/${o.repeats} done`);
  }
  for (let r = 0; r < o.repeats; r++) {
    for (const c of configs) tgMs[c.name].push(await decode(c, tokens(1, shape.vocab, seed++)[0]));
    log(`  decode round ${r + 1}/${o.repeats} done`);
  }
  lm.dispose();

  const paired = (xs, base) => median(xs.map((x, i) => x / base[i] - 1));
  const rows = configs.map((c) => {
    const adapterBytes = c.spec ? adapterBytesPerToken(shape, c.spec, c.bytesPerValue) : 0;
    return {
      name: c.name,
      rank: c.spec?.rank,
      experts: c.spec?.experts,
      promptTokensPerSecond: (o.prompt * 1000) / median(ppMs[c.name]),
      decodeTokensPerSecond: 1000 / median(tgMs[c.name]),
      promptRunsMs: ppMs[c.name],
      decodeStepMsByRound: tgMs[c.name],
      // time per token over the base's in the same round, minus one (median over rounds):
      // 0.10 = 10% slower
      promptOverhead: paired(ppMs[c.name], ppMs.base),
      decodeOverhead: paired(tgMs[c.name], tgMs.base),
      adapterBytesPerToken: adapterBytes,
      // what reading the adapters alone would add at the base's bandwidth
      expectedDecodeOverhead: adapterBytes / baseBytesPerToken,
      pluginLoadMs: c.pluginLoadMs,
    };
  });
  const byName = Object.fromEntries(rows.map((r) => [r.name, r]));
  // speed of the fused path over the unfused, paired round by round
  const fusedOverUnfused = (n) => ({
    prompt: median(ppMs[`${n} unfused`].map((x, i) => x / ppMs[n][i])),
    decode: median(tgMs[`${n} unfused`].map((x, i) => x / tgMs[n][i])),
  });
  const result = {
    model: { path: model, weightBytes, bytesPerToken: baseBytesPerToken, shape, loadMs },
    settings: { threads: o.threads, promptTokens: o.prompt, decodeTokens: o.decode, contextSize: o.context, kvType: 'f16', repeats: o.repeats, cpu: native().cpu() },
    configurations: rows,
    fusedOverUnfused: { comprehension: fusedOverUnfused('comprehension'), generation: fusedOverUnfused('generation') },
    targets: {
      comprehensionDecodeOverheadAtMost: 0.1,
      generationDecodeOverheadAtMost: 0.25,
      comprehension: byName.comprehension.decodeOverhead,
      generation: byName.generation.decodeOverhead,
      comprehensionQ8_0: byName['comprehension q8_0'].decodeOverhead,
      generationQ8_0: byName['generation q8_0'].decodeOverhead,
    },
  };
  if (o.json) {
    console.log(JSON.stringify(result, null, 2));
    return;
  }
  const pct = (x) => `${x >= 0 ? '+' : ''}${(100 * x).toFixed(1)}%`.padStart(8);
  const num = (x) => x.toFixed(2).padStart(8);
  const runs = (xs) => xs.map((x) => x.toFixed(0)).join(', ');
  console.log('');
  console.log(`model     ${model}`);
  console.log(`          phi3, ${shape.layers} layers, hidden ${shape.hidden}, ffn ${shape.ffn}, ${(baseBytesPerToken / GB).toFixed(2)} GB of weights read per token`);
  console.log(
    `settings  ${o.threads} threads, context ${o.context}, KV cache f16, CPU ${native().cpu().active}; medians of ${o.repeats} rounds (prompts; runs of ${o.decode} decode steps), configurations in turn`,
  );
  console.log('');
  console.log('                          prompt tok/s  (time)   decode tok/s  (time)   adapter MB/token  (expected)');
  for (const r of rows)
    console.log(
      `${r.name.padEnd(24)}  ${num(r.promptTokensPerSecond)}  ${r.name === 'base' ? '        ' : pct(r.promptOverhead)}   ${num(r.decodeTokensPerSecond)}  ${r.name === 'base' ? '        ' : pct(r.decodeOverhead)}   ${(r.adapterBytesPerToken / 1e6).toFixed(0).padStart(10)}  ${r.name === 'base' ? '' : pct(r.expectedDecodeOverhead)}`,
    );
  console.log('');
  for (const n of ['comprehension', 'generation'])
    console.log(`fused / unfused ${n.padEnd(14)} prompt ${result.fusedOverUnfused[n].prompt.toFixed(2)}x, decode ${result.fusedOverUnfused[n].decode.toFixed(2)}x`);
  console.log(
    `targets   decode overhead: comprehension <= 10% (f16 ${pct(result.targets.comprehension).trim()}, q8_0 ${pct(result.targets.comprehensionQ8_0).trim()}), generation <= 25% (f16 ${pct(result.targets.generation).trim()}, q8_0 ${pct(result.targets.generationQ8_0).trim()})`,
  );
  console.log('');
  console.log("(time: median over rounds of the time per token over the base's in the same round; expected: the adapters' bytes over the base's)");
  for (const r of rows) console.log(`  ${r.name.padEnd(22)} prompt ms [${runs(r.promptRunsMs)}] decode step ms by round [${r.decodeStepMsByRound.map((x) => x.toFixed(1)).join(', ')}]`);
}

main().catch((err) => {
  console.error(`bench-hlora: ${err.stack ?? err}`);
  process.exit(1);
});
