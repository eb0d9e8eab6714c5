/** The `healthgpt` command line: one file per command under lib/cli/. */
import { Command, CommanderError } from 'commander';
import { HealthGPTError } from '../errors.js';
import { askCommand } from './ask.js';
import { benchKernelsCommand } from './bench-kernels.js';
import { benchCommand } from './bench.js';
import { chatCommand } from './chat.js';
import { completeCommand } from './complete.js';
import { convertCommand } from './convert.js';
import { demoCommand } from './demo.js';
import { evalCommand } from './eval.js';
import { generateCommand } from './generate.js';
import { infoCommand } from './info.js';
import { wasInterrupted } from './interrupt.js';
import { pullCommand } from './pull.js';
import { quantizeCommand } from './quantize.js';
import { serveCommand } from './serve.js';
import { tokenizeCommand } from './tokenize.js';

export function program(): Command {
  const p = new Command('healthgpt')
    .description('HealthGPT medical vision-language model, run locally')
    .version(require('../../package.json').version as string)
    .showHelpAfterError();
  p.addCommand(demoCommand());
  p.addCommand(chatCommand());
  p.addCommand(completeCommand());
  p.addCommand(tokenizeCommand());
  p.addCommand(evalCommand());
  p.addCommand(askCommand());
  p.addCommand(generateCommand());
  p.addCommand(infoCommand());
  p.addCommand(quantizeCommand());
  p.addCommand(pullCommand());
  p.addCommand(convertCommand());
  p.addCommand(benchCommand());
  p.addCommand(benchKernelsCommand());
  p.addCommand(serveCommand());
  return p;
}

export async function main(argv: string[]): Promise<void> {
  try {
    await program().exitOverride().parseAsync(argv);
  } catch (err) {
    if (err instanceof CommanderError) {
      process.exitCode = err.exitCode;
      return; // commander already printed its message
    }
    if (err instanceof HealthGPTError || wasInterrupted()) {
      process.stderr.write(`healthgpt: ${(err as Error).message}\n`);
      process.exitCode = wasInterrupted() ? 130 : 1;
      return;
    }
    throw err;
  }
}
