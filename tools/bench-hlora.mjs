#!/usr/bin/env node
// node tools/bench-hlora.mjs [--json] [--threads N] [--repeats N] [--prompt N] [--decode N]
//                            [--context N] [--model FILE.gguf] [--cache DIR]
//
// What H-LoRA plugins cost (DESIGN.md, "How we know it is fast": H-LoRA overhead against the
// base model alone): prompt processing and decode tokens/s of one phi3 model run alone and
// with HealthGPT-M3's plugin shapes, comprehension (r=64, alpha=128, 4 experts) and
// generation (r=256, alpha=512, 4 experts), each
//   - fused (router and lora_A in one pass over the input: the engine's path),
//   - unfused (router and lora_A as passes of their own: what fusing saves),
//   - re-encoded as q8_0 at load (half the adapter bytes of f16 per token),
// in one process on one loaded model (the plugins share its weights; switching is free), the
// configurations interleaved run by run so a busy machine slows them alike; medians reported.
// At one token a step reads every weight once, so the overhead to expect is the adapters'
// bytes over the base's: printed beside the measurement.
//
// The base is the Phi-3-mini-shaped random Q4_0 file of tools/bench.mjs (the same recipe and
// the same cache file, made once, about 2.1 GB); the plugins are random F16 files made once
// beside it (lib/synthetic/hlora: about 0.2 GB and 0.8 GB). The library comes from dist/
// (`npx tsc -p .`).
import { existsSync, mkdirSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { availableParallelism, homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(import.meta.url);

const USAGE = `usage: node tools/bench-hlora.mjs [options]
  --json            print one JSON object instead of the table
  --threads N       threads (default: ${availableParallelism()}, one per core)
  --repeats N       timed runs of each measurement, the median reported (default 3)
  --prompt N        prompt tokens for prompt processing (default 64)
  --decode N        tokens decoded one at a time (default 16)
  --context N       KV cache positions (default 256)
  --model FILE      a phi3 GGUF to use instead of the cached random Phi-3-mini Q4_0
  --cache DIR       where the random model and plugins are kept (default ~/.cache/healthgpt/bench)`;

function parseArgs(argv) {
  const o = { json: false, threads: availableParallelism(), repeats: 3, prompt: 64, decode: 16, context: 256, model: undefined, cache: join(homedir(), '.cache', 'healthgpt', 'bench') };
  const ints = new Set(['threads', 'repeats', 'prompt', 'decode', 'context']);
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--json') o.json = true;
    else if (a === '--help' || a === '-h') {
      console.log(USAGE);
      process.exit(0);
    } else if (a.startsWith('--') && a.slice(2) in o && a !== '--json') {
      const k = a.slice(2);
      const v = argv[++i];
      if (v === undefined) fail(`${a} needs a value`);
      if (ints.has(k)) {
        const n = Number(v);
        if (!Number.isInteger(n) || n < 1) fail(`${a} must be a positive integer, got ${v}`);
        o[k] = n;
      } else o[k] = v;
    } else fail(`unknown argument ${a}\n${USAGE}`);
  }
  if (o.prompt + 1 > o.context || o.decode + 2 > o.context) fail(`--context ${o.context} is too small for --prompt ${o.prompt} and --decode ${o.decode}`);
  return o;
}

function fail(message) {
  console.error(`bench-hlora: ${message}`);
  process.exit(2);
}

function lib(path) {
  const file = join(root, 'dist', path);
  if (!existsSync(file)) fail(`${file} is missing: compile the library first (npx tsc -p .)`);
  return require(file);
}

const GB = 1e9;

// ---------------------------------------------------------------------------------------------
// the base: tools/bench.mjs's random Phi-3-mini Q4_0, byte for byte (same recipe, same path),
// so whichever bench runs first makes it for both

const MODEL_VERSION = 1; // tools/bench.mjs's

function spmVocab(n) {
  const tokens = ['<unk>', '<s>', '</s>'];
  for (let b = 0; b < 256; b++) tokens.push(`<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`);
  const letters = 'etaoinshrdlucmfwypvbgkjqxz'.split('');
  tokens.push('▁');
  for (let level = ['']; tokens.length < n; ) {
    level = level.flatMap((p) => letters.map((c) => p + c));
    for (const p of [...level.map((x) => `▁${x}`), ...level]) {
      if (tokens.length >= n) break;
      tokens.push(p);
    }
  }
  return {
    tokens,
    scores: Float32Array.from(tokens, (_, i) => (i < 259 ? 0 : -i)),
    types: Int32Array.from(tokens, (_, i) => (i === 0 ? 2 : i < 3 ? 3 : i < 259 ? 6 : 1)),
  };
}

function fillRandom(out, seed, std) {
  let s = seed >>> 0 || 0x9e3779b9;
  const scale = (std * Math.sqrt(3)) / 2147483648;
  for (let i = 0; i < out.length; i++) {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    out[i] = s * scale;
  }
}

async function ensureBase(dir, log) {
  const { GGUFWriter } = lib('gguf/writer.js');
  const { GGMLType, tensorBytes } = lib('gguf/constants.js');
  const { PHI3_MINI, addPhi3Hparams, phi3Tensors } = lib('synthetic/phi3.js');
  const { addSpmVocab } = lib('tokenizer/vocab-gguf.js');
  const { native } = lib('native.js');
  const s = PHI3_MINI;
  const path = join(dir, `phi3-mini-random-q4_0-v${MODEL_VERSION}-${s.vocab}.gguf`);
  if (existsSync(path)) return path;
  mkdirSync(dir, { recursive: true });
  log(`making ${path} (Phi-3-mini shape, random weights, Q4_0; once) ...`);
  const started = Date.now();
  const w = new GGUFWriter();
  addPhi3Hparams(w, s, 'healthgpt bench: random weights (not a trained model)');
  w.addKV('general.file_type', 2, 'u32');
  w.addKV('general.quantization_version', 2, 'u32');
  const v = spmVocab(s.vocab);
  addSpmVocab(w, { pieces: v.tokens, scores: v.scores, types: v.types, unknownId: 0, bosId: 1, eosId: 2 });
  const q4 = GGMLType.Q4_0;
  const tensors = phi3Tensors(s);
  tensors.forEach((t, i) => {
    if (t.shape.length === 1) {
      const ones = new Float32Array(t.shape[0]);
      fillRandom(ones, 1000 + i, 0.1);
      for (let k = 0; k < ones.length; k++) ones[k] += 1;
      w.addTensor(t.name, t.shape, GGMLType.F32, new Uint8Array(ones.buffer));
      return;
    }
    const [k, rows] = t.shape;
    w.addTensor(t.name, t.shape, q4, () => {
      const out = Buffer.allocUnsafe(tensorBytes(q4, t.shape));
      const rowBytes = out.length / rows;
      const step = Math.max(1, Math.floor((16 << 20) / k));
      const f = new Float32Array(step * k);
      for (let r = 0; r < rows; r += step) {
        const n = Math.min(step, rows - r);
        const slice = f.subarray(0, n * k);
        fillRandom(slice, (i + 1) * 1_000_003 + r, 1 / Math.sqrt(k));
        native().quantizeRow(q4, slice).copy(out, r * rowBytes);
      }
      if (i % 16 === 0) log(`  ${i + 1}/${tensors.length} tensors`);
      return out;
    });
  });
  await w.write(path);
  log(`  done in ${((Date.now() - started) / 1000).toFixed(0)} s, ${(statSync(path).size / GB).toFixed(2)} GB`);
  return path;
}

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

const PLUGIN_VERSION = 1; // bump when lib/synthetic/hlora's recipe changes

async function ensurePlugin(dir, shape, spec, log) {
  const { writeRandomHLoraPlugin } = lib('synthetic/hlora.js');
  const key = `${shape.layers}x${shape.hidden}x${shape.ffn}x${shape.heads}x${shape.kvHeads}`;
  const path = join(dir, `hlora-${spec.name}-r${spec.rank}-f16-v${PLUGIN_VERSION}-${key}.gguf`);
  if (existsSync(path)) return path;
  mkdirSync(dir, { recursive: true });
  log(`making ${path} (random ${spec.name} plugin, r=${spec.rank}, ${spec.experts} experts, F16; once) ...`);
  await writeRandomHLoraPlugin(path, shape, spec, 'f16');
  return path;
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

  const model = o.model ?? (await ensureBase(o.cache, log));
  const f = GGUFFile.open(model);
  const info = f.info;
  f.close();
  const shape = shapeOf(info);
  const embd = info.tensors.find((t) => t.name === 'token_embd.weight');
  const weightBytes = info.tensors.reduce((a, t) => a + Number(t.bytes), 0);
  const baseBytesPerToken = weightBytes - Number(embd.bytes) + Number(embd.bytes) / shape.vocab; // one embedding row
  const com = await ensurePlugin(o.cache, shape, M3_COMPREHENSION, log);
  const gen = await ensurePlugin(o.cache, shape, M3_GENERATION, log);

  // name -> [plugin file, spec, load options]; undefined: the base alone
  const configs = [
    { name: 'base', plugin: undefined },
    { name: 'comprehension', spec: M3_COMPREHENSION, file: com, options: {}, bytesPerValue: 2 },
    { name: 'comprehension unfused', spec: M3_COMPREHENSION, file: com, options: { fused: false }, bytesPerValue: 2 },
    { name: 'comprehension q8_0', spec: M3_COMPREHENSION, file: com, options: { adapterType: 'q8_0' }, bytesPerValue: 34 / 32 },
    { name: 'generation', spec: M3_GENERATION, file: gen, options: {}, bytesPerValue: 2 },
    { name: 'generation unfused', spec: M3_GENERATION, file: gen, options: { fused: false }, bytesPerValue: 2 },
    { name: 'generation q8_0', spec: M3_GENERATION, file: gen, options: { adapterType: 'q8_0' }, bytesPerValue: 34 / 32 },
  ];
  log(`loading ${model} with ${configs.length - 1} plugin configurations (${o.threads} threads) ...`);
  const t0 = performance.now();
  const m = await LanguageModel.load(model, { threads: o.threads, contextSize: o.context, kvType: 'f16' });
  const loadMs = performance.now() - t0;
  const pluginLoadMs = {};
  for (const c of configs.slice(1)) {
    const t = performance.now();
    await m.loadPlugin(c.name, c.file, c.options);
    pluginLoadMs[c.name] = performance.now() - t;
    c.plugin = c.name;
  }

  const prefill = async (plugin, prompt) => {
    for await (const _ of m.generate(prompt, { maxTokens: 1, stopTokens: [], plugin }));
  };
  const decode = async (plugin, prompt, n) => {
    const stamps = [];
    for await (const _ of m.generate(prompt, { maxTokens: n, stopTokens: [], plugin })) stamps.push(performance.now());
    if (stamps.length !== n) throw new Error(`decode produced ${stamps.length} tokens, ${n} asked`);
    return stamps;
  };

  log(`warming up, then ${o.repeats} rounds of: each configuration's prompt (${o.prompt} tokens) and decode (${o.decode} tokens) ...`);
  for (const c of configs) await prefill(c.plugin, tokens(16, shape.vocab, 7)); // pages the weights in
  const pp = Object.fromEntries(configs.map((c) => [c.name, []]));
  const tg = Object.fromEntries(configs.map((c) => [c.name, []]));
  let seed = 1;
  for (let r = 0; r < o.repeats; r++) {
    for (const c of configs) {
      const prompt = tokens(o.prompt, shape.vocab, seed++);
      const t = performance.now();
      await prefill(c.plugin, prompt);
      pp[c.name].push((o.prompt * 1000) / (performance.now() - t));
      // timed from the first generated token to the (decode+1)-th: `decode` single steps
      const stamps = await decode(c.plugin, tokens(1, shape.vocab, seed++), o.decode + 1);
      tg[c.name].push((o.decode * 1000) / (stamps[stamps.length - 1] - stamps[0]));
    }
    log(`  round ${r + 1}/${o.repeats} done`);
  }
  m.dispose();

  const base = { pp: median(pp.base), tg: median(tg.base) };
  const rows = configs.map((c) => {
    const ppm = median(pp[c.name]);
    const tgm = median(tg[c.name]);
    const adapterBytes = c.spec ? adapterBytesPerToken(shape, c.spec, c.bytesPerValue) : 0;
    return {
      name: c.name,
      rank: c.spec?.rank,
      experts: c.spec?.experts,
      promptTokensPerSecond: ppm,
      decodeTokensPerSecond: tgm,
      promptRuns: pp[c.name],
      decodeRuns: tg[c.name],
      // time per token over the base's, minus one: 0.10 = 10% slower
      promptOverhead: base.pp / ppm - 1,
      decodeOverhead: base.tg / tgm - 1,
      adapterBytesPerToken: adapterBytes,
      // what reading the adapters alone would add at the base's bandwidth
      expectedDecodeOverhead: adapterBytes / baseBytesPerToken,
      pluginLoadMs: pluginLoadMs[c.name],
    };
  });
  const byName = Object.fromEntries(rows.map((r) => [r.name, r]));
  const fusedOverUnfused = (n) => ({
    prompt: byName[n].promptTokensPerSecond / byName[`${n} unfused`].promptTokensPerSecond,
    decode: byName[n].decodeTokensPerSecond / byName[`${n} unfused`].decodeTokensPerSecond,
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
  const runs = (xs) => xs.map((x) => x.toFixed(2)).join(', ');
  console.log('');
  console.log(`model     ${model}`);
  console.log(`          phi3, ${shape.layers} layers, hidden ${shape.hidden}, ffn ${shape.ffn}, ${(baseBytesPerToken / GB).toFixed(2)} GB of weights read per token`);
  console.log(`settings  ${o.threads} threads, context ${o.context}, KV cache f16, CPU ${native().cpu().active}; medians of ${o.repeats} interleaved runs`);
  console.log('');
  console.log('                          prompt tok/s  (time)   decode tok/s  (time)   adapter MB/token  (expected)');
  for (const r of rows)
    console.log(
      `${r.name.padEnd(24)}  ${num(r.promptTokensPerSecond)}  ${r.name === 'base' ? '        ' : pct(r.promptOverhead)}   ${num(r.decodeTokensPerSecond)}  ${r.name === 'base' ? '        ' : pct(r.decodeOverhead)}   ${(r.adapterBytesPerToken / 1e6).toFixed(0).padStart(10)}  ${r.name === 'base' ? '' : pct(r.expectedDecodeOverhead)}`,
    );
  console.log('');
  for (const n of ['comprehension', 'generation'])
    console.log(`fused / unfused ${n.padEnd(14)} prompt ${result.fusedOverUnfused[n].prompt.toFixed(2)}x, decode ${result.fusedOverUnfused[n].decode.toFixed(2)}x`);
  console.log(`targets   decode overhead: comprehension <= 10% (f16 ${pct(result.targets.comprehension).trim()}, q8_0 ${pct(result.targets.comprehensionQ8_0).trim()}), generation <= 25% (f16 ${pct(result.targets.generation).trim()}, q8_0 ${pct(result.targets.generationQ8_0).trim()})`);
  console.log('');
  for (const r of rows) console.log(`  ${r.name.padEnd(22)} prompt [${runs(r.promptRuns)}] decode [${runs(r.decodeRuns)}]`);
}

main().catch((err) => {
  console.error(`bench-hlora: ${err.stack ?? err}`);
  process.exit(1);
});
