/**
 * `healthgpt generate -m healthgpt-m3/ --task T [--image in.png] [--report "text"] -o out.png`
 * (or -m m3 after pull, or -m model.gguf --vision V --plugin-gen P --vqgan Q; separate files
 * replace the folder's): HealthGPT image generation (CT to MRI, MRI to CT,
 * super-resolution, reconstruction, report to chest X-ray), a progress bar over the image
 * tokens on stderr, the PNG written to --output; --json prints {output, indices, timings}.
 */
import { writeFile } from 'node:fs/promises';
import { Command, Option } from 'commander';
import { HealthGPTError } from '../errors.js';
import { GENERATION_TASKS } from '../generate/tasks.js';
import { HealthGPT } from '../session/healthgpt.js';
import { CLI_PART_NAMES, modelParts } from '../session/model-folder.js';
import { toJson } from './format.js';
import { Progress } from './progress.js';
import { addSessionOptions, gpuOf, imageOptionsOf, interruptSignal, reportBackend, samplingOf, type SessionFlags } from './session-flags.js';

interface GenerateFlags extends SessionFlags {
  pluginGen?: string;
  vqgan?: string;
  task: string;
  image?: string;
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
    .option('-i, --image <file>', 'the input image (every task but report2cxr): PNG, JPEG, WebP, TIFF, DICOM, a DICOMDIR or a folder holding one DICOM image')
    .option('--report <text>', 'the report text (report2cxr)')
    .option('--instruction <text>', "replaces the task's instruction")
    .requiredOption('-o, --output <file>', 'the PNG to write');
  return addSessionOptions(c).action(async (o: GenerateFlags) => {
    if (o.output === '') throw new HealthGPTError('ERR_INVALID_ARG', '--output must be a file path, got ""');
    const t0 = performance.now();
    const parts = modelParts(o.model, { vision: o.vision, plugins: { generation: o.pluginGen }, vqgan: o.vqgan }, ['vision', 'generation', 'vqgan'], CLI_PART_NAMES);
    const hg = await HealthGPT.load({
      model: parts.model,
      vision: parts.vision,
      plugins: { generation: parts.plugins.generation },
      vqgan: parts.vqgan,
      threads: o.threads,
      contextSize: o.context,
      kvType: o.kvType,
      gpu: gpuOf(o),
      gpuLayers: o.gpuLayers,
    });
    const loadMs = performance.now() - t0;
    reportBackend(hg.model.info.backend, gpuOf(o));
    const stop = interruptSignal();
    let bar: Progress | undefined;
    try {
      const r = await hg.generateImage({
        task: o.task as keyof typeof GENERATION_TASKS,
        image: o.image,
        report: o.report,
        instruction: o.instruction,
        imageOptions: imageOptionsOf(o),
        signal: stop.signal,
        ...samplingOf(o),
        onToken: (done, total) => {
          bar ??= new Progress('image tokens', total);
          bar.tick(1, `${done}/${total}`);
        },
      });
      bar?.finish();
      await writeFile(o.output, r.png);
      if (o.json) process.stdout.write(toJson({ output: o.output, width: r.width, height: r.height, indices: [...r.indices], timings: { load_ms: loadMs, ...r.timings } }, 0) + '\n');
      else process.stderr.write(`wrote ${o.output} (${r.width}x${r.height})\n`);
    } catch (err) {
      bar?.finish();
      throw err;
    } finally {
      stop.release();
      hg.dispose();
    }
  });
}
