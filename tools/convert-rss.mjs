#!/usr/bin/env node
// Measures `healthgpt convert --llm` on a Phi-3-mini-shaped F16 checkpoint (random weights,
// ~7.6 GB in two safetensors shards, as microsoft/Phi-3-mini-4k-instruct ships): peak RSS of
// the converting process (/usr/bin/time -v) and its wall time, then deletes everything.
//
//   npx tsc -p tsconfig.json && node tools/convert-rss.mjs [--type q4_0[,q4_k_m...]] [--dir /tmp/x]
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, openSync, rmSync, writeFileSync, writeSync, closeSync, statSync } from 'node:fs';
import { join } from 'node:path';

const arg = (name, dflt) => {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : dflt;
};
const types = arg('--type', 'q4_0').split(',');
const dir = arg('--dir', '/tmp/healthgpt-convert-rss');
const root = join(import.meta.dirname, '..');
const H = 3072,
  F = 8192,
  L = 32,
  V = 32064;

// Phi-3-mini-4k-instruct's config.json fields that matter
const config = {
  architectures: ['Phi3ForCausalLM'],
  model_type: 'phi3',
  vocab_size: V,
  hidden_size: H,
  intermediate_size: F,
  num_hidden_layers: L,
  num_attention_heads: 32,
  num_key_value_heads: 32,
  max_position_embeddings: 4096,
  original_max_position_embeddings: 4096,
  rms_norm_eps: 1e-5,
  rope_theta: 10000.0,
  rope_scaling: null,
  sliding_window: 2047,
  tie_word_embeddings: false,
  bos_token_id: 1,
  eos_token_id: 32000,
  torch_dtype: 'float16',
};
const tensors = [['model.embed_tokens.weight', [V, H]]];
for (let i = 0; i < L; i++) {
  const p = `model.layers.${i}.`;
  tensors.push(
    [p + 'input_layernorm.weight', [H]],
    [p + 'self_attn.qkv_proj.weight', [3 * H, H]],
    [p + 'self_attn.o_proj.weight', [H, H]],
    [p + 'post_attention_layernorm.weight', [H]],
    [p + 'mlp.gate_up_proj.weight', [2 * F, H]],
    [p + 'mlp.down_proj.weight', [H, F]],
  );
}
tensors.push(['model.norm.weight', [H]], ['lm_head.weight', [V, H]]);

// 16 MiB of f16 values near N(0, 0.02) (a sum of uniforms), repeated with a shifting start
const POOL = 8 * 1024 * 1024;
const pool = new Uint16Array(POOL);
let s = 12345;
const rnd = () => (s = (s * 1103515245 + 12345) >>> 0) / 4294967296;
const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);
for (let i = 0; i < POOL; i++) {
  f32[0] = (rnd() + rnd() + rnd() - 1.5) * 0.04;
  const x = u32[0];
  const e = ((x >>> 23) & 0xff) - 127 + 15;
  pool[i] = ((x >>> 16) & 0x8000) | (e <= 0 ? 0 : (e << 10) | ((x >>> 13) & 0x3ff));
}
const poolBytes = new Uint8Array(pool.buffer);

function writeShard(path, list) {
  const header = {};
  let at = 0;
  for (const [name, shape] of list) {
    const n = shape.reduce((a, b) => a * b, 1) * 2;
    header[name] = { dtype: 'F16', shape, data_offsets: [at, at + n] };
    at += n;
  }
  let h = Buffer.from(JSON.stringify(header));
  h = Buffer.concat([h, Buffer.alloc((8 - (h.length % 8)) % 8, 0x20)]);
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(h.length));
  const fd = openSync(path, 'w');
  writeSync(fd, len);
  writeSync(fd, h);
  let k = 0;
  for (const [, shape] of list) {
    let n = shape.reduce((a, b) => a * b, 1) * 2;
    while (n > 0) {
      const start = (k++ * 4099 * 2) % (poolBytes.length / 2);
      const len = Math.min(n, poolBytes.length - start);
      writeSync(fd, poolBytes, start, len);
      n -= len;
    }
  }
  closeSync(fd);
  return Object.fromEntries(list.map(([name]) => [name, path.split('/').pop()]));
}

rmSync(dir, { recursive: true, force: true });
const model = join(dir, 'model');
mkdirSync(model, { recursive: true });
writeFileSync(join(model, 'config.json'), JSON.stringify(config, null, 1));
for (const f of ['tokenizer.model', 'tokenizer_config.json']) copyFileSync(join(root, 'test/fixtures/convert/model', f), join(model, f));
const half = 1 + 16 * 6; // embeddings and the first 16 layers in shard 1
let t0 = Date.now();
const map = {
  ...writeShard(join(model, 'model-00001-of-00002.safetensors'), tensors.slice(0, half)),
  ...writeShard(join(model, 'model-00002-of-00002.safetensors'), tensors.slice(half)),
};
writeFileSync(join(model, 'model.safetensors.index.json'), JSON.stringify({ metadata: {}, weight_map: map }));
const inBytes = statSync(join(model, 'model-00001-of-00002.safetensors')).size + statSync(join(model, 'model-00002-of-00002.safetensors')).size;
console.log(`wrote ${(inBytes / 1e9).toFixed(2)} GB of F16 safetensors in ${((Date.now() - t0) / 1000).toFixed(0)} s`);

for (const type of types) {
  const out = join(dir, `phi3-mini.${type}.gguf`);
  t0 = Date.now();
  const r = spawnSync('/usr/bin/time', ['-v', process.execPath, join(root, 'bin', 'healthgpt.js'), 'convert', '--llm', model, '-o', out, '--type', type], {
    encoding: 'utf8',
    env: { ...process.env, HEALTHGPT_NO_PROGRESS: '1' },
  });
  const wall = (Date.now() - t0) / 1000;
  const rss = /Maximum resident set size \(kbytes\): (\d+)/.exec(r.stderr);
  process.stdout.write(r.stdout);
  if (r.status !== 0) process.stderr.write(r.stderr);
  const outBytes = r.status === 0 ? statSync(out).size : 0;
  console.log(
    JSON.stringify({
      type,
      input_gb: +(inBytes / 1e9).toFixed(2),
      output_gb: +(outBytes / 1e9).toFixed(2),
      wall_s: +wall.toFixed(1),
      peak_rss_mb: rss ? Math.round(Number(rss[1]) / 1024) : null,
      status: r.status,
    }),
  );
  rmSync(out, { force: true });
}
rmSync(dir, { recursive: true, force: true });
