/**
 * `healthgpt ask -m healthgpt-m3/ [--image scan.png ...] "question"` (or -m m3 after pull, or
 * -m model.gguf --vision V --plugin-com P; separate files replace the folder's): the
 * answer streamed to stdout, or with --json one object {answer, tokens, stop, timings}.
 */
import { Command, Option } from 'commander';
import { INT_MAX, intArg } from './arg-parsers.js';
import { HealthGPT } from '../session/healthgpt.js';
import { CLI_PART_NAMES, modelParts } from '../session/model-folder.js';
import { toJson } from './format.js';
import { interruptSignal } from './interrupt.js';
import { addSessionOptions, gpuOf, imageOptionsOf, reportBackend, samplingOf, type SessionFlags } from './session-flags.js';

interface AskFlags extends SessionFlags {
  pluginCom?: string;
  image?: string[];
  maxTokens: number;
}

export function askCommand(): Command {
  const c = new Command('ask')
    .description('answer a question about medical images (comprehension plugin; streamed)')
    .argument('<question>', 'the question')
    .option('--plugin-com <file>', "comprehension H-LoRA plugin GGUF; replaces the folder's")
    .option('-i, --image <file>', 'an image: PNG, JPEG, WebP, TIFF, DICOM, a DICOMDIR or a folder holding one DICOM image (repeat for several)', (v: string, prev: string[] = []) => [...prev, v])
    .addOption(new Option('-n, --max-tokens <n>', 'tokens to generate at most').argParser(intArg(1, INT_MAX)).default(512));
  return addSessionOptions(c).action(async (question: string, o: AskFlags) => {
    const t0 = performance.now();
    const parts = modelParts(o.model, { vision: o.vision, plugins: { comprehension: o.pluginCom } }, ['vision', 'comprehension'], CLI_PART_NAMES);
    const hg = await HealthGPT.load({
      model: parts.model,
      vision: parts.vision,
      plugins: { comprehension: parts.plugins.comprehension },
      threads: o.threads,
      contextSize: o.context,
      kvType: o.kvType,
      gpu: gpuOf(o),
      gpuLayers: o.gpuLayers,
    });
    const loadMs = performance.now() - t0;
    reportBackend(hg.model.info.backend, gpuOf(o));
    const stop = interruptSignal();
    try {
      const request = { question, images: o.image ?? [], maxTokens: o.maxTokens, imageOptions: imageOptionsOf(o), signal: stop.signal, ...samplingOf(o) };
      if (o.json) {
        const r = await hg.answer(request);
        // stop: why the answer ended, and the stop token (id and text) when one did
        const stop = { reason: r.finishReason, token: r.stopToken ?? null, text: r.stopToken === undefined ? null : hg.model.tokenizer.vocab.tokens[r.stopToken] };
        process.stdout.write(toJson({ answer: r.answer, tokens: r.tokens, stop, timings: { load_ms: loadMs, ...r.timings } }) + '\n');
      } else {
        for await (const piece of hg.ask(request)) process.stdout.write(piece);
        process.stdout.write('\n');
      }
    } finally {
      stop.release();
      hg.dispose();
    }
  });
}
