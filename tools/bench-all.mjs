#!/usr/bin/env node
// npm run bench [-- --json] [--threads N] [--only lm,hlora,clip,vqgan,generate,batch,dicom]
//
// Every benchmark of the project, one after the other (never two at once: they would share
// the cores), each in its own process so memory figures are its own:
//   lm        tools/bench.mjs           prompt and decode tok/s against llama.cpp (node-llama-cpp)
//   hlora     tools/bench-hlora.mjs     the same with the comprehension (r=64) and generation
//                                       (r=256) plugins; fused against unfused
//   clip      tools/bench-clip.mjs      CLIP ViT-L/14-336 encode at both taps, GFLOP/s
//   vqgan     tools/bench-vqgan.mjs     VQGAN decode at 256x256, GFLOP/s
//   generate  tools/bench-generate.mjs  image-token decode tok/s with the generation plugin
//   batch     tools/bench-batch.mjs     aggregate decode tok/s of 1, 2, 4, 8 concurrent streams,
//                                       mixed plugins, 4 image generations against one; peak RSS
//   dicom     tools/bench-dicom.mjs     decode time of a 512x512 16-bit JPEG 2000 / JPEG-LS / RLE slice
// Options other than --only go to every script. With --json, one object keyed by section.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const tools = dirname(fileURLToPath(import.meta.url));
const SECTIONS = {
  lm: 'bench.mjs',
  hlora: 'bench-hlora.mjs',
  clip: 'bench-clip.mjs',
  vqgan: 'bench-vqgan.mjs',
  generate: 'bench-generate.mjs',
  batch: 'bench-batch.mjs',
  dicom: 'bench-dicom.mjs',
};

const argv = process.argv.slice(2);
let only = Object.keys(SECTIONS);
const i = argv.indexOf('--only');
if (i >= 0) {
  only = (argv[i + 1] ?? '').split(',').filter(Boolean);
  argv.splice(i, 2);
  const bad = only.filter((s) => !(s in SECTIONS));
  if (bad.length || only.length === 0) {
    console.error(`--only takes a comma-separated list of ${Object.keys(SECTIONS).join(', ')}; got ${bad.join(', ') || 'nothing'}`);
    process.exit(2);
  }
}
const json = argv.includes('--json');
const results = {};
let failed = false;
for (const name of only) {
  const script = join(tools, SECTIONS[name]);
  if (!existsSync(script)) {
    results[name] = { skipped: `${SECTIONS[name]} is not in this checkout` };
    continue;
  }
  if (!json) process.stdout.write(`\n=== ${name} (tools/${SECTIONS[name]})\n`);
  const r = spawnSync(process.execPath, [script, ...argv], { stdio: json ? ['ignore', 'pipe', 'inherit'] : 'inherit', encoding: 'utf8', maxBuffer: 64 << 20 });
  if (r.status !== 0) {
    failed = true;
    results[name] = { error: `exit code ${r.status}` };
    if (!json) process.stdout.write(`${name}: failed with exit code ${r.status}\n`);
    continue;
  }
  if (json) {
    try {
      results[name] = JSON.parse(r.stdout);
    } catch {
      results[name] = { error: 'the script printed no JSON object', output: r.stdout.slice(0, 2000) };
      failed = true;
    }
  }
}
if (json) process.stdout.write(JSON.stringify(results, null, 2) + '\n');
process.exit(failed ? 1 : 0);
