/**
 * The demo's release step: a tiny random HealthGPT in the released file layouts
 * (lib/synthetic/release.ts), written once into the cache, converted as a user converts the
 * real release (`healthgpt convert --llm --vision --plugins --vqgan -o DIR`), and each converted
 * part loaded and run once.
 */
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { convertHealthGPT, MANIFEST_NAME, type HealthGPTManifest } from '../convert/healthgpt.js';
import { LanguageModel } from '../model/model.js';
import { randomNormal } from '../synthetic/phi3.js';
import { SYNTHETIC_RELEASE, syntheticReleaseOptions, writeSyntheticRelease } from '../synthetic/release.js';
import { VisionTower } from '../vision/clip.js';
import { Vqgan } from '../vqgan/decoder.js';
import { formatBytes } from './format.js';

export async function demoRelease(cache: string, say: (s: string) => void): Promise<void> {
  // versioned names: a later layout or converter change makes fresh copies, never mixes them
  const src = join(cache, 'release-v1');
  const out = join(cache, 'release-v1-converted');
  const t0 = Date.now();
  const opts = existsSync(join(src, 'vqgan', 'model.yaml')) ? syntheticReleaseOptions(src) : await writeSyntheticRelease(src);
  let manifest: HealthGPTManifest;
  if (!existsSync(join(out, MANIFEST_NAME))) {
    manifest = await convertHealthGPT(out, { ...opts, type: 'f16' });
    say(`\nreleased layout: wrote a tiny random HealthGPT in ${src} and converted it in ${Date.now() - t0} ms:`);
  } else {
    manifest = JSON.parse(await readFile(join(out, MANIFEST_NAME), 'utf8')) as HealthGPTManifest;
    say(`\nreleased layout: ${src}, converted earlier into ${out}:`);
  }
  for (const f of manifest.files) say(`  ${f.file.padEnd(20)} ${f.role}${f.plugin ? ` (${f.plugin})` : ''}, ${formatBytes(f.bytes)}`);

  const model = await LanguageModel.load(join(out, 'model.gguf'), {
    plugins: { comprehension: join(out, 'comprehension.gguf'), generation: join(out, 'generation.gguf') },
  });
  try {
    const ids = model.tokenize('the chest scan');
    const base = await model.evaluate(ids);
    const moved = async (plugin: string): Promise<number> => {
      const l = await model.evaluate(ids, { plugin });
      let d = 0;
      for (let i = 0; i < l.length; i++) d = Math.max(d, Math.abs(l[i]! - base[i]!));
      return d;
    };
    say(`  plugins move the logits by up to ${(await moved('comprehension')).toFixed(2)} (comprehension) and ${(await moved('generation')).toFixed(2)} (generation)`);
  } finally {
    model.dispose();
  }
  const c = SYNTHETIC_RELEASE.clip;
  const tower = await VisionTower.load(join(out, 'vision.gguf'));
  try {
    const feats = await tower.project(await tower.encode(randomNormal(3 * c.imageSize * c.imageSize, 3)), 'comprehension');
    say(`  vision tower: ${tower.info.nPatches} patches -> ${feats.length / tower.info.nPatches}-wide vectors for the language model`);
  } finally {
    tower.dispose();
  }
  const vq = await Vqgan.load(join(out, 'vqgan.gguf'));
  try {
    const n = vq.info.latent * vq.info.latent;
    const img = await vq.decode(Int32Array.from({ length: n }, (_, i) => (i * 7) % vq.info.nEmbed));
    say(`  VQGAN: ${n} codes -> a ${img.width} x ${img.height} RGB image`);
  } finally {
    vq.dispose();
  }
}
