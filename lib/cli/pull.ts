/** `healthgpt pull m3|l14`: downloads a released HealthGPT's files from the Hugging Face Hub. */
import { Command } from 'commander';
import { HealthGPTError } from '../errors.js';
import { defaultCacheDir, isReleaseName, planPull, runPull } from '../pull/pull.js';
import { VQGAN_SOURCE } from '../pull/releases.js';
import { Progress } from './progress.js';

const gb = (n: number) => `${(n / 1e9).toFixed(2)} GB`;

export function pullCommand(): Command {
  return new Command('pull')
    .description('download a released HealthGPT (m3: Phi-3-mini, l14: Phi-4) from the Hugging Face Hub (HF_ENDPOINT, HF_TOKEN honoured); resumes, checks every checksum')
    .argument('<model>', 'm3 or l14')
    .option('--cache <dir>', 'cache folder', defaultCacheDir())
    .option('--dry-run', 'list what would be downloaded, download nothing')
    .option('--json', 'print the result as JSON')
    .action(async (model: string, opts: { cache: string; dryRun?: boolean; json?: boolean }) => {
      if (!isReleaseName(model)) throw new HealthGPTError('ERR_INVALID_ARG', `model must be m3 or l14, got ${JSON.stringify(model)}`);
      const plan = await planPull(model, opts.cache);
      const total = plan.reduce((s, e) => s + e.files.reduce((t, f) => t + f.size, 0), 0);
      if (!opts.json) {
        process.stdout.write(`healthgpt pull ${model}: ${plan.reduce((s, e) => s + e.files.length, 0)} files, ${gb(total)}, into ${opts.cache}\n`);
        for (const e of plan) {
          process.stdout.write(`  ${e.part.repo}@${e.listing.commit.slice(0, 12)} (${e.part.role})\n`);
          for (const f of e.files) process.stdout.write(`    ${f.path.padEnd(40)} ${gb(f.size).padStart(10)}\n`);
        }
        process.stdout.write(`  not on the Hub (download it yourself, then convert with --vqgan): ${VQGAN_SOURCE}\n`);
      }
      let fetched = 0;
      const started = Date.now();
      if (!opts.dryRun) {
        const bar = new Progress('pull', total);
        const seen = new Map<string, number>();
        fetched = await runPull(plan, {
          onProgress: ({ file, done }) => {
            bar.tick(done - (seen.get(file) ?? 0), file.split('/').pop());
            seen.set(file, done);
          },
        });
        bar.finish();
      }
      const result = {
        model,
        cache: opts.cache,
        bytes: total,
        fetched,
        seconds: (Date.now() - started) / 1000,
        parts: plan.map((e) => ({ role: e.part.role, repo: e.part.repo, commit: e.listing.commit, dir: e.dir, files: e.files.map((f) => f.path) })),
        vqgan: VQGAN_SOURCE,
      };
      if (opts.json) process.stdout.write(JSON.stringify(result, null, 2) + '\n');
      else if (!opts.dryRun) {
        process.stdout.write(`done: ${gb(fetched)} fetched in ${result.seconds.toFixed(1)} s\n`);
        const dir = (role: string) => plan.find((e) => e.part.role === role)?.dir;
        process.stdout.write(`next: healthgpt convert --llm ${dir('llm')} --vision ${dir('vision')} --plugins ${dir('plugins')} --vqgan last.ckpt -o healthgpt-${model}\n`);
      }
    });
}
