/**
 * The demo's pipeline: a tiny random HealthGPT in the released file layouts
 * (lib/synthetic/release.ts), written once into the cache and converted as a user converts the
 * real release (`healthgpt convert --llm --vision --plugins --vqgan -o DIR`), then loaded with
 * HealthGPT.load and run as a user runs it: one question about the bundled example image (a
 * Shepp-Logan phantom drawn in code) and one image generation (reconstruct: CLIP, generation
 * H-LoRA, 1024 image tokens, VQGAN). Random weights: the output shows the pipeline works, it
 * means nothing medically.
 */
import { existsSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { convertHealthGPT, MANIFEST_NAME, type HealthGPTManifest } from '../convert/healthgpt.js';
import { HealthGPTError } from '../errors.js';
import { encodePng } from '../image/encode.js';
import { formatBytes } from './format.js';
import { HealthGPT, type AskResult, type GenerateImageResult } from '../session/healthgpt.js';
import { sheppLogan } from '../synthetic/phantom.js';
import { writeSyntheticRelease } from '../synthetic/release.js';

/** Bump when the synthetic release or the converter's output changes: a fresh cache copy is made. */
export const DEMO_RELEASE_VERSION = 4;

export const DEMO_QUESTION = 'What does this scan show?';

export interface DemoPipelineOptions {
  /** the cache folder; the release, its conversion and the demo's images go in here */
  cache: string;
  /** progress lines (default: none) */
  say?: (line: string) => void;
  /** generation progress: (done, total) image tokens */
  onToken?: (done: number, total: number) => void;
  threads?: number;
  /** tokens the answer may have (default 24) */
  maxTokens?: number;
  seed?: number;
}

export interface DemoPipelineResult {
  /** the synthetic release (the released layouts) */
  release: string;
  /** the converted files and healthgpt.json */
  converted: string;
  /** true when the release was written and converted by this call (not found in the cache) */
  made: boolean;
  /** ms to write and convert (0 when cached) */
  prepare_ms: number;
  load_ms: number;
  manifest: HealthGPTManifest;
  /** the example image (Shepp-Logan phantom) as PNG */
  inputPng: string;
  question: string;
  answer: AskResult;
  /** the generated image as PNG */
  outputPng: string;
  image: GenerateImageResult;
  /** the VQGAN's codebook size (valid indices are 0..codebookSize-1) */
  codebookSize: number;
}

const ms = (v: number): string => `${v.toFixed(0)} ms`;

/** A random model strings byte tokens into control characters and invalid UTF-8: shown as '·'. */
export const printable = (s: string): string => s.replace(/[\u0000-\u001f\u007f-\u009f\ufffd]/g, '·');

/** Writes (once) and converts (once) the tiny release, then runs one question and one generation. */
export async function runDemoPipeline(o: DemoPipelineOptions): Promise<DemoPipelineResult> {
  if (typeof o?.cache !== 'string' || o.cache === '') throw new HealthGPTError('ERR_INVALID_ARG', `cache must be a folder path, got ${String(o?.cache)}`);
  const say = o.say ?? (() => undefined);
  // versioned names: a later layout or converter change makes fresh copies, never mixes them
  const release = join(o.cache, `release-v${DEMO_RELEASE_VERSION}`);
  const converted = join(o.cache, `release-v${DEMO_RELEASE_VERSION}-converted`);
  const t0 = performance.now();
  let manifest: HealthGPTManifest;
  let made = false;
  if (!existsSync(join(converted, MANIFEST_NAME))) {
    // the release is written completely before it is converted; a half-written one (an
    // interrupted first run) is simply written again
    say(`writing a tiny random-weight HealthGPT in the released layout into ${release} ...`);
    const opts = await writeSyntheticRelease(release);
    say('converting it as `healthgpt convert --llm --vision --plugins --vqgan` does ...');
    manifest = await convertHealthGPT(converted, { ...opts, type: 'f16', threads: o.threads });
    made = true;
  } else {
    manifest = JSON.parse(await readFile(join(converted, MANIFEST_NAME), 'utf8')) as HealthGPTManifest;
  }
  const prepare_ms = made ? performance.now() - t0 : 0;
  if (made) say(`wrote and converted it in ${ms(prepare_ms)}:`);
  else say(`the tiny release (cached): ${release}, converted into ${converted}:`);
  for (const f of manifest.files) say(`  ${f.file.padEnd(20)} ${f.role}${f.plugin ? ` (${f.plugin})` : ''}, ${formatBytes(f.bytes)}`);

  const t1 = performance.now();
  // one name for every part: the folder's healthgpt.json says which file is which
  const hg = await HealthGPT.load({ model: converted, threads: o.threads });
  const load_ms = performance.now() - t1;
  say(`loaded (HealthGPT.load('${converted}'): language model, both H-LoRA plugins, CLIP tower, VQGAN) in ${ms(load_ms)}`);
  try {
    const phantom = sheppLogan(256);
    const png = await encodePng(phantom);
    await mkdir(o.cache, { recursive: true });
    const inputPng = join(o.cache, 'phantom.png');
    await writeFile(inputPng, png);

    const seed = o.seed ?? 1;
    say(`\nquestion about the example image (a Shepp-Logan phantom drawn in code: ${inputPng}), comprehension plugin:`);
    say(`> ${DEMO_QUESTION}`);
    const answer = await hg.answer({ image: png, question: DEMO_QUESTION, maxTokens: o.maxTokens ?? 24, seed });
    const a = answer.timings;
    say(`< ${printable(answer.answer)}`);
    say(`  ${answer.tokens.length} tokens (${answer.finishReason}); encode ${ms(a.encode_ms)}, prefill ${ms(a.prefill_ms)}, decode ${ms(a.decode_ms)}`);
    say(`  the same from the command line: healthgpt ask -m ${converted} -i ${inputPng} "${DEMO_QUESTION}"`);

    say('\nimage generation (reconstruct the example image), generation plugin + VQGAN:');
    const image = await hg.generateImage({ task: 'reconstruct', image: png, seed, onToken: o.onToken });
    const outputPng = join(o.cache, 'reconstruct.png');
    await writeFile(outputPng, image.png);
    const t = image.timings;
    const k = hg.vqgan!.info.nEmbed;
    let lo = k;
    let hi = -1;
    for (const i of image.indices) [lo, hi] = [Math.min(lo, i), Math.max(hi, i)];
    say(`  ${image.indices.length} image tokens, codebook indices ${lo}..${hi} (valid: 0..${k - 1})`);
    say(`  ${image.width} x ${image.height} PNG: ${outputPng}`);
    say(
      `  encode ${ms(t.encode_ms)}, prefill ${ms(t.prefill_ms)}, decode ${ms(t.decode_ms)} (${(image.indices.length / Math.max(t.decode_ms / 1000, 1e-9)).toFixed(0)} tokens/s), VQGAN ${ms(t.vqgan_ms)}`,
    );
    return { release, converted, made, prepare_ms, load_ms, manifest, inputPng, question: DEMO_QUESTION, answer, outputPng, image, codebookSize: k };
  } finally {
    hg.dispose();
  }
}
