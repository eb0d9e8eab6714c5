#!/usr/bin/env node
// node tools/bench-clip.mjs [--json] [--threads N] [--repeats N] [--types f16,q8_0] [--cache DIR]
//
// CLIP ViT-L/14-336 encode speed of this engine (native/models/clip.cpp) with random weights,
// for each weight type: the comprehension tap (hidden state -2: 23 layers run) and the
// generation tap (hidden state 1: 1 layer run), plus the comprehension projector
// (mlp2x_gelu 1024 -> 3072 -> 3072, HealthGPT-M3's) on the 576 features. Reported: the median
// wall time of --repeats runs and the GFLOP/s it achieves, the FLOPs counted as
//   patch conv     2 * 576 * 1024 * (3 * 14 * 14)
//   per layer      q, k, v, out: 4 * 2 * 577 * 1024^2;  MLP: 2 * 2 * 577 * 1024 * 4096;
//                  attention: 2 * 2 * 577^2 * 1024 (q.K and probs.V over all 16 heads)
//   projector      2 * 576 * (1024 * 3072 + 3072 * 3072)
// (norms, biases, activations and the softmax are left out: under 1% of the total), and, as
// the ceiling, the engine's matmul alone at the ffn_up shape (the encode is matmul-bound:
// about 80% of its time in the q8_0 / f16 dot kernels by perf on a 2-core machine).
//
// The files are llama.cpp mmproj GGUFs (23 of 24 layers, clip.vision.feature_layer [23], as
// LLaVA's converter writes them), made once into ~/.cache/healthgpt/bench/ (f16 about 0.6 GB,
// q8_0 about 0.35 GB), each tensor drawn and converted as the writer reaches it. The library
// comes from dist/ (`npx tsc -p .`).
import { existsSync, mkdirSync, statSync } from 'node:fs';
import { availableParallelism, homedir } from 'node:os';
import { join } from 'node:path';
import { benchCli } from './bench-cli.mjs';

const USAGE = `usage: node tools/bench-clip.mjs [options]
  --json            print one JSON object instead of the table
  --threads N       threads of the tower's pool (default: ${availableParallelism()}, one per core)
  --repeats N       timed runs of each measurement, the median reported (default 3)
  --types LIST      weight types, comma-separated, of f16, q8_0, f32, bf16 (default f16,q8_0)
  --cache DIR       where the random towers are kept (default ~/.cache/healthgpt/bench)`;
const { fail, lib, parse } = benchCli('bench-clip', USAGE);

function parseArgs(argv) {
  const o = parse(argv, { json: false, threads: availableParallelism(), repeats: 3, types: 'f16,q8_0', cache: join(homedir(), '.cache', 'healthgpt', 'bench') }, ['threads', 'repeats']);
  o.types = o.types.split(',');
  for (const t of o.types) if (!['f16', 'q8_0', 'f32', 'bf16'].includes(t)) fail(`--types: unknown type ${t}`);
  return o;
}

// ---------------------------------------------------------------------------------------------
// ViT-L/14-336 (docs/model.md "Vision tower") and the FLOPs of an encode

const V = { image: 336, patch: 14, width: 1024, ff: 4096, heads: 16, layers: 23, proj: 3072 };
const N_PATCHES = (V.image / V.patch) ** 2; // 576
const N_POS = N_PATCHES + 1;

function encodeFlops(layers) {
  const conv = 2 * N_PATCHES * V.width * 3 * V.patch * V.patch;
  const perLayer = 4 * 2 * N_POS * V.width * V.width + 2 * 2 * N_POS * V.width * V.ff + 2 * 2 * N_POS * N_POS * V.width;
  return conv + layers * perLayer;
}
const PROJECT_FLOPS = 2 * N_PATCHES * (V.width * V.proj + V.proj * V.proj);

// ---------------------------------------------------------------------------------------------
// the random towers

const MODEL_VERSION = 1; // bump when the file's recipe changes

/** Uniform random values of the given standard deviation (xorshift32: fast; values do not matter for speed). */
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

function towerTensors() {
  const E = V.width;
  const t = [
    { name: 'v.patch_embd.weight', shape: [V.patch, V.patch, 3, E], conv: true },
    { name: 'v.class_embd', shape: [E] },
    { name: 'v.position_embd.weight', shape: [E, N_POS], conv: true },
    { name: 'v.pre_ln.weight', shape: [E], norm: true },
    { name: 'v.pre_ln.bias', shape: [E] },
  ];
  for (let i = 0; i < V.layers; i++) {
    const p = `v.blk.${i}.`;
    for (const [n, k, rows] of /** @type {[string, number, number][]} */ ([
      ['attn_q', E, E],
      ['attn_k', E, E],
      ['attn_v', E, E],
      ['attn_out', E, E],
      ['ffn_up', E, V.ff],
      ['ffn_down', V.ff, E],
    ]))
      t.push({ name: `${p}${n}.weight`, shape: [k, rows] }, { name: `${p}${n}.bias`, shape: [rows] });
    t.push({ name: `${p}ln1.weight`, shape: [E], norm: true }, { name: `${p}ln1.bias`, shape: [E] });
    t.push({ name: `${p}ln2.weight`, shape: [E], norm: true }, { name: `${p}ln2.bias`, shape: [E] });
  }
  t.push({ name: 'mm.0.weight', shape: [E, V.proj] }, { name: 'mm.0.bias', shape: [V.proj] });
  t.push({ name: 'mm.2.weight', shape: [V.proj, V.proj] }, { name: 'mm.2.bias', shape: [V.proj] });
  return t;
}

async function ensureTower(dir, type, log) {
  const { GGUFWriter } = lib('gguf/writer.js');
  const { GGMLType, tensorBytes } = lib('gguf/constants.js');
  const { native } = lib('native.js');
  const path = join(dir, `clip-vit-l-336-random-${type}-v${MODEL_VERSION}.gguf`);
  if (existsSync(path)) return path;
  mkdirSync(dir, { recursive: true });
  log(`making ${path} (ViT-L/14-336, 23 layers, random weights, ${type}; once) ...`);
  const started = Date.now();
  const wtype = { f16: GGMLType.F16, q8_0: GGMLType.Q8_0, f32: GGMLType.F32, bf16: GGMLType.BF16 }[type];
  const w = new GGUFWriter();
  w.addKV('general.architecture', 'clip');
  w.addKV('general.name', 'healthgpt bench: random CLIP ViT-L/14-336 (not a trained model)');
  w.addKV('clip.has_text_encoder', false);
  w.addKV('clip.has_vision_encoder', true);
  w.addKV('clip.has_llava_projector', true);
  w.addKV('clip.projector_type', 'mlp');
  w.addKV('clip.use_gelu', false);
  w.addKV('clip.vision.image_size', V.image, 'u32');
  w.addKV('clip.vision.patch_size', V.patch, 'u32');
  w.addKV('clip.vision.embedding_length', V.width, 'u32');
  w.addKV('clip.vision.feed_forward_length', V.ff, 'u32');
  w.addKV('clip.vision.projection_dim', V.proj, 'u32');
  w.addKV('clip.vision.attention.head_count', V.heads, 'u32');
  w.addKV('clip.vision.attention.layer_norm_epsilon', 1e-5, 'f32');
  w.addKV('clip.vision.block_count', V.layers, 'u32');
  w.addKV('clip.vision.feature_layer', Int32Array.of(V.layers));
  w.addKV('clip.vision.generation_feature_layer', 1, 'u32');
  w.addKV('clip.vision.image_mean', Float32Array.of(0.48145466, 0.4578275, 0.40821073));
  w.addKV('clip.vision.image_std', Float32Array.of(0.26862954, 0.26130258, 0.27577711));
  const tensors = towerTensors();
  tensors.forEach((t, i) => {
    const n = t.shape.reduce((a, b) => a * b, 1);
    if (t.shape.length === 1) {
      const f = new Float32Array(n);
      fillRandom(f, 1000 + i, 0.1);
      if (t.norm) for (let k = 0; k < n; k++) f[k] += 1;
      w.addTensor(t.name, t.shape, GGMLType.F32, new Uint8Array(f.buffer));
      return;
    }
    // the conv and the position table stay f16 in a q8_0 file, as llama.cpp's quantizer leaves them
    const tt = t.conv && wtype === GGMLType.Q8_0 ? GGMLType.F16 : wtype;
    w.addTensor(t.name, t.shape, tt, () => {
      const f = new Float32Array(n);
      fillRandom(f, (i + 1) * 1_000_003, 1 / Math.sqrt(t.shape[0]));
      if (tt === GGMLType.F32) return new Uint8Array(f.buffer);
      const rowLen = t.conv && t.shape.length === 4 ? t.shape[0] * t.shape[1] * t.shape[2] : t.shape[0];
      const out = Buffer.allocUnsafe(tensorBytes(tt, t.shape));
      const rows = n / rowLen,
        rowBytes = out.length / rows;
      const step = Math.max(1, Math.floor((4 << 20) / rowLen));
      for (let r = 0; r < rows; r += step) {
        const m = Math.min(step, rows - r);
        native()
          .quantizeRow(tt, f.subarray(r * rowLen, (r + m) * rowLen))
          .copy(out, r * rowBytes);
      }
      return out;
    });
  });
  await w.write(path);
  log(`  done in ${((Date.now() - started) / 1000).toFixed(0)} s, ${(statSync(path).size / 1e9).toFixed(2)} GB`);
  return path;
}

// ---------------------------------------------------------------------------------------------
// timing

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

async function timeIt(repeats, fn) {
  await fn(); // warm-up: page the weights in, spin the pool up
  const ms = [];
  for (let i = 0; i < repeats; i++) {
    const t0 = process.hrtime.bigint();
    await fn();
    ms.push(Number(process.hrtime.bigint() - t0) / 1e6);
  }
  return { ms: median(ms), runs: ms };
}

async function main() {
  const o = parseArgs(process.argv.slice(2));
  const log = o.json ? () => {} : (s) => console.error(s);
  const { VisionTower } = lib('vision/clip.js');
  const pixels = new Float32Array(3 * V.image * V.image);
  fillRandom(pixels, 42, 1);
  const results = [];
  for (const type of o.types) {
    const path = await ensureTower(o.cache, type, log);
    const t0 = process.hrtime.bigint();
    const tower = await VisionTower.load(path, { threads: o.threads });
    const loadMs = Number(process.hrtime.bigint() - t0) / 1e6;
    try {
      let features;
      const rows = [];
      for (const tap of ['comprehension', 'generation']) {
        const layers = tap === 'comprehension' ? tower.info.comprehensionLayer : tower.info.generationLayer;
        log(`  ${type} ${tap} tap (${layers} layers) ...`);
        const r = await timeIt(o.repeats, async () => {
          features = await tower.encode(pixels, { tap });
        });
        const flops = encodeFlops(layers);
        rows.push({ what: `encode ${tap}`, layers, ms: r.ms, runs: r.runs, gflop: flops / 1e9, gflops: flops / 1e9 / (r.ms / 1e3) });
      }
      const r = await timeIt(o.repeats, () => tower.project(features, 'comprehension'));
      rows.push({ what: 'project (mlp2x_gelu 1024->3072->3072)', layers: 0, ms: r.ms, runs: r.runs, gflop: PROJECT_FLOPS / 1e9, gflops: PROJECT_FLOPS / 1e9 / (r.ms / 1e3) });
      // the engine's matmul alone at the widest layer shape (ffn_up: 4096 x 1024, 577 columns):
      // the ceiling an encode made of such matmuls can reach with today's kernels
      const { native } = lib('native.js');
      const { GGMLType } = lib('gguf/constants.js');
      const mmType = { f16: GGMLType.F16, q8_0: GGMLType.Q8_0, f32: GGMLType.F32, bf16: GGMLType.BF16 }[type];
      const mm = median(await native().benchMatmul(mmType, V.ff, V.width, N_POS, o.threads, o.repeats));
      const mmFlops = 2 * V.ff * V.width * N_POS;
      rows.push({ what: 'matmul alone, ffn_up 4096x1024 x 577 cols', layers: 0, ms: mm, runs: [], gflop: mmFlops / 1e9, gflops: mmFlops / 1e9 / (mm / 1e3) });
      results.push({ type, file: path, loadMs, rows });
    } finally {
      tower.dispose();
    }
  }
  const { native } = lib('native.js');
  const report = { bench: 'clip', threads: o.threads, repeats: o.repeats, isa: native().cpu().active, model: 'CLIP ViT-L/14-336, random weights, 23 of 24 layers', results };
  if (o.json) {
    console.log(JSON.stringify(report));
    return;
  }
  console.log(`CLIP ViT-L/14-336 encode, ${o.threads} threads, ${report.isa}, median of ${o.repeats}`);
  console.log('type   what                                     layers     GFLOP      ms   GFLOP/s');
  for (const r of results)
    for (const x of r.rows)
      console.log(`${r.type.padEnd(6)} ${x.what.padEnd(40)} ${String(x.layers).padStart(6)} ${x.gflop.toFixed(1).padStart(9)} ${x.ms.toFixed(0).padStart(7)} ${x.gflops.toFixed(1).padStart(9)}`);
}

main().catch((err) => fail(err.stack || String(err)));
