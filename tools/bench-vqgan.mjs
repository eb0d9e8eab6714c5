#!/usr/bin/env node
// node tools/bench-vqgan.mjs [--json] [--threads N] [--repeats N] [--types f32,f16] [--cache DIR]
//
// VQGAN decode speed at HealthGPT's geometry (taming GumbelVQ f8: 1024 indices -> 256x256,
// ch 128, ch_mult 1,1,2,4, 2 res blocks, attention at 32) with random weights, F32 and F16:
// seconds per decode (median of --repeats after one warm-up) and GFLOP/s, counting 2 FLOPs
// per multiply-add of every convolution (3x3, 1x1, post_quant_conv, the upsample convs) and of
// both attention products (scores and weighted values); norms, swish and softmax not counted.
//
// Also the process's CPU time per decode (user + system, all threads) and GFLOP per CPU-second,
// a figure other load on a shared machine disturbs less than the wall clock.
//
// Against two ceilings, both printed:
//  - peak: cores x clock x FLOPs per cycle of the active ISA (/proc/cpuinfo "cpu MHz"; 2 FMA
//    ports x 16 f32 lanes x 2 for AVX-512, x 8 lanes for AVX2, 2 for scalar): a paper figure;
//  - matmul: this engine's own hg::matmul measured (benchMatmul) on the shape of a 3x3
//    128->128 conv chunk (rows 128, k 1152, n 4096), the rate the convolutions could reach.
//
// The decoder-only GGUF files (162 MB f32, 81 MB f16) are made once into --cache
// (default ~/.cache/healthgpt/bench-vqgan). The library comes from dist/ (npx tsc -p .).
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { availableParallelism, homedir } from 'node:os';
import { join } from 'node:path';
import { benchCli } from './bench-cli.mjs';

const USAGE = `usage: node tools/bench-vqgan.mjs [options]
  --json          one JSON object instead of the table
  --threads N     decoder threads (default ${availableParallelism()}, one per core)
  --repeats N     timed decodes per type, the median reported (default 3)
  --types LIST    f32,f16 (default both)
  --cache DIR     where the random-weight files are kept (default ~/.cache/healthgpt/bench-vqgan)`;
const { fail, lib, parse } = benchCli('bench-vqgan', USAGE);

function parseArgs(argv) {
  const o = parse(argv, { json: false, threads: availableParallelism(), repeats: 3, types: 'f32,f16', cache: join(homedir(), '.cache', 'healthgpt', 'bench-vqgan') }, ['threads', 'repeats']);
  o.types = o.types.split(',');
  for (const t of o.types) if (t !== 'f32' && t !== 'f16') fail(`--types: unknown type '${t}' (f32, f16)`);
  return o;
}

// The released model.yaml's decoder.
const CFG = { ch: 128, chMult: [1, 1, 2, 4], numResBlocks: 2, attnResolutions: [32], zChannels: 256, resolution: 256, inChannels: 3, outCh: 3, embedDim: 256, nEmbed: 8192 };

// The decoder's tensors (taming's state_dict keys, torch shapes) and its FLOPs, walked as
// taming's Decoder builds and runs it.
function decoder(c) {
  const tensors = [];
  let flops = 0;
  const L = c.chMult.length;
  let res = c.resolution >> (L - 1);
  const conv = (p, ci, co, k, r) => {
    tensors.push({ name: `${p}.weight`, shape: [co, ci, k, k] }, { name: `${p}.bias`, shape: [co] });
    flops += 2 * r * r * co * ci * k * k;
  };
  const norm = (p, ch) => tensors.push({ name: `${p}.weight`, shape: [ch], norm: true }, { name: `${p}.bias`, shape: [ch], norm: true });
  const resblock = (p, ci, co, r) => {
    norm(`${p}.norm1`, ci);
    conv(`${p}.conv1`, ci, co, 3, r);
    norm(`${p}.norm2`, co);
    conv(`${p}.conv2`, co, co, 3, r);
    if (ci !== co) conv(`${p}.nin_shortcut`, ci, co, 1, r);
  };
  const attn = (p, ch, r) => {
    norm(`${p}.norm`, ch);
    for (const n of ['q', 'k', 'v', 'proj_out']) conv(`${p}.${n}`, ch, ch, 1, r);
    flops += 2 * 2 * (r * r) * (r * r) * ch; // q.k over all pairs, then the weighted sum of v
  };
  tensors.push({ name: 'quantize.embed.weight', shape: [c.nEmbed, c.embedDim], codebook: true });
  conv('post_quant_conv', c.embedDim, c.zChannels, 1, res);
  let bi = c.ch * c.chMult[L - 1];
  conv('decoder.conv_in', c.zChannels, bi, 3, res);
  resblock('decoder.mid.block_1', bi, bi, res);
  attn('decoder.mid.attn_1', bi, res);
  resblock('decoder.mid.block_2', bi, bi, res);
  for (let lv = L - 1; lv >= 0; lv--) {
    const bo = c.ch * c.chMult[lv];
    for (let ib = 0; ib <= c.numResBlocks; ib++) {
      resblock(`decoder.up.${lv}.block.${ib}`, bi, bo, res);
      bi = bo;
      if (c.attnResolutions.includes(res)) attn(`decoder.up.${lv}.attn.${ib}`, bi, res);
    }
    if (lv !== 0) {
      res *= 2;
      conv(`decoder.up.${lv}.upsample.conv`, bi, bi, 3, res);
    }
  }
  norm('decoder.norm_out', bi);
  conv('decoder.conv_out', bi, c.outCh, 3, res);
  return { tensors, flops };
}

// xorshift32 uniform values with a given bound (a default-init-like scale keeps the
// activations O(1), so no denormals or overflow skew the timing).
function fillUniform(out, seed, bound, offset = 0) {
  let s = seed >>> 0 || 0x9e3779b9;
  const scale = bound / 2147483648;
  for (let i = 0; i < out.length; i++) {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    out[i] = offset + (s | 0) * scale;
  }
}

async function makeFile(path, type) {
  const { GGUFWriter } = lib('gguf/writer.js');
  const { native } = lib('native.js');
  const { GGMLType } = lib('gguf/constants.js');
  const w = new GGUFWriter();
  w.addKV('general.architecture', 'vqgan');
  w.addKV('general.name', 'healthgpt bench: random VQGAN decoder (not a trained model)');
  for (const [k, v] of Object.entries({
    ch: CFG.ch,
    num_res_blocks: CFG.numResBlocks,
    z_channels: CFG.zChannels,
    resolution: CFG.resolution,
    in_channels: CFG.inChannels,
    out_ch: CFG.outCh,
    embed_dim: CFG.embedDim,
    n_embed: CFG.nEmbed,
  }))
    w.addKV(`vqgan.${k}`, v, 'u32');
  w.addKV('vqgan.ch_mult', { type: 'i32', value: CFG.chMult });
  w.addKV('vqgan.attn_resolutions', { type: 'i32', value: CFG.attnResolutions });
  const { tensors } = decoder(CFG);
  tensors.forEach((t, i) => {
    const dims = [...t.shape].reverse();
    const n = t.shape.reduce((a, b) => a * b, 1);
    const matrix = t.shape.length > 1;
    const typeId = matrix && type === 'f16' ? GGMLType.F16 : GGMLType.F32;
    w.addTensor(t.name, dims, typeId, () => {
      const v = new Float32Array(n);
      if ('norm' in t && t.norm) fillUniform(v, 7 + i, 0.1, t.name.endsWith('.weight') ? 1 : 0);
      else if (t.codebook) fillUniform(v, 7 + i, 1);
      else if (matrix)
        fillUniform(v, 7 + i, 1 / Math.sqrt(t.shape.slice(1).reduce((a, b) => a * b, 1))); // 1/sqrt(fan_in)
      else fillUniform(v, 7 + i, 0.1); // conv bias
      const f32 = new Uint8Array(v.buffer);
      return typeId === GGMLType.F32 ? f32 : native().quantizeRow(GGMLType.F16, v);
    });
  });
  await w.write(path);
}

function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

function peakGflops(isa, threads) {
  const perCycle = isa === 'avx512' ? 64 : isa === 'avx2' ? 32 : 2;
  let mhz = NaN;
  try {
    const m = readFileSync('/proc/cpuinfo', 'utf8').match(/cpu MHz\s*:\s*([\d.]+)/);
    if (m) mhz = Number(m[1]);
  } catch {
    // not Linux: no paper peak
  }
  return { mhz, perCycle, gflops: (mhz / 1000) * perCycle * threads };
}

async function main() {
  const o = parseArgs(process.argv.slice(2));
  const { Vqgan } = lib('vqgan/decoder.js');
  const { native } = lib('native.js');
  const { GGMLType } = lib('gguf/constants.js');
  const log = (...a) => (o.json ? console.error(...a) : console.log(...a));
  mkdirSync(o.cache, { recursive: true });
  const { flops, tensors } = decoder(CFG);
  const params = tensors.reduce((s, t) => s + t.shape.reduce((a, b) => a * b, 1), 0);
  const cpu = native().cpu();
  const peak = peakGflops(cpu.active, o.threads);

  const rows = [];
  for (const type of o.types) {
    const path = join(o.cache, `vqgan-f8-random-${type}-v1.gguf`);
    if (!existsSync(path)) {
      log(`making ${path} (random weights, once) ...`);
      await makeFile(path, type);
    }
    const vq = await Vqgan.load(path, { threads: o.threads });
    const idx = new Int32Array(1024);
    for (let i = 0; i < idx.length; i++) idx[i] = (i * 2654435761) % CFG.nEmbed;
    await vq.decode(idx); // warm-up: first-touch of the weights and buffers
    const secs = [];
    const cpus = [];
    for (let r = 0; r < o.repeats; r++) {
      const c0 = process.cpuUsage();
      const t0 = process.hrtime.bigint();
      await vq.decode(idx);
      secs.push(Number(process.hrtime.bigint() - t0) / 1e9);
      const c = process.cpuUsage(c0);
      cpus.push((c.user + c.system) / 1e6);
    }
    vq.dispose();
    // the kernel the convolutions run on, at a conv chunk's shape, same type and threads
    const mm = await native().benchMatmul(type === 'f16' ? GGMLType.F16 : GGMLType.F32, 128, 1152, 4096, o.threads, 3);
    const mmGflops = (2 * 128 * 1152 * 4096) / (median(mm) / 1e3) / 1e9;
    const s = median(secs);
    const cpu_s = median(cpus);
    rows.push({
      type,
      seconds: s,
      all_seconds: secs,
      cpu_seconds: cpu_s,
      gflop_per_cpu_second: flops / cpu_s / 1e9,
      gflop: flops / 1e9,
      gflops: flops / s / 1e9,
      matmul_gflops: mmGflops,
      of_matmul: flops / s / 1e9 / mmGflops,
      of_peak: flops / s / 1e9 / peak.gflops,
    });
  }

  const result = {
    geometry: '1024 indices -> 3x256x256',
    params,
    gflop_per_decode: flops / 1e9,
    threads: o.threads,
    isa: cpu.active,
    cpu_mhz: peak.mhz,
    peak_gflops: peak.gflops,
    peak_note: `${o.threads} threads x ${peak.mhz} MHz x ${peak.perCycle} FLOP/cycle (${cpu.active})`,
    rows,
  };
  if (o.json) {
    console.log(JSON.stringify(result, null, 2));
    return;
  }
  console.log(`VQGAN decode, ${result.geometry}, ${(params / 1e6).toFixed(1)}M decoder parameters, ${result.gflop_per_decode.toFixed(1)} GFLOP per decode, ${o.threads} threads, ISA ${cpu.active}`);
  console.log(`peak ${peak.gflops.toFixed(0)} GFLOP/s = ${result.peak_note}; matmul = hg::matmul measured at 128x1152x4096\n`);
  console.log('type   seconds (median)   GFLOP/s   matmul GFLOP/s   of matmul   of peak   CPU-s   GFLOP per CPU-s');
  for (const r of rows)
    console.log(
      `${r.type.padEnd(6)} ${r.seconds.toFixed(2).padStart(16)}   ${r.gflops.toFixed(1).padStart(7)}   ${r.matmul_gflops.toFixed(1).padStart(14)}   ${(100 * r.of_matmul).toFixed(0).padStart(8)}%   ${(100 * r.of_peak).toFixed(1).padStart(6)}%   ${r.cpu_seconds.toFixed(1).padStart(5)}   ${r.gflop_per_cpu_second.toFixed(1).padStart(15)}`,
    );
  console.log("\nCPU-s: the process's user + system time per decode; GFLOP per CPU-s stays meaningful when other work shares the cores.");
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
