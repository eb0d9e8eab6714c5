/** `healthgpt quantize IN.gguf OUT.gguf TYPE`: like llama.cpp's llama-quantize. */
import { Command } from 'commander';
import { interruptSignal } from './interrupt.js';
import { threadsArg } from './arg-parsers.js';
import { QUANTIZE_TARGETS } from '../quantize/plan.js';
import { parseTarget, quantizeFile } from '../quantize/quantize.js';
import { formatBytes } from './format.js';
import { Progress } from './progress.js';

export function quantizeCommand(): Command {
  return new Command('quantize')
    .description('quantize a GGUF model (norms and small tensors stay f32)')
    .argument('<input>', 'source GGUF')
    .argument('<output>', 'GGUF to write')
    .argument('<type>', QUANTIZE_TARGETS.join(' | '))
    .option('--threads <n>', 'threads (default: one per core)', threadsArg, 0)
    .option('-v, --verbose', "print each tensor's type")
    .action(async (input: string, output: string, type: string, o: { threads: number; verbose?: boolean }) => {
      const target = parseTarget(type);
      let progress: Progress | undefined;
      // Ctrl-C stops between two tensors, so the partial file is removed, not left behind
      const stop = interruptSignal('quantize interrupted');
      const r = await quantizeFile(input, output, target, {
        threads: o.threads,
        signal: stop.signal,
        onTensor: (e, done, total) => {
          progress ??= new Progress(`quantize ${target}`, total);
          progress.tick(1, e.name);
          if (o.verbose) process.stderr.write(`${e.name} [${e.shape.join(', ')}] ${e.from} -> ${e.to}${e.note ? ` (${e.note})` : ''}\n`);
          if (done === total) progress.finish();
        },
      }).finally(() => stop.release());
      const counts = new Map<string, number>();
      for (const e of r.plan) counts.set(e.to, (counts.get(e.to) ?? 0) + 1);
      const mix = [...counts]
        .sort(([a], [b]) => a.localeCompare(b))
        .map(([t, n]) => `${t}: ${n}`)
        .join(', ');
      process.stdout.write(`wrote ${output}: ${r.plan.length} tensors (${mix}), ${formatBytes(r.inputBytes)} -> ${formatBytes(r.outputBytes)} of tensor data in ${r.seconds.toFixed(1)} s\n`);
    });
}
