/**
 * `healthgpt generate -m healthgpt-m3/ --task T [--image in.png] [--report "text"] -o out.png`
 * (or -m m3 after pull, or -m model.gguf --vision V --plugin-gen P --vqgan Q; separate files
 * replace the folder's): HealthGPT image generation (CT to MRI, MRI to CT,
 * super-resolution, reconstruction, report to chest X-ray), a progress bar over the image
 * tokens on stderr, the PNG written to --output; --json prints {output, indices, timings}.
 * Several inputs (`-i a.dcm -i b.dcm -o out/`) are generated together, one batch per token
 * (the model loads with one sequence per input), one PNG per input into the folder --output;
 * --json then prints one object per input, in a list.
 */
import { mkdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import { basename, dirname, extname, join, resolve } from 'node:path';
import { Command, Option } from 'commander';
import { HealthGPTError } from '../errors.js';
import { GENERATION_TASKS } from '../generate/tasks.js';
import { MAX_SEQUENCES } from '../model/model.js';
import { HealthGPT } from '../session/healthgpt.js';
import { CLI_PART_NAMES, modelParts } from '../session/model-folder.js';
import { toJson } from './format.js';
import { Progress } from './progress.js';
import { interruptSignal } from './interrupt.js';
import { addSessionOptions, gpuOf, imageOptionsOf, reportBackend, samplingOf, type SessionFlags } from './session-flags.js';

interface GenerateFlags extends SessionFlags {
  pluginGen?: string;
  vqgan?: string;
  task: string;
  image: string[];
  report?: string;
  instruction?: string;
  output: string;
}

export function generateCommand(): Command {
  const c = new Command('generate')
    .description('generate a medical image (generation plugin + VQGAN) and write it as PNG')
    .option('--plugin-gen <file>', "generation H-LoRA plugin GGUF; replaces the folder's")
    .option('--vqgan <file>', "VQGAN GGUF; replaces the folder's")
    .addOption(new Option('-t, --task <task>', 'what to generate').choices(Object.keys(GENERATION_TASKS)).makeOptionMandatory())
    .option(
      '-i, --image <file>',
      'the input image (every task but report2cxr): PNG, JPEG, WebP, TIFF, DICOM, a DICOMDIR or a folder holding one DICOM image; repeat it to generate several together (--output is then a folder)',
      (v: string, prev: string[]) => [...prev, v],
      [] as string[],
    )
    .option('--report <text>', 'the report text (report2cxr)')
    .option('--instruction <text>', "replaces the task's instruction")
    .requiredOption('-o, --output <path>', 'the PNG to write; with several --image, the folder to write one <input name>.png per input into');
  return addSessionOptions(c).action(async (o: GenerateFlags) => {
    if (o.output === '') throw new HealthGPTError('ERR_INVALID_ARG', '--output must be a file path, got ""');
    const outputs = outputPaths(o.image, o.output);
    // checked before minutes of generation: a folder to write into, no folder in a file's place
    await checkOutput(o.output, outputs.length > 1);
    const t0 = performance.now();
    const parts = modelParts(o.model, { vision: o.vision, plugins: { generation: o.pluginGen }, vqgan: o.vqgan }, ['vision', 'generation', 'vqgan'], CLI_PART_NAMES);
    const hg = await HealthGPT.load({
      model: parts.model,
      vision: parts.vision,
      plugins: { generation: parts.plugins.generation },
      vqgan: parts.vqgan,
      threads: o.threads,
      contextSize: o.context,
      // one slot per input, so their tokens are decoded together (each slot's cache is committed as written);
      // a model on CUDA holds one: the inputs then take turns
      sequences: gpuOf(o) === 'cuda' ? 1 : Math.min(Math.max(o.image.length, 1), MAX_SEQUENCES),
      kvType: o.kvType,
      gpu: gpuOf(o),
      gpuLayers: o.gpuLayers,
    });
    const loadMs = performance.now() - t0;
    reportBackend(hg.model.info.backend, gpuOf(o));
    const stop = interruptSignal();
    let bar: Progress | undefined;
    try {
      const request = {
        task: o.task as keyof typeof GENERATION_TASKS,
        report: o.report,
        instruction: o.instruction,
        imageOptions: imageOptionsOf(o),
        signal: stop.signal,
        ...samplingOf(o),
        onToken: (done: number, total: number) => {
          bar ??= new Progress('image tokens', total);
          bar.tick(1, `${done}/${total}`);
        },
      };
      const results = o.image.length > 1 ? await hg.generateImage({ ...request, images: o.image }) : [await hg.generateImage({ ...request, image: o.image[0] })];
      bar?.finish();
      const report: object[] = [];
      if (outputs.length > 1) await mkdir(o.output, { recursive: true });
      for (const [i, r] of results.entries()) {
        await writeWhole(outputs[i]!, r.png);
        if (!o.json) process.stderr.write(`wrote ${outputs[i]} (${r.width}x${r.height})\n`);
        report.push({ output: outputs[i], width: r.width, height: r.height, indices: [...r.indices], timings: { load_ms: loadMs, ...r.timings } });
      }
      if (o.json) process.stdout.write(toJson(outputs.length > 1 ? report : report[0], 0) + '\n');
    } catch (err) {
      bar?.finish();
      throw err;
    } finally {
      stop.release();
      hg.dispose();
    }
  });
}

/**
 * --output can be written: one file in an existing folder (not a folder itself), or for several
 * inputs a folder that exists or whose parent does (made when the images are written).
 */
async function checkOutput(output: string, folder: boolean): Promise<void> {
  const kind = async (p: string): Promise<'file' | 'folder' | 'other' | undefined> => {
    const st = await stat(p).catch(() => undefined);
    return st === undefined ? undefined : st.isFile() ? 'file' : st.isDirectory() ? 'folder' : 'other';
  };
  const here = await kind(output);
  if (folder) {
    if (here === 'folder') return;
    if (here !== undefined) throw new HealthGPTError('ERR_INVALID_ARG', `--output ${output}: with several --image it must be a folder, and a file is there`);
  } else if (here === 'folder' || here === 'other') {
    throw new HealthGPTError('ERR_INVALID_ARG', `--output ${output}: ${here === 'folder' ? 'is a folder' : 'is not a regular file'}; give the PNG's path`);
  }
  const parent = dirname(resolve(output));
  if ((await kind(parent)) !== 'folder') throw new HealthGPTError('ERR_INVALID_ARG', `--output ${output}: the folder ${parent} does not exist`);
}

/** The PNG in whole or not at all: a temporary file renamed into place. */
async function writeWhole(path: string, bytes: Uint8Array): Promise<void> {
  const tmp = `${path}.tmp-${process.pid}`;
  try {
    await writeFile(tmp, bytes);
    await rename(tmp, path);
  } catch (err) {
    await rm(tmp, { force: true });
    throw new HealthGPTError('ERR_IMAGE_WRITE', `--output ${path}: ${(err as Error).message}`, { cause: err });
  }
}

/** Where each input's PNG goes: --output itself for one input, else <folder>/<input name>.png (-2, -3... for names met before). */
function outputPaths(images: string[], output: string): string[] {
  if (images.length <= 1) return [output];
  const seen = new Map<string, number>();
  return images.map((im) => {
    const stem = basename(im, extname(im)) || 'image';
    const n = (seen.get(stem) ?? 0) + 1;
    seen.set(stem, n);
    return join(output, `${n > 1 ? `${stem}-${n}` : stem}.png`);
  });
}
