/**
 * `healthgpt demo`: the whole HealthGPT pipeline on a tiny random-weight model the project makes
 * itself (no real weights can be had offline): the released file layouts, written once and
 * cached; the converter; HealthGPT.load; one question about a bundled example image and one
 * image generation, with timings. Random weights: it shows the pipeline, not medicine.
 */
import { Command } from 'commander';
import { mkdirSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { native } from '../native.js';
import { runDemoPipeline } from './demo-release.js';

export function cacheDir(): string {
  const base = process.env.HEALTHGPT_CACHE ?? join(process.env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'healthgpt');
  mkdirSync(base, { recursive: true });
  return base;
}

export function demoCommand(): Command {
  return new Command('demo').description('run the whole HealthGPT pipeline (convert, ask, generate) on a tiny random-weight model it makes itself').action(async () => {
    const dir = join(cacheDir(), 'demo');
    mkdirSync(dir, { recursive: true });
    // `healthgpt demo | head`: a closed pipe ends the demo quietly
    process.stdout.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'EPIPE') process.exit(0);
      throw err;
    });
    const say = (s: string): void => void process.stdout.write(s + '\n');
    say('healthgpt demo: RANDOM WEIGHTS. The output shows the pipeline works; it is not medicine and means nothing.');
    const cpu = native().cpu();
    say(`cpu kernels: ${cpu.active} (${cpu.features || 'no SIMD'})\n`);

    const tty = process.stdout.isTTY === true;
    let last = -1;
    const onToken = (done: number, total: number): void => {
      const pct = Math.floor((100 * done) / total);
      if (tty) {
        if (pct !== last) process.stdout.write(`\r  generating: ${done}/${total} image tokens (${pct}%)`);
        if (done === total) process.stdout.write('\n');
      } else if (pct % 25 === 0 && pct !== last) say(`  generating: ${done}/${total} image tokens (${pct}%)`);
      last = pct;
    };
    await runDemoPipeline({ cache: dir, say, onToken });
    say(`\nfiles in ${dir}`);
    say('Random weights: the answer is noise and the image is noise. They show that every part of the');
    say('pipeline runs (converter, CLIP, H-LoRA plugins, 1024 image tokens, VQGAN); they are not medicine.');
    say(
      'For the real model: npx healthgpt pull m3 (downloads and converts; --vqgan last.ckpt for generation), then npx healthgpt ask -m m3 -i scan.png "question" or npx healthgpt generate -m m3 --task ct2mri -i ct.png -o mri.png.',
    );
  });
}
