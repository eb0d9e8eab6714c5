#!/usr/bin/env node
// npm run bench [-- --json] [--threads N] [--repeats N] [--prompt N] [--decode N] [--context N]
//                 [--types q4_0,q8_0,q4_k_m,q5_k_m,q6_k] [--model FILE.gguf] [--cache DIR]
//                 [--no-native] [--quick]
//
// Language-model speed of this engine against llama.cpp on the same GGUF file and thread
// count, in one run (docs/design.md, "How we know it is fast"), for each file type:
// prompt processing (a 256-token prompt to its first token) and decode (64 tokens, one at a
// time) in tokens/s, side by side with two llama.cpp builds and the ratio to each:
//   - llama-bench built for this processor (-march=native, CPU only: tools/llama-bench-native.mjs,
//     from the source node-llama-cpp bundles; built once into the cache, no network), what
//     the engineers of the field compare with;
//   - node-llama-cpp's prebuilt CPU binaries, what a Node user gets.
// The engines run interleaved, one round at a time (this engine, llama-bench, node-llama-cpp,
// the order turning each round), each round preceded by a measurement of the machine's
// memory read bandwidth, so that a shared machine's swings fall on all engines alike; each
// figure is the median of the rounds, each decode also a share of its own round's roofline
// (bandwidth / bytes read per token). Also the peak RSS of our decode against the weights
// plus the KV cache. Last, one Markdown table of the whole run, for the README.
//
// The defaults (3 rounds, 256 + 64 tokens, five file types) keep the whole of `npm run bench`
// near 25 minutes on 2 quiet cores: llama-bench runs its prompt twice (a warm-up, then the
// timed one), and it has no repacked x86 kernels for Q5_K and Q6_K (ggml-cpu/repack.cpp), so
// its prompts on those files take longest.
//
// The files are Phi-3-mini-shaped (lib/synthetic PHI3_MINI: 32 layers, hidden 3072, ffn 8192,
// HealthGPT's 40206-token vocabulary) with random weights, typed as `healthgpt quantize`
// types them (Q4_0, Q8_0, Q4_K_M, Q5_K_M, Q6_K: 2.1 to 3.1 GB each), made once into
// ~/.cache/healthgpt/bench/, each tensor drawn and quantized on its own as the writer
// reaches it, so memory holds one tensor, never the F32 model (15 GB). --quick: 2 layers,
// a 64-token prompt, 16 decoded tokens and 2 rounds (a check that everything runs).
//
// Each engine runs in a child process of its own (so the peak RSS is that engine's, and
// neither competes with another for cores or memory). The library comes from dist/
// (`npx tsc -p .`), node-llama-cpp from the devDependency (`npm install`).
import { spawn } from 'node:child_process';
import { readFileSync, statSync } from 'node:fs';
import { availableParallelism, cpus, homedir, loadavg } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ensureBenchModel } from './bench-model.mjs';
import { benchCli } from './bench-cli.mjs';
import { ensureLlamaBench, runLlamaBench } from './llama-bench-native.mjs';

// ---------------------------------------------------------------------------------------------
// options

const TYPES = ['q4_0', 'q8_0', 'q4_k_m', 'q5_k_m', 'q6_k'];
const USAGE = `usage: npm run bench [-- options]
  --json            print one JSON object instead of the tables
  --threads N       threads for every engine (default: ${availableParallelism()}, one per core)
  --repeats N       rounds (each engine once per round, interleaved); medians reported (default 3)
  --prompt N        prompt tokens for prompt processing (default 256)
  --decode N        tokens decoded one at a time (default 64)
  --context N       KV cache positions for our engine and node-llama-cpp (default 1024)
  --types LIST      file types, comma-separated (default ${TYPES.join(',')})
  --model FILE      a phi3 GGUF to use instead of the cached random Phi-3-mini files
  --cache DIR       where the random models and the native llama-bench are kept (default ~/.cache/healthgpt/bench)
  --no-native       leave out the native llama-bench (no build)
  --quick           2-layer models, --prompt 64 --decode 16 --repeats 2 unless given: a check that it all runs`;
const { fail, lib, parse, root } = benchCli('bench', USAGE);

function parseArgs(argv) {
  const given = (k) => argv.includes(`--${k}`);
  const o = parse(
    argv,
    {
      json: false,
      threads: availableParallelism(),
      repeats: 3,
      prompt: 256,
      decode: 64,
      context: 1024,
      types: TYPES.join(','),
      model: undefined,
      cache: join(homedir(), '.cache', 'healthgpt', 'bench'),
      'no-native': false,
      quick: false,
      worker: undefined,
    },
    ['threads', 'repeats', 'prompt', 'decode', 'context'],
  );
  if (o.quick) {
    if (!given('prompt')) o.prompt = 64;
    if (!given('decode')) o.decode = 16;
    if (!given('repeats')) o.repeats = 2;
  }
  if (o.prompt + 1 > o.context || o.decode + 2 > o.context) fail(`--context ${o.context} is too small for --prompt ${o.prompt} and --decode ${o.decode}`);
  o.typeList = o.types.split(',').filter(Boolean);
  const bad = o.typeList.filter((t) => !TYPES.includes(t));
  if (bad.length || o.typeList.length === 0) fail(`--types takes a comma-separated list of ${TYPES.join(', ')}; got ${bad.join(', ') || 'nothing'}`);
  return o;
}

const median = (xs) => lib('cli/format.js').median(xs);

async function nodeLlamaCpp() {
  try {
    return await import('node-llama-cpp');
  } catch (err) {
    return fail(`node-llama-cpp (the llama.cpp peer, a devDependency) is not installed: run npm install (${/** @type {Error} */ (err).message})`);
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
    const args = [
      fileURLToPath(import.meta.url),
      '--worker',
      kind,
      '--model',
      o.model,
      '--threads',
      String(o.threads),
      '--repeats',
      String(o.repeats),
      '--prompt',
      String(o.prompt),
      '--decode',
      String(o.decode),
      '--context',
      String(o.context),
      '--vocab',
      String(o.vocab),
    ];
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
  await nodeLlamaCpp(); // fail now, not after making the models
  const { native } = lib('native.js');
  const native_ = o['no-native'] ? undefined : ensureLlamaBench(root, o.cache, log, fail);
  const files = [];
  if (o.model) files.push({ type: 'file', path: o.model });
  else for (const t of o.typeList) files.push({ type: t, path: await ensureBenchModel(lib, o.cache, log, t, o.quick ? 2 : undefined) });

  // llama.cpp's threads spin at every barrier: on a machine busy with other work they wait on
  // each other's time slices and its figures collapse (tenfold and more), ours far less
  const loadBefore = loadavg()[0];
  if (loadBefore > 0.5 * availableParallelism())
    log(`note: load average ${loadBefore.toFixed(1)} on ${availableParallelism()} cores: the machine is busy, and llama.cpp's figures collapse on a busy machine; quote a run on a quiet one`);
  const results = [];
  for (const file of files) results.push(await benchFile(o, file, native_, native, log));
  const result = {
    settings: {
      threads: o.threads,
      promptTokens: o.prompt,
      decodeTokens: o.decode,
      contextSize: o.context,
      kvType: 'f16',
      rounds: o.repeats,
      loadAverage: { before: loadBefore, after: loadavg()[0] },
      flashAttention: false,
      cpu: native().cpu(),
      processor: cpus()[0]?.model ?? 'unknown',
      llamaBench: native_ ? { path: native_.path, bundle: native_.tag, release: results[0]?.llamaBench?.engine ?? '', build: 'GGML_NATIVE=ON (-march=native), CPU only' } : null,
    },
    files: results,
  };
  if (o.json) console.log(JSON.stringify(result, null, 2));
  else printTables(o, result);
}

/** Rounds of every engine on one file; what the tables and the JSON report for it. */
async function benchFile(o, file, llamaBench, native, log) {
  const { GGUFFile } = lib('gguf/file.js');
  const f = GGUFFile.open(file.path);
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
  const vocab = embd.shape[1];
  const hasOutput = info.tensors.some((t) => t.name === 'output.weight');
  // what a token reads: every weight once, but only one row of the token embedding (tied
  // embeddings are read whole, as the lm_head)
  const perTokenWeights = weightBytes - (hasOutput ? embd.bytes - embd.bytes / vocab : 0);
  const params = info.tensors.reduce((a, t) => a + t.shape.reduce((x, y) => x * y, 1), 0) - (hasOutput ? embd.shape[0] * embd.shape[1] : 0);
  const kvBytes = 2 * nLayers * o.context * kvWidth * 2; // K and V, F16, whole cache
  const kvUsedBytes = 2 * nLayers * Math.max(o.prompt, o.decode + 1) * kvWidth * 2; // the positions the runs write
  const kvReadPerToken = 2 * nLayers * kvWidth * 2 * (1 + o.decode / 2); // average over the decode (positions 1..decode)
  const perToken = perTokenWeights + kvReadPerToken;
  // the probe reads as many bytes as a decode step does, so that a large last-level cache
  // keeps the same share of the probe as of the weights (this machine's L3 is 480 MB)
  const probeMiB = Math.ceil(perToken / 2 ** 20);
  const types = [...new Set(info.tensors.filter((t) => t.shape.length > 1).map((t) => t.type))].sort();

  const one = { ...o, model: file.path, vocab, repeats: 1 };
  /** @type {[string, () => Promise<any>][]} */
  const engines = [
    ['healthgpt', () => runWorker('ours', one)],
    ...(llamaBench ? [/** @type {[string, () => Promise<any>]} */ (['llamaBench', async () => runLlamaBench(llamaBench.path, file.path, o, fail)])] : []),
    ['nodeLlamaCpp', () => runWorker('llama', one)],
  ];
  const runs = Object.fromEntries(engines.map(([k]) => [k, { pp: /** @type {number[]} */ ([]), tg: /** @type {number[]} */ ([]) }]));
  const bandwidthRuns = [];
  let peakRss = 0;
  let nodeEngine = '';
  let nativeBuild = '';
  for (let r = 0; r < o.repeats; r++) {
    log(`${file.type}: round ${r + 1}/${o.repeats}: read bandwidth (${probeMiB} MiB, ${o.threads} threads), then ${engines.map(([k]) => k).join(', ')} ...`);
    bandwidthRuns.push(await native().readBandwidth(probeMiB, 5, o.threads));
    for (let i = 0; i < engines.length; i++) {
      const [name, go] = engines[(r + i) % engines.length]; // the order turns each round
      const x = await go();
      runs[name].pp.push(...[x.pp].flat());
      runs[name].tg.push(...[x.tg].flat());
      if (name === 'healthgpt') peakRss = Math.max(peakRss, x.peakRss);
      if (name === 'nodeLlamaCpp') nodeEngine = x.engine;
      if (name === 'llamaBench') nativeBuild = `llama.cpp ${llamaBench.tag} (commit ${x.commit})`;
    }
  }
  const engine = (k) => {
    const x = runs[k];
    if (!x) return null;
    return {
      promptTokensPerSecond: median(x.pp),
      decodeTokensPerSecond: median(x.tg),
      promptRuns: x.pp,
      decodeRuns: x.tg,
      // decode of each round against that round's roofline
      decodeRooflineShares: x.tg.map((t, i) => (t * perToken) / (bandwidthRuns[i] * GB)),
      promptGflops: (2 * params * median(x.pp)) / GB,
    };
  };
  const ours = /** @type {NonNullable<ReturnType<typeof engine>>} */ (engine('healthgpt'));
  const ratio = (k) => {
    const e = engine(k);
    return e && { prompt: ours.promptTokensPerSecond / e.promptTokensPerSecond, decode: ours.decodeTokensPerSecond / e.decodeTokensPerSecond };
  };
  return {
    type: file.type,
    model: { path: file.path, fileBytes: statSync(file.path).size, weightBytes, tensorTypes: types, parameters: params, layers: nLayers, hidden, vocab, fileType: md['general.file_type'] },
    healthgpt: ours,
    llamaBench: llamaBench ? { ...engine('llamaBench'), engine: nativeBuild } : null,
    nodeLlamaCpp: { ...engine('nodeLlamaCpp'), engine: nodeEngine },
    ratio: { llamaBench: ratio('llamaBench'), nodeLlamaCpp: ratio('nodeLlamaCpp') },
    roofline: {
      readBandwidthRunsGBps: bandwidthRuns,
      bytesReadPerToken: perToken,
      weightBytesPerToken: perTokenWeights,
      kvBytesPerToken: kvReadPerToken,
      decodeTokensPerSecond: (median(bandwidthRuns) * GB) / perToken,
    },
    memory: {
      healthgptPeakRssBytes: peakRss,
      weightBytes,
      kvCacheBytes: kvBytes,
      kvCacheWrittenBytes: kvUsedBytes,
      // pages of the cache never written are never resident
      overheadBytes: peakRss - weightBytes - kvUsedBytes,
    },
  };
}

function printTables(o, result) {
  const g = (b) => `${(b / GB).toFixed(2)} GB`;
  const ts = (x) => x.toFixed(2).padStart(9);
  const list = (xs, d = 2) => xs.map((x) => x.toFixed(d)).join(', ');
  const pct = (xs) => xs.map((x) => `${(100 * x).toFixed(0)}%`).join(', ');
  const s = result.settings;
  console.log('');
  console.log(`settings  ${s.threads} threads, context ${s.contextSize}, KV cache f16, no flash attention, CPU ${s.cpu.active}; medians of ${s.rounds} interleaved rounds`);
  console.log(`processor ${s.processor}`);
  console.log(
    `peers     llama-bench ${s.llamaBench ? `${s.llamaBench.release} (node-llama-cpp's bundled source ${s.llamaBench.bundle}), built here with ${s.llamaBench.build}` : '(left out: --no-native)'}`,
  );
  console.log(`          ${result.files[0]?.nodeLlamaCpp.engine ?? ''}`);
  for (const f of result.files) {
    const m = f.model;
    console.log('');
    console.log(`${f.type.toUpperCase()}  ${m.path}`);
    console.log(
      `          phi3, ${m.layers} layers, hidden ${m.hidden}, vocab ${m.vocab}, ${(m.parameters / 1e9).toFixed(2)} B parameters, ${g(m.weightBytes)} of weights (${m.tensorTypes.join(', ')})`,
    );
    console.log(`                           healthgpt  llama-bench  node-llama-cpp   ratio: native   node`);
    const row = (what, key) => {
      const n = f.llamaBench,
        p = f.nodeLlamaCpp;
      const r = (x) => (x ? x[key].toFixed(2) : '-').padStart(6);
      console.log(
        `${what} tok/s ${ts(f.healthgpt[`${key}TokensPerSecond`])}    ${n ? ts(n[`${key}TokensPerSecond`]) : '        -'}      ${ts(p[`${key}TokensPerSecond`])}          ${r(f.ratio.llamaBench)} ${r(f.ratio.nodeLlamaCpp)}`,
      );
    };
    row(`prompt (${String(o.prompt).padStart(4)} tokens)`, 'prompt');
    row(`decode (${String(o.decode).padStart(4)} tokens)`, 'decode');
    console.log(`  bandwidth of each round [${list(f.roofline.readBandwidthRunsGBps, 1)}] GB/s; a token reads ${g(f.roofline.bytesReadPerToken)}`);
    for (const [name, e] of [
      ['healthgpt', f.healthgpt],
      ['llama-bench', f.llamaBench],
      ['node-llama-cpp', f.nodeLlamaCpp],
    ]) {
      if (!e) continue;
      console.log(
        `  ${name.padEnd(15)} prompt [${list(e.promptRuns)}] decode [${list(e.decodeRuns)}] = [${pct(e.decodeRooflineShares)}] of each round's roofline; prompt ${e.promptGflops.toFixed(1)} GFLOP/s`,
      );
    }
    const mem = f.memory;
    console.log(
      `  memory: healthgpt peak RSS ${g(mem.healthgptPeakRssBytes)} = weights ${g(mem.weightBytes)} + KV ${g(mem.kvCacheWrittenBytes)} written + ${(mem.overheadBytes / 1e6).toFixed(0)} MB else`,
    );
  }
  console.log('');
  for (const line of summaryTable(o, result)) console.log(line);
}

/**
 * The whole run as one Markdown table, to paste into the README as it is: per file type, each
 * engine's prompt / decode tok/s (medians), the ratios, and decode as a share of the read
 * bandwidth measured in its round (median over the rounds).
 */
function summaryTable(o, result) {
  const s = result.settings;
  const pair = (e) => (e ? `${e.promptTokensPerSecond.toFixed(1)} / ${e.decodeTokensPerSecond.toFixed(1)}` : '-');
  const ratio = (r) => (r ? `${r.prompt.toFixed(2)}x / ${r.decode.toFixed(2)}x` : '-');
  const share = (e) => (e ? `${(100 * median(e.decodeRooflineShares)).toFixed(0)}%` : '-');
  const lines = [
    `${s.processor}, ${s.threads} threads (CPU kernels: ${s.cpu.active}; load average ${s.loadAverage.before.toFixed(1)} before the run, ${s.loadAverage.after.toFixed(1)} after); Phi-3-mini-shaped random weights; a ${o.prompt}-token prompt (pp) and ${o.decode} decoded tokens (tg), tok/s; medians of ${s.rounds} interleaved rounds; llama-bench: ${s.llamaBench ? `${s.llamaBench.release}, -march=native` : 'left out'}; node-llama-cpp: ${result.files[0]?.nodeLlamaCpp.engine ?? ''}`,
    '',
    '| file | healthgpt pp / tg | llama-bench (native) pp / tg | node-llama-cpp pp / tg | vs native pp / tg | vs node-llama-cpp pp / tg | read bandwidth, GB/s | tg share of it: healthgpt / native / node |',
    '|---|---|---|---|---|---|---|---|',
  ];
  for (const f of result.files) {
    const bw = f.roofline.readBandwidthRunsGBps;
    lines.push(
      `| ${f.type.toUpperCase()} (${(f.model.fileBytes / GB).toFixed(2)} GB) | ${pair(f.healthgpt)} | ${pair(f.llamaBench)} | ${pair(f.nodeLlamaCpp)} | ${ratio(f.ratio.llamaBench)} | ${ratio(f.ratio.nodeLlamaCpp)} | ${median(bw).toFixed(1)} (${Math.min(...bw).toFixed(1)} to ${Math.max(...bw).toFixed(1)}) | ${share(f.healthgpt)} / ${share(f.llamaBench)} / ${share(f.nodeLlamaCpp)} |`,
    );
  }
  return lines;
}

main().catch((err) => {
  console.error(`bench: ${err.stack ?? err}`);
  process.exit(1);
});
