// `healthgpt demo` (lib/cli/demo.ts, lib/cli/demo-release.ts): the whole pipeline on the tiny
// random HealthGPT: written and converted once into the cache, one question, one generation.
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { DEMO_RELEASE_VERSION, runDemoPipeline } from '../lib/cli/demo-release.js';
import { SYNTHETIC_RELEASE } from '../lib/synthetic/release.js';
import { cli, tempDir } from './helpers.js';

describe('the demo pipeline', () => {
  const cache = tempDir('healthgpt-demo-');

  it('makes the tiny release, answers one question and generates 1024 valid image tokens and a 256 x 256 PNG', async () => {
    const lines: string[] = [];
    const ticks: number[] = [];
    const r = await runDemoPipeline({
      cache,
      threads: 2,
      say: (l) => lines.push(l),
      onToken: (done, total) => {
        expect(total).toBe(1024);
        ticks.push(done);
      },
    });
    expect(r.made).toBe(true);
    expect(r.release).toBe(join(cache, `release-v${DEMO_RELEASE_VERSION}`));
    expect(r.manifest.files.map((f) => f.file).sort()).toEqual(['comprehension.gguf', 'generation.gguf', 'model.gguf', 'vision.gguf', 'vqgan.gguf']);

    // the question
    expect(r.answer.answer.trim().length).toBeGreaterThan(0);
    expect(r.answer.tokens.length).toBeGreaterThan(0);
    for (const k of ['encode_ms', 'prefill_ms', 'decode_ms'] as const) expect(r.answer.timings[k]).toBeGreaterThan(0);

    // the generation: exactly 1024 indices, each a code of the VQGAN's codebook
    expect(r.codebookSize).toBe(SYNTHETIC_RELEASE.vqgan.n_embed);
    expect(r.image.indices.length).toBe(1024);
    expect(r.image.indices.every((i) => Number.isInteger(i) && i >= 0 && i < r.codebookSize)).toBe(true);
    expect(new Set(r.image.indices).size).toBeGreaterThan(1);
    expect(ticks.length).toBe(1024);
    expect(ticks.at(-1)).toBe(1024);
    for (const k of ['encode_ms', 'prefill_ms', 'decode_ms', 'vqgan_ms'] as const) expect(r.image.timings[k]).toBeGreaterThan(0);

    // both PNGs on disk, decoded by sharp (not our own decoder)
    const out = await sharp(readFileSync(r.outputPng)).raw().toBuffer({ resolveWithObject: true });
    expect([out.info.width, out.info.height, out.info.channels]).toEqual([256, 256, 3]);
    expect(Buffer.from(r.image.rgb).equals(out.data)).toBe(true);
    expect(r.outputPng.startsWith(cache) && r.inputPng.startsWith(cache)).toBe(true);
    const input = await sharp(readFileSync(r.inputPng)).metadata();
    expect([input.width, input.height]).toEqual([256, 256]);

    // what it says: random weights, plainly; the files' places
    const text = lines.join('\n');
    expect(text).toMatch(/wrote and converted it in \d+ ms/);
    expect(text).toMatch(/1024 image tokens, codebook indices \d+\.\.\d+ \(valid: 0\.\.63\)/);
    expect(text).toContain(r.outputPng);
  });

  it('uses the cached conversion the second time (nothing rewritten)', async () => {
    const model = join(cache, `release-v${DEMO_RELEASE_VERSION}-converted`, 'model.gguf');
    const before = statSync(model).mtimeMs;
    const r = await runDemoPipeline({ cache, threads: 2, maxTokens: 4 });
    expect(r.made).toBe(false);
    expect(r.prepare_ms).toBe(0);
    expect(statSync(model).mtimeMs).toBe(before);
    expect(r.image.indices.length).toBe(1024);
  });

  it('refuses a missing cache folder option by code', async () => {
    await expect(runDemoPipeline({ cache: '' })).rejects.toMatchObject({ code: 'ERR_INVALID_ARG' });
  });
});

describe('healthgpt demo (CLI, dist/)', () => {
  it('exits 0 with HEALTHGPT_CACHE set, says the weights are random and where the files are', () => {
    const cache = tempDir('healthgpt-demo-cli-');
    const r = cli(['demo'], { HEALTHGPT_CACHE: cache });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/RANDOM WEIGHTS/);
    expect(r.stdout).toMatch(/not medicine/);
    expect(r.stdout).toMatch(/256 x 256 PNG: .*reconstruct\.png/);
    expect(r.stdout).toContain(`files in ${join(cache, 'demo')}`);
    expect(statSync(join(cache, 'demo', 'reconstruct.png')).size).toBeGreaterThan(0);
  });
});
