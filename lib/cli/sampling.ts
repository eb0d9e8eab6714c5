/** The sampling and generation options shared by `complete` and `chat`. */
import { type Command, Option } from 'commander';
import { INT_MAX, intArg, threadsArg } from './arg-parsers.js';
import type { CompleteOptions } from '../model/model.js';

const num = (v: string) => Number(v);

export function addGenerationOptions(c: Command): Command {
  return c
    .addOption(new Option('-n, --max-tokens <n>', 'tokens to generate at most').argParser(intArg(1, INT_MAX)).default(256))
    .addOption(new Option('--temperature <t>', '0: greedy').argParser(num).default(0))
    .addOption(new Option('--top-k <k>', 'keep the k most likely tokens (0: all)').argParser(intArg(0, INT_MAX)))
    .addOption(new Option('--top-p <p>', 'nucleus sampling').argParser(num))
    .addOption(new Option('--min-p <p>', 'drop tokens below p x the top probability').argParser(num))
    .addOption(new Option('--repeat-penalty <r>', '1: off').argParser(num))
    .addOption(new Option('--seed <s>', 'PRNG seed').argParser(num))
    .addOption(new Option('--stop <text...>', 'stop strings'))
    .addOption(new Option('--threads <n>', 'threads (default: one per core)').argParser(threadsArg))
    .addOption(new Option('--context <n>', "context size (default: the model's)").argParser(intArg(0, INT_MAX)));
}

export interface GenerationFlags {
  maxTokens: number;
  temperature: number;
  topK?: number;
  topP?: number;
  minP?: number;
  repeatPenalty?: number;
  seed?: number;
  stop?: string[];
  threads?: number;
  context?: number;
}

export function generationOptions(f: GenerationFlags): CompleteOptions {
  return { maxTokens: f.maxTokens, temperature: f.temperature, topK: f.topK, topP: f.topP, minP: f.minP, repeatPenalty: f.repeatPenalty, seed: f.seed, stop: f.stop };
}
