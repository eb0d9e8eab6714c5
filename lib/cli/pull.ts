/** `healthgpt pull m3|l14`: downloads a released HealthGPT's files from the Hugging Face Hub. */
import { Command } from 'commander';
import { stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { convertHealthGPT } from '../convert/healthgpt.js';
import { HealthGPTError } from '../errors.js';
import { parseTarget } from '../quantize/quantize.js';
import { defaultCacheDir, isReleaseName, planPull, runPull } from '../pull/pull.js';
import { VQGAN_SOURCE } from '../pull/releases.js';
import { Progress } from './progress.js';

const gb = (n: number) => `${(n / 1e9).toFixed(2)} GB`;

/** --cache and --output must be folders (or not exist yet), --vqgan a readable file. */
async function checkLocalArgs(cache: string, output: string, vqgan: string | undefined): Promise<void> {
  for (const [flag, dir] of [
    ['--cache', cache],
    ['--output', output],
  ] as const) {
    const st = await stat(dir).catch(() => undefined);
    if (st !== undefined && !st.isDirectory()) throw new HealthGPTError('ERR_INVALID_ARG', `${flag} ${dir}: a file is there, not a folder`);
  }
  if (vqgan === undefined) return;
  const st = await stat(vqgan).catch(() => undefined);
  if (!st?.isFile()) throw new HealthGPTError('ERR_INVALID_ARG', `--vqgan ${vqgan}: ${st ? 'not a file' : 'no such file'} (the VQGAN checkpoint, last.ckpt)`);
}

export function pullCommand(): Command {
  return new Command('pull')
    .description('download a released HealthGPT (m3: Phi-3-mini, l14: Phi-4) from the Hugging Face Hub (HF_ENDPOINT, HF_TOKEN honoured); resumes, checks every checksum')
    .argument('<model>', 'm3 or l14')
    .option('--cache <dir>', 'cache folder', defaultCacheDir())
    .option('--dry-run', 'list what would be downloaded, download nothing')
    .option('--json', 'print the result as JSON')
    .option('-o, --output <dir>', 'where the converted GGUF files go (default: <cache>/models/<model>)')
    .option('--type <type>', "the language model's type after conversion: f16, q8_0, q4_0, q4_k_m", 'q4_k_m')
    .option('--vqgan <last.ckpt>', 'the VQGAN checkpoint you downloaded (not on the Hub); without it, image generation is not converted')
    .option('--no-convert', 'download only')
    .action(async (model: string, opts: { cache: string; dryRun?: boolean; json?: boolean; output?: string; type: string; vqgan?: string; convert: boolean }) => {
      if (!isReleaseName(model)) throw new HealthGPTError('ERR_INVALID_ARG', `model must be m3 or l14, got ${JSON.stringify(model)}`);
      const type = parseTarget(opts.type);
      const output = opts.output ?? join(opts.cache, 'models', model);
      // what is local is checked before gigabytes are downloaded
      await checkLocalArgs(opts.cache, output, opts.convert ? opts.vqgan : undefined);
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
      let converted: string[] = [];
      if (!opts.dryRun && opts.convert) {
        // the downloaded folders as `healthgpt convert` takes them; the plugin files by their
        // released names (com_/gen_hlora_weights, fusion_layer_weights)
        const dir = (role: string) => plan.find((e) => e.part.role === role)!;
        const plugins = dir('plugins');
        let progress: Progress | undefined;
        let part = '';
        const m = await convertHealthGPT(output, {
          llm: dir('llm').dir,
          vision: dir('vision').dir,
          plugins: plugins.files.map((f) => join(plugins.dir, f.path)),
          vqgan: opts.vqgan,
          type,
          healthgptTokens: true,
          onTensor: (p, name, _done, total) => {
            if (p !== part) {
              progress?.finish();
              part = p;
              progress = new Progress(`convert ${p}`, total);
            }
            progress!.tick(1, name);
          },
        });
        progress?.finish();
        converted = m.files.map((f) => join(output, f.file));
      }
      const result = {
        model,
        output: converted.length ? output : undefined,
        converted,
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
        if (converted.length) {
          process.stdout.write(`converted into ${output}:\n${converted.map((f) => `  ${f}\n`).join('')}`);
          // one name loads every part: the release's name where -m finds it, else the folder
          const name = resolve(output) === resolve(defaultCacheDir(), 'models', model) ? model : output;
          process.stdout.write(`use it: healthgpt ask -m ${name} -i scan.png "What is shown?"\n`);
        }
        if (!opts.vqgan && opts.convert) process.stdout.write(`image generation needs the VQGAN: download it (${VQGAN_SOURCE}) and run pull again with --vqgan last.ckpt\n`);
      }
    });
}
