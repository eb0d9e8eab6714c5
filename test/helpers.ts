// Shared test helpers: temp dirs, running the CLI, and JSON with exact 64-bit integers.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'vitest';
import { HealthGPTError } from '../lib/errors.js';

export const root = join(__dirname, '..');

export function tempDir(prefix = 'healthgpt-test-'): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

/** Runs bin/healthgpt.js (the compiled CLI in dist/) and returns its exit code and output. */
export function cli(args: string[], env: Record<string, string> = {}): { status: number; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [join(root, 'bin', 'healthgpt.js'), ...args], {
    encoding: 'utf8',
    env: { ...process.env, HEALTHGPT_NO_PROGRESS: '1', ...env },
    maxBuffer: 64 << 20,
  });
  return { status: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

/** JSON.parse keeping integers past 2^53 exact, as strings (both sides of a comparison). */
export function parseExactJson(text: string): unknown {
  return JSON.parse(text.replace(/(?<=[:[,]\s*)(-?\d{16,})(?=\s*[,\]}])/g, '"$1"'));
}

/** Same normalisation for values already in memory: bigints and unsafe integers as strings. */
export function exact(v: unknown): unknown {
  if (typeof v === 'bigint') return v.toString();
  if (Array.isArray(v)) return v.map(exact);
  if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, exact(x)]));
  return v;
}

/** max |a - b| / max |b|: one number for a whole tensor that does not blow up on values near zero. */
export function maxRel(a: Float32Array, b: Float32Array): number {
  expect(a.length).toBe(b.length);
  let d = 0;
  let m = 0;
  for (let i = 0; i < a.length; i++) {
    d = Math.max(d, Math.abs(a[i]! - b[i]!));
    m = Math.max(m, Math.abs(b[i]!));
  }
  return d / m;
}

/** A golden-logits file of tools/reference/make_phi3*_reference.py ("HGPL": tokens, then n x vocab floats). */
export function readLogits(path: string): { tokens: number[]; nVocab: number; logits: Float32Array } {
  const b = readFileSync(path);
  expect(b.toString('latin1', 0, 4)).toBe('HGPL');
  const n = b.readUInt32LE(8);
  const nVocab = b.readUInt32LE(12);
  const tokens = Array.from({ length: n }, (_, i) => b.readInt32LE(16 + 4 * i));
  const off = 16 + 4 * n;
  const logits = new Float32Array(b.buffer.slice(b.byteOffset + off, b.byteOffset + off + 4 * n * nVocab));
  return { tokens, nVocab, logits };
}

/** Largest absolute difference of two equally long arrays, and how many elements differ at all. */
export function maxDiff(a: ArrayLike<number>, b: ArrayLike<number>): { max: number; count: number } {
  expect(a.length).toBe(b.length);
  let max = 0;
  let count = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i] - b[i]);
    if (d > 0) count++;
    if (d > max) max = d;
  }
  return { max, count };
}

/** Expects p (or what calling it returns) to reject with a HealthGPTError of this code whose message matches text. */
export async function rejects(p: Promise<unknown> | (() => unknown), code: string, text: RegExp): Promise<HealthGPTError> {
  let err: unknown;
  try {
    await (typeof p === 'function' ? p() : p);
  } catch (e) {
    err = e;
  }
  expect(err).toBeInstanceOf(HealthGPTError);
  expect((err as HealthGPTError).code).toBe(code);
  expect((err as HealthGPTError).message).toMatch(text);
  return err as HealthGPTError;
}
