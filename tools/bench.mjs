#!/usr/bin/env node
// npm run bench [-- --json] [--threads N] [--repeats N] [--prompt N] [--decode N] [--context N]
//                 [--model FILE.gguf] [--cache DIR]
//
// Language-model speed of this engine against llama.cpp (node-llama-cpp's prebuilt CPU build)
// on the same GGUF file and thread count, in one run (docs/design.md, "How we know it is fast"):
// prompt processing (a 512-token prompt to its first token) and decode (64 tokens, one at a
// time) in tokens/s, medians of a few runs, side by side with the ratio; the decode roofline
// (memory read bandwidth / bytes of weights read per token); and the peak RSS of our decode
// against the weights plus the KV cache.
//
// The file is Phi-3-mini-shaped (lib/synthetic PHI3_MINI: 32 layers, hidden 3072, ffn 8192,
// HealthGPT's 40206-token vocabulary) with random weights, in Q4_0: made once into
// ~/.cache/healthgpt/bench/ (about 2.1 GB), each tensor drawn and quantized on its own as
// the writer reaches it, so memory holds one tensor, never the F32 model (15 GB).
//
// Each engine runs in a child process of its own, one after the other (so the peak RSS is
// that engine's, and neither competes with the other for cores or memory). The library comes
// from dist/ (`npx tsc -p .`), llama.cpp from the node-llama-cpp devDependency (`npm install`).
import { spawn } from 'node:child_process';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { availableParallelism, homedir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ensureBenchModel } from './bench-model.mjs';
import { benchCli } from './bench-cli.mjs';


// ---------------------------------------------------------------------------------------------
// options

const USAGE = `usage: npm run bench [-- options]
  --json            print one JSON object instead of the table
  --threads N       threads for both engines (default: ${availableParallelism()}, one per core)
  --repeats N       timed runs of each measurement, the median reported (default 3)
  --prompt N        prompt tokens for prompt processing (default 512)
  --decode N        tokens decoded one at a time (default 64)
  --context N       KV cache positions for both engines (default 1024)
  --model FILE      a phi3 GGUF to use instead of the cached random Phi-3-mini Q4_0
  --cache DIR       where the random model is kept (default ~/.cache/healthgpt/bench)`;
const { fail, lib, parse, root } = benchCli('bench', USAGE);

function parseArgs(argv) {
  const o = parse(argv, { json: false, threads: availableParallelism(), repeats: 3, prompt: 512, decode: 64, context: 1024, model: undefined, cache: join(homedir(), '.cache', 'healthgpt', 'bench'), worker: undefined },
    ['threads', 'repeats', 'prompt', 'decode', 'context']);
  if (o.prompt + 1 > o.context || o.decode + 2 > o.context) fail(`--context ${o.context} is too small for --prompt ${o.prompt} and --decode ${o.decode}`);
  return o;
}

const median = (xs) => lib('cli/format.js').median(xs);

async function nodeLlamaCpp() {
  try {
    return await import('node-llama-cpp');
  } catch (err) {
    fail(`node-llama-cpp (the llama.cpp peer, a devDependency) is not installed: run npm install (${err.message})`);
  }
}

const GB = 1e9;

// ---------------------------------------------------------------------------------------------
// workers: one engine each, in a child process; the result is one JSON line on stdout

/** Deterministic token ids in [300, vocab), distinct first tokens per run so no prefix is reused. */
function tokens(n, vocab, seed) {
  let s = (seed * 2654435761) >>> 0 || 1;
  return Array.from({ length: n }, (_, i) => {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    return i === 0 ? 300 + seed : 300 + ((s >>> 0) % (vocab - 300));
  });
}

/**
 * Runs the protocol on an engine given as two functions:
 * prefill(prompt) resolves once the first token after the prompt is chosen;
 * decode(prompt, n, onToken) generates n tokens greedily, calling onToken as each arrives.
 */
async function protocol(o, vocab, engine) {
  // warm-up (untimed): pages the weights in, spins the threads up
  await engine.prefill(tokens(32, vocab, 0));
  const pp = [];
  for (let r = 1; r <= o.repeats; r++) {
    const prompt = tokens(o.prompt, vocab, r);
    const t0 = performance.now();
    await engine.prefill(prompt);
    pp.push((o.prompt * 1000) / (performance.now() - t0));
  }
  const tg = [];
  for (let r = 1; r <= o.repeats; r++) {
    // a one-token prompt; timed from the first generated token to the (decode+1)-th: `decode` steps
    const stamps = [];
    await engine.decode(tokens(1, vocab, 100 + r), o.decode + 1, () => stamps.push(performance.now()));
    if (stamps.length !== o.decode + 1) throw new Error(`decode produced ${stamps.length} tokens, ${o.decode + 1} asked`);
    tg.push((o.decode * 1000) / (stamps[stamps.length - 1] - stamps[0]));
  }
  return { pp, tg };
}

async function workerOurs(o) {
  const { LanguageModel } = lib('model/model.js');
  const m = await LanguageModel.load(o.model, { threads: o.threads, contextSize: o.context, kvType: 'f16' });
  const vocab = m.info.nVocab;
  const res = await protocol(o, vocab, {
    async prefill(prompt) {
      for await (const _ of m.generate(prompt, { maxTokens: 1, stopTokens: [] }));
    },
    async decode(prompt, n, onToken) {
      for await (const _ of m.generate(prompt, { maxTokens: n, stopTokens: [] })) onToken();
    },
  });
  const peakRss = process.resourceUsage().maxRSS * 1024;
  m.dispose();
  return { ...res, peakRss, engine: 'healthgpt' };
}

async function workerLlama(o) {
  const nlc = await nodeLlamaCpp();
  const llama = await nlc.getLlama({ gpu: false, build: 'never', logLevel: nlc.LlamaLogLevel.error, progressLogs: false });
  const model = await llama.loadModel({ modelPath: o.model, gpuLayers: 0 });
  const ctx = await model.createContext({
    contextSize: o.context,
    batchSize: Math.min(o.prompt, o.context),
    sequences: 1,
    threads: o.threads,
    flashAttention: false, // the same attention algorithm as ours
    experimentalKvCacheKeyType: 'F16',
    experimentalKvCacheValueType: 'F16',
  });
  const seq = ctx.getSequence();
  const res = await protocol(o, o.vocab, {
    async prefill(prompt) {
      await seq.clearHistory();
      for await (const _ of seq.evaluate(prompt, { temperature: 0, yieldEogToken: true })) break;
    },
    async decode(prompt, n, onToken) {
      await seq.clearHistory();
      let k = 0;
      for await (const _ of seq.evaluate(prompt, { temperature: 0, yieldEogToken: true })) {
        onToken();
        if (++k === n) break;
      }
    },
  });
  const peakRss = process.resourceUsage().maxRSS * 1024;
  const release = llama.llamaCppRelease;
  await ctx.dispose();
  await model.dispose();
  await llama.dispose();
  const { version } = JSON.parse(readFileSync(join(root, 'node_modules', 'node-llama-cpp', 'package.json'), 'utf8'));
  return { ...res, peakRss, engine: `llama.cpp ${release.release} (node-llama-cpp ${version})` };
}

function runWorker(kind, o) {
  return new Promise((resolve, reject) => {
    const args = [fileURLToPath(import.meta.url), '--worker', kind, '--model', o.model, '--threads', String(o.threads), '--repeats', String(o.repeats),
      '--prompt', String(o.prompt), '--decode', String(o.decode), '--context', String(o.context), '--vocab', String(o.vocab)];
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.on('error', reject);
    child.on('close', (code) => {
      const line = out.trim().split('\n').pop();
      if (code !== 0 || !line) return reject(new Error(`the ${kind} worker exited with ${code}`));
      try {
        resolve(JSON.parse(line));
      } catch {
        reject(new Error(`the ${kind} worker printed no result: ${out.slice(-500)}`));
      }
    });
  });
}

// ---------------------------------------------------------------------------------------------
// main

async function main() {
  const argv = process.argv.slice(2);
  const wi = argv.indexOf('--worker');
  if (wi >= 0) {
    // internal: --worker ours|llama ... --vocab N
    const kind = argv[wi + 1];
    const rest = argv.filter((_, i) => i !== wi && i !== wi + 1);
    const vi = rest.indexOf('--vocab');
    const vocab = Number(rest[vi + 1]);
    rest.splice(vi, 2);
    const o = { ...parseArgs(rest), vocab };
    const r = kind === 'ours' ? await workerOurs(o) : await workerLlama(o);
    process.stdout.write(`${JSON.stringify(r)}\n`);
    return;
  }

  const o = parseArgs(argv);
  const log = o.json ? (m) => console.error(m) : (m) => console.log(m);
  await nodeLlamaCpp(); // fail now, not after making the model
  const { native } = lib('native.js');
  const { GGUFFile } = lib('gguf/file.js');
  o.model = o.model ?? (await ensureBenchModel(lib, o.cache, log));

  // what a token reads: every weight once, but only one row of the token embedding
  const f = GGUFFile.open(o.model);
  const info = f.info;
  f.close();
  const md = info.metadata;
  const arch = md['general.architecture'];
  const nLayers = Number(md[`${arch}.block_count`]);
  const hidden = Number(md[`${arch}.embedding_length`]);
  const heads = Number(md[`${arch}.attention.head_count`]);
  const kvHeads = Number(md[`${arch}.attention.head_count_kv`] ?? heads);
  const kvWidth = (hidden / heads) * kvHeads;
  const weightBytes = info.tensors.reduce((a, t) => a + t.bytes, 0);
  const embd = info.tensors.find((t) => t.name === 'token_embd.weight');
  o.vocab = embd.shape[1];
  const hasOutput = info.tensors.some((t) => t.name === 'output.weight');
  const perTokenWeights = weightBytes - (hasOutput ? embd.bytes - embd.bytes / o.vocab : 0); // tied embeddings are read whole, as the lm_head
  const params = info.tensors.reduce((a, t) => a + t.shape.reduce((x, y) => x * y, 1), 0) - (hasOutput ? embd.shape[0] * embd.shape[1] : 0);
  const kvBytes = 2 * nLayers * o.context * kvWidth * 2; // K and V, F16, whole cache
  const kvUsedBytes = 2 * nLayers * Math.max(o.prompt, o.decode + 1) * kvWidth * 2; // the positions the runs write
  const kvReadPerToken = 2 * nLayers * kvWidth * 2 * (1 + o.decode / 2); // average over the decode (positions 1..decode)

  // the roofline is what the machine can do: the best of three medians (others share these cores),
  // reading as many bytes as a decode step does, so that a large last-level cache keeps the
  // same share of the probe as of the weights (this machine's L3 is 480 MB)
  const probeMiB = Math.ceil((perTokenWeights + kvReadPerToken) / 2 ** 20);
  log(`measuring memory read bandwidth (${o.threads} threads, ${probeMiB} MiB) ...`);
  const bandwidthRuns = [];
  for (let i = 0; i < 3; i++) bandwidthRuns.push(await native().readBandwidth(probeMiB, 5, o.threads));
  const bandwidth = Math.max(...bandwidthRuns);
  log(`running healthgpt (${o.repeats} prompt runs of ${o.prompt} tokens, ${o.repeats} decode runs of ${o.decode}) ...`);
  const ours = await runWorker('ours', o);
  log(`running llama.cpp (the same) ...`);
  const theirs = await runWorker('llama', o);

  const roofline = (bandwidth * GB) / (perTokenWeights + kvReadPerToken);
  const summary = (r) => ({
    engine: r.engine,
    promptTokensPerSecond: median(r.pp),
    decodeTokensPerSecond: median(r.tg),
    promptRuns: r.pp,
    decodeRuns: r.tg,
    peakRssBytes: r.peakRss,
  });
  const result = {
    model: { path: o.model, fileBytes: statSync(o.model).size, weightBytes, parameters: params, layers: nLayers, hidden, vocab: o.vocab, type: md['general.file_type'] },
    settings: { threads: o.threads, promptTokens: o.prompt, decodeTokens: o.decode, contextSize: o.context, kvType: 'f16', repeats: o.repeats, flashAttention: false, cpu: native().cpu() },
    healthgpt: summary(ours),
    llamaCpp: summary(theirs),
    ratio: {
      prompt: median(ours.pp) / median(theirs.pp),
      decode: median(ours.tg) / median(theirs.tg),
    },
    roofline: {
      readBandwidthGBps: bandwidth,
      readBandwidthRunsGBps: bandwidthRuns,
      bytesReadPerToken: perTokenWeights + kvReadPerToken,
      weightBytesPerToken: perTokenWeights,
      kvBytesPerToken: kvReadPerToken,
      decodeTokensPerSecond: roofline,
      healthgptShare: median(ours.tg) / roofline,
      llamaCppShare: median(theirs.tg) / roofline,
    },
    memory: {
      healthgptPeakRssBytes: ours.peakRss,
      llamaCppPeakRssBytes: theirs.peakRss,
      weightBytes,
      kvCacheBytes: kvBytes,
      kvCacheWrittenBytes: kvUsedBytes,
      // pages of the cache never written are never resident
      overheadBytes: ours.peakRss - weightBytes - kvUsedBytes,
    },
    promptGflops: { healthgpt: (2 * params * median(ours.pp)) / GB, llamaCpp: (2 * params * median(theirs.pp)) / GB },
  };
  if (o.json) {
    console.log(JSON.stringify(result, null, 2));
    return;
  }

  const g = (b) => `${(b / GB).toFixed(2)} GB`;
  const ts = (x) => x.toFixed(2).padStart(9);
  const runs = (xs) => xs.map((x) => x.toFixed(2)).join(', ');
  console.log('');
  console.log(`model     ${o.model}`);
  console.log(`          phi3, ${nLayers} layers, hidden ${hidden}, vocab ${o.vocab}, ${(params / 1e9).toFixed(2)} B parameters, ${g(weightBytes)} of weights (file type ${md['general.file_type']})`);
  console.log(`settings  ${o.threads} threads, context ${o.context}, KV cache f16, no flash attention, CPU ${native().cpu().active}; medians of ${o.repeats} runs`);
  console.log('');
  console.log(`                          healthgpt    llama.cpp    ratio (healthgpt / llama.cpp)`);
  console.log(`prompt (${String(o.prompt).padStart(4)} tokens) tok/s ${ts(median(ours.pp))}    ${ts(median(theirs.pp))}    ${result.ratio.prompt.toFixed(2)}`);
  console.log(`decode (${String(o.decode).padStart(4)} tokens) tok/s ${ts(median(ours.tg))}    ${ts(median(theirs.tg))}    ${result.ratio.decode.toFixed(2)}`);
  console.log(`  runs: healthgpt prompt [${runs(ours.pp)}] decode [${runs(ours.tg)}]`);
  console.log(`        llama.cpp prompt [${runs(theirs.pp)}] decode [${runs(theirs.tg)}]`);
  console.log(`  prompt throughput: healthgpt ${result.promptGflops.healthgpt.toFixed(1)} GFLOP/s, llama.cpp ${result.promptGflops.llamaCpp.toFixed(1)} GFLOP/s (2 x ${(params / 1e9).toFixed(2)} B per token)`);
  console.log(`  peer: ${theirs.engine}`);
  console.log('');
  console.log(
    `roofline  decode <= read bandwidth / bytes read per token = ${bandwidth.toFixed(1)} GB/s / ${g(perTokenWeights + kvReadPerToken)} ` +
      `(weights ${g(perTokenWeights)} + KV ${(kvReadPerToken / 1e6).toFixed(0)} MB) = ${roofline.toFixed(2)} tok/s`,
  );
  console.log(`          (bandwidth: best of [${runs(bandwidthRuns)}] GB/s, ${g(probeMiB * 2 ** 20)} read ${o.threads === 1 ? 'by 1 thread' : `by ${o.threads} threads`} as a decode step reads)`);
  console.log(`          healthgpt decode at ${(100 * result.roofline.healthgptShare).toFixed(0)}% of it, llama.cpp at ${(100 * result.roofline.llamaCppShare).toFixed(0)}%`);
  console.log(
    `memory    healthgpt peak RSS ${g(ours.peakRss)}: weights ${g(weightBytes)} + KV cache ${g(kvBytes)} (f16, ${o.context} positions; ` +
      `${g(kvUsedBytes)} of it written, ${Math.max(o.prompt, o.decode + 1)} positions) + ${((ours.peakRss - weightBytes - kvUsedBytes) / 1e6).toFixed(0)} MB else`,
  );
  console.log(`          (llama.cpp peak RSS ${g(theirs.peakRss)})`);
}

main().catch((err) => {
  console.error(`bench: ${err.stack ?? err}`);
  process.exit(1);
});
