#!/usr/bin/env node
// node tools/bench-batch.mjs [--json] [--threads N] [--tokens N] [--image-tokens N] [--streams 1,2,4,8]
//                            [--repeats N] [--kv-type f16|q8_0] [--tiny] [--cache DIR]
//
// Concurrent requests decoded together (LanguageModel's scheduler: one pass over the weights
// per step for every active sequence, lib/model/scheduler.ts), on the Phi-3-mini-shaped random
// Q4_0 model with HealthGPT's vocabulary and random plugins of M3's shapes (the files of
// tools/bench-generate.mjs and bench-hlora.mjs, made once into the cache):
//   - streams: 1, 2, 4, 8 concurrent generations with the base model (32-token prompts,
//     --tokens each), the aggregate decode tokens/s and its ratio to one stream's;
//   - mixed: 4 streams with different plugins in one batch (comprehension, generation,
//     comprehension, generation);
//   - images: 4 image generations at once against one: the generation plugin decoding <idx_k>
//     tokens under the image-token mask from a report2cxr prompt, as generateImage runs it.
//     A full image is 1024 tokens; --image-tokens (default 64) are decoded per image to keep
//     the run short, and the rate is the same steps' (the batch's cost per step does not grow
//     with the position at these lengths).
// Aggregate tokens/s = the sum of each stream's decode rate over the window in which every
// stream is decoding (aggregateRate: the prompts' prefill excluded, it is reported apart). Each case runs
// in a child process of its own, so its peak RSS (VmHWM: weights, plugins, KV caches) is its
// own; "x one" is its ratio to the group's one-stream case, "x alone" to its last request run
// alone just before and after it in the same process (steadier on a shared machine). --tiny: a small F32 model (seconds; a check that everything runs, not a speed).
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { availableParallelism, homedir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { benchCli } from './bench-cli.mjs';
import { ensureHealthGPTVocabModel, ensurePlugin, ensureTinyHealthGPTVocabModel } from './bench-model.mjs';

const USAGE = `usage: node tools/bench-batch.mjs [options]
  --json            print one JSON object instead of the table
  --threads N       threads (default: ${availableParallelism()}, one per core)
  --tokens N        tokens each text stream decodes (default 32)
  --image-tokens N  image tokens each image generation decodes (default 64; a full image is 1024)
  --streams LIST    concurrent text streams to measure (default 1,2,4,8)
  --repeats N       runs of each case, the median reported (default 1)
  --kv-type TYPE    the KV cache's type: f16 (default), f32 or q8_0
  --tiny            a small F32 model with HealthGPT's vocabulary (a check that it runs)
  --cache DIR       where the random model and plugins are kept (default ~/.cache/healthgpt/bench)`;
const { fail, lib, parse } = benchCli('bench-batch', USAGE);

const PROMPT = 32;

function parseArgs(argv) {
  const o = parse(
    argv,
    {
      json: false,
      tiny: false,
      threads: availableParallelism(),
      tokens: 32,
      'image-tokens': 64,
      streams: '1,2,4,8',
      repeats: 1,
      'kv-type': 'f16',
      cache: join(homedir(), '.cache', 'healthgpt', 'bench'),
      case: undefined,
    },
    ['threads', 'tokens', 'image-tokens', 'repeats'],
  );
  o.streamList = o.streams.split(',').map(Number);
  if (o.streamList.some((n) => !Number.isInteger(n) || n < 1 || n > 64)) fail(`--streams must list integers in 1..64, got ${o.streams}`);
  if (!['f16', 'f32', 'q8_0'].includes(o['kv-type'])) fail(`--kv-type must be f16, f32 or q8_0, got ${o['kv-type']}`);
  if (o.tokens < 2 || o['image-tokens'] < 2) fail('--tokens and --image-tokens must be at least 2 (the rate is over the steps between tokens)');
  return o;
}

/** Peak resident memory of this process, MB (VmHWM). */
function peakRssMb() {
  const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync('/proc/self/status', 'utf8'));
  return m ? Number(m[1]) / 1024 : process.resourceUsage().maxRSS / 1024;
}

/** Distinct token ids (no specials) so no request reuses another's prefix. */
function tokens(n, seed) {
  let x = seed * 2654435761;
  return Array.from({ length: n }, () => {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    return 300 + (x % 20000);
  });
}

/**
 * Aggregate decode tokens/s of streams decoded together, from each stream's token timestamps:
 * over the window in which every stream is decoding (from the last stream's first token to the
 * first stream's last), the sum of each stream's own rate there. Prompts that did not fit one
 * step (four image prompts) reach their first token a step or two apart; those steps carry a
 * prompt chunk and are left out, as is the tail where some streams have finished.
 */
function aggregateRate(stamps) {
  const from = Math.max(...stamps.map((s) => s[0]));
  const to = Math.min(...stamps.map((s) => s[s.length - 1]));
  let sum = 0;
  for (const s of stamps) {
    // this stream's tokens in the window: its own first and last there bound its steps
    const inside = s.filter((t) => t >= from && t <= to);
    const a = inside.length >= 2 ? inside : s;
    sum += ((a.length - 1) * 1000) / (a[a.length - 1] - a[0]);
  }
  return sum;
}

/** Child: one case, one line of JSON on stdout. */
async function runCase(c, o) {
  const { LanguageModel } = lib('model/model.js');
  const { findImageTokens, imageTokenMask } = lib('generate/image-tokens.js');
  const { renderChat, PHI3_INSTRUCT } = lib('prompt/template.js');
  const { taskMessage } = lib('generate/tasks.js');
  const t0 = performance.now();
  const model = await LanguageModel.load(c.model, { threads: o.threads, contextSize: 256 + c.tokens, sequences: c.plugins.length, plugins: c.pluginFiles, kvType: o['kv-type'] });
  const loadMs = performance.now() - t0;
  let requests;
  if (c.images) {
    const ids = findImageTokens(model.tokenizer.vocab.tokenToId);
    const text =
      renderChat(PHI3_INSTRUCT, [{ role: 'user', content: taskMessage('report2cxr', { hasImage: false, report: 'No acute cardiopulmonary process. Heart size is normal.' }) }]) + '<start_index>';
    const prompt = model.tokenize(text, { special: true, prefixStyle: 'hf-slow' });
    // one salt token per image: the prompts differ, as different reports would
    requests = c.plugins.map((plugin, i) => {
      const p = [...prompt.slice(0, -1), ids.firstIndex + i, ids.start];
      return { prompt: p, options: { plugin, logitMask: imageTokenMask(ids, p.length, c.tokens) } };
    });
  } else requests = c.plugins.map((plugin, i) => ({ prompt: tokens(PROMPT, i + 1), options: { plugin: plugin ?? undefined } }));
  /** The requests at once: aggregate decode tok/s and the time to the first tokens. */
  const together = async (rs, maxTokens = c.tokens) => {
    const start = performance.now();
    const stamps = await Promise.all(
      rs.map(async (r) => {
        const s = [];
        for await (const _ of model.generate(r.prompt, { ...r.options, maxTokens, stopTokens: [], temperature: 0 })) s.push(performance.now());
        return s;
      }),
    );
    return { tokS: aggregateRate(stamps), prefillMs: Math.min(...stamps.map((s) => s[0])) - start };
  };
  // first passes fault the weights and adapters in: a few tokens with each plugin, untimed
  for (const plugin of new Set(c.plugins)) await together([{ prompt: tokens(8, 1000), options: { plugin: plugin ?? undefined } }], 4);
  // a shared machine's speed drifts between processes: the batch is also compared with its last
  // request alone, run just before and just after it in this process
  const alone = c.plugins.length > 1 ? [await together(requests.slice(-1))] : [];
  const batch = await together(requests);
  if (alone.length) alone.push(await together(requests.slice(-1)));
  model.dispose();
  const aloneTokS = alone.length ? (alone[0].tokS + alone[1].tokS) / 2 : null;
  return { tok_s: batch.tokS, prefill_ms: batch.prefillMs, alone_tok_s: aloneTokS, load_ms: loadMs, peak_rss_mb: peakRssMb() };
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

async function main() {
  const argv = process.argv.slice(2);
  const o = parseArgs(argv);
  if (o.case) {
    process.stdout.write(`${JSON.stringify(await runCase(JSON.parse(o.case), o))}\n`);
    return;
  }
  const log = o.json ? (m) => console.error(m) : (m) => console.log(m);
  const { M3_COMPREHENSION, M3_GENERATION } = lib('synthetic/hlora.js');
  const m = o.tiny ? await ensureTinyHealthGPTVocabModel(lib, o.cache, log) : await ensureHealthGPTVocabModel(lib, o.cache, log);
  const pluginFiles = {
    comprehension: await ensurePlugin(lib, o.cache, m.shape, M3_COMPREHENSION, log),
    generation: await ensurePlugin(lib, o.cache, m.shape, M3_GENERATION, log),
  };
  const cases = [
    ...o.streamList.map((n) => ({ name: `${n} stream${n > 1 ? 's' : ''}`, group: 'streams', n, plugins: Array(n).fill(null), tokens: o.tokens, pluginFiles: {} })),
    { name: '1 stream, generation plugin', group: 'mixed', n: 1, plugins: ['generation'], tokens: o.tokens, pluginFiles },
    { name: '4 streams: com, gen, com, gen', group: 'mixed', n: 4, plugins: ['comprehension', 'generation', 'comprehension', 'generation'], tokens: o.tokens, pluginFiles },
    { name: '1 image', group: 'images', n: 1, images: true, plugins: ['generation'], tokens: o['image-tokens'], pluginFiles: { generation: pluginFiles.generation } },
    { name: '4 images', group: 'images', n: 4, images: true, plugins: Array(4).fill('generation'), tokens: o['image-tokens'], pluginFiles: { generation: pluginFiles.generation } },
  ];
  const self = fileURLToPath(import.meta.url);
  const rows = [];
  for (const c of cases) {
    const runs = [];
    for (let r = 0; r < o.repeats; r++) {
      const child = spawnSync(process.execPath, [self, '--threads', String(o.threads), '--kv-type', o['kv-type'], '--case', JSON.stringify({ ...c, model: m.path })], {
        encoding: 'utf8',
        maxBuffer: 1 << 20,
      });
      if (child.status !== 0) fail(`case "${c.name}" failed:\n${child.stderr}`);
      runs.push(JSON.parse(child.stdout.trim().split('\n').pop() ?? ''));
    }
    const row = {
      case: c.name,
      group: c.group,
      streams: c.n,
      tokens_each: c.tokens,
      tok_s: median(runs.map((x) => x.tok_s)),
      // the batch against its last request alone in the same process (1 for one stream)
      vs_alone: c.n > 1 ? median(runs.map((x) => x.tok_s / x.alone_tok_s)) : 1,
      prefill_ms: median(runs.map((x) => x.prefill_ms)),
      peak_rss_mb: Math.max(...runs.map((x) => x.peak_rss_mb)),
    };
    rows.push(row);
    log(`  ${c.name}: ${row.tok_s.toFixed(2)} tok/s (x${row.vs_alone.toFixed(2)} its last request alone), peak RSS ${row.peak_rss_mb.toFixed(0)} MB`);
  }
  // each group's ratio to its one-stream case (separate processes: on a busy machine, vs_alone is the steadier figure)
  for (const r of rows) {
    const one = rows.find((x) => x.group === r.group && x.streams === 1);
    r.vs_one = one ? r.tok_s / one.tok_s : null;
  }
  const result = { model: m.path, plugins: pluginFiles, threads: o.threads, kv_type: o['kv-type'], image_tokens_per_image: o['image-tokens'], full_image_tokens: 1024, results: rows };
  if (o.json) {
    console.log(JSON.stringify(result, null, 2));
    return;
  }
  console.log(`concurrent decoding, ${o.threads} threads, ${o['kv-type']} KV cache (${m.path}); images: ${o['image-tokens']} of 1024 tokens each`);
  const table = [
    ['case', 'aggregate tok/s', 'x one', 'x alone', 'prefill ms', 'peak RSS MB'],
    ...rows.map((r) => [r.case, r.tok_s.toFixed(2), r.vs_one === null ? '' : r.vs_one.toFixed(2), r.vs_alone.toFixed(2), r.prefill_ms.toFixed(0), r.peak_rss_mb.toFixed(0)]),
  ];
  const widths = table[0].map((_, i) => Math.max(...table.map((row) => row[i].length)));
  for (const row of table) console.log(row.map((cell, i) => (i ? cell.padStart(widths[i]) : cell.padEnd(widths[i]))).join('  '));
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
