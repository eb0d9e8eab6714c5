/** `healthgpt complete --model M "text"`: streams a continuation of the text. */
import { Command } from 'commander';
import { LanguageModel } from '../model/model.js';
import { toJson } from './format.js';
import { addGenerationOptions, generationOptions, type GenerationFlags } from './sampling.js';

export function completeCommand(): Command {
  const c = new Command('complete')
    .description('continue a text (streamed)')
    .requiredOption('-m, --model <file>', 'GGUF model')
    .argument('<text>', 'the prompt')
    .option('--special', 'recognise special tokens such as <|user|> in the text')
    .option('--json', 'print {"text", "tokens", "finish_reason", "timings"} at the end instead of streaming');
  return addGenerationOptions(c).action(async (text: string, o: GenerationFlags & { model: string; special?: boolean; json?: boolean }) => {
    const t0 = performance.now();
    const model = await LanguageModel.load(o.model, { threads: o.threads, contextSize: o.context });
    const loaded = performance.now();
    try {
      let out = '';
      const gen = model.complete(text, { ...generationOptions(o), special: o.special });
      let finish: string;
      for (;;) {
        const step = await gen.next();
        if (step.done) {
          finish = step.value;
          break;
        }
        out += step.value;
        if (!o.json) process.stdout.write(step.value);
      }
      const done = performance.now();
      if (o.json) {
        process.stdout.write(toJson({ text: out, finish_reason: finish, timings: { load_ms: loaded - t0, generate_ms: done - loaded } }) + '\n');
      } else process.stdout.write('\n');
    } finally {
      model.dispose();
    }
  });
}
