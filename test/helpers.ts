// Shared test helpers: temp dirs, running the CLI, and JSON with exact 64-bit integers.
import { spawnSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

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
  return JSON.parse(text.replace(/(?<=[:\[,]\s*)(-?\d{16,})(?=\s*[,\]}])/g, '"$1"'));
}

/** Same normalisation for values already in memory: bigints and unsafe integers as strings. */
export function exact(v: unknown): unknown {
  if (typeof v === 'bigint') return v.toString();
  if (Array.isArray(v)) return v.map(exact);
  if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, exact(x)]));
  return v;
}
