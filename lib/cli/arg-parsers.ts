/**
 * Number flags checked as commander parses them, so the message names the flag and nothing
 * loads first: "error: option '--threads <n>' argument '1.5' is invalid. an integer in 0..1024".
 */
import { InvalidArgumentError } from 'commander';
import { MAX_THREADS } from '../native.js';

/** An integer flag in [min, max]: digits only ('' and '1.5' are refused, as parseInt would not). */
export function intArg(min: number, max: number): (v: string) => number {
  return (v: string) => {
    const n = /^\s*[-+]?\d+\s*$/.test(v) ? Number(v) : Number.NaN;
    if (!Number.isSafeInteger(n) || n < min || n > max) throw new InvalidArgumentError(`an integer in ${min}..${max}`);
    return n;
  };
}

export const INT_MAX = 0x7fffffff;
/** --threads: 0 is one per core. */
export const threadsArg = intArg(0, MAX_THREADS);
