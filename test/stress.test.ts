// Concurrent callers on one session (test/stress-driver.mjs): 64 requests of every kind
// (ask, answer, generateImage, evaluate, chat) at once from four async callers, a quarter
// aborted at seeded points, three iterators dropped after their first piece. Every request
// that was not aborted gives, bit for bit, what it gives run alone (greedy); a second round
// leaves the process's RSS within 5% of the first's; worker_threads do the same; dispose()
// with requests in flight rejects them with ERR_DISPOSED and the process lives on.
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { Worker } from 'node:worker_threads';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { HealthGPT } from '../lib/session/healthgpt.js';
import * as d from './stress-driver.mjs';

type Tally = d.Tally;

const SEED = 1313;

describe('concurrent requests on one session', () => {
  let hg: HealthGPT;
  let solo: Record<string, string>;
  const reqs = d.makeRequests(SEED);
  const figures: string[] = [];

  beforeAll(async () => {
    hg = await d.loadSession();
    solo = await d.runSolo(hg, reqs);
  });
  afterAll(() => {
    hg?.dispose();
    if (figures.length) console.log(`stress (seed ${SEED}):\n  ${figures.join('\n  ')}`);
  });

  it('the request mix has every kind, a quarter aborted, three dropped', () => {
    expect(reqs.length).toBe(64);
    expect(new Set(reqs.map((r) => r.kind))).toEqual(new Set(['ask', 'answer', 'evaluate', 'chat', 'generateImage']));
    expect(reqs.filter((r) => r.abortAt !== undefined).length).toBe(16);
    expect(reqs.filter((r) => r.drop).length).toBe(3);
  });

  it('every request not aborted equals the same request alone, bit for bit', async () => {
    const t = d.tally(reqs, await d.runRound(hg, reqs), solo);
    figures.push(`in process: ${t.requests} requests, ${t.aborted} aborted, ${t.dropped} dropped, ${t.equalToSolo}/${t.completed} equal to solo`);
    expect(t.differing).toEqual([]);
    expect(t.equalToSolo).toBe(t.completed);
    expect(t.aborted).toBeGreaterThan(0); // the aborts land (one that finishes first must equal solo)
    expect(t.completed + t.aborted + t.dropped).toBe(64);
  });

  it('two rounds in a process of their own (after a warm-up round): the same again, and RSS after the second within 5% of after the first', async () => {
    // glibc's mmap threshold fixed: freed large buffers (a decoded image, logits) go back to
    // the system at once instead of resting in an arena, so RSS shows what is still held
    const { stdout } = await promisify(execFile)(process.execPath, ['--expose-gc', fileURLToPath(new URL('./stress-driver.mjs', import.meta.url)), 'rounds', String(SEED)], {
      env: { ...process.env, MALLOC_MMAP_THRESHOLD_: '65536' },
      maxBuffer: 1 << 24,
    });
    const r = JSON.parse(stdout) as { solo: Record<string, string>; tallies: Tally[]; rss: [number, number] };
    expect(r.solo, 'solo digests in another process').toEqual(solo);
    for (const [i, t] of r.tallies.entries()) {
      figures.push(`process round ${i + 1}: ${t.requests} requests, ${t.aborted} aborted, ${t.dropped} dropped, ${t.equalToSolo}/${t.completed} equal to solo`);
      expect(t.differing).toEqual([]);
      expect(t.equalToSolo).toBe(t.completed);
      expect(t.completed + t.aborted + t.dropped).toBe(64);
    }
    const [rss1, rss2] = r.rss;
    const drift = (rss2 - rss1) / rss1;
    figures.push(`RSS ${(rss1 / 2 ** 20).toFixed(1)} MiB after round 1, ${(rss2 / 2 ** 20).toFixed(1)} MiB after round 2: drift ${(100 * drift).toFixed(2)}%`);
    expect(Math.abs(drift)).toBeLessThan(0.05);
  });

  it('the same in two worker_threads at once, each with its own session', async () => {
    const run = (): Promise<Tally | { error: string }> =>
      new Promise((resolve, reject) => {
        const w = new Worker(new URL('./stress-driver.mjs', import.meta.url), {
          workerData: { stress: true, seed: SEED, solo },
        });
        w.once('message', resolve);
        w.once('error', reject);
      });
    const results = await Promise.all([run(), run()]);
    for (const [i, r] of results.entries()) {
      if ('error' in r) throw new Error(r.error);
      figures.push(`worker ${i + 1}: ${r.requests} requests, ${r.aborted} aborted, ${r.dropped} dropped, ${r.equalToSolo}/${r.completed} equal to solo`);
      expect(r.differing).toEqual([]);
      expect(r.equalToSolo).toBe(r.completed);
      expect(r.completed + r.aborted + r.dropped).toBe(64);
    }
  });

  it('dispose() with requests in flight rejects them with ERR_DISPOSED; nothing crashes', async () => {
    const victim = await d.loadSession();
    const pending = reqs.slice(0, 16).map((r) =>
      d.runOne(victim, { ...r, abortAt: undefined, drop: false }).then(
        () => 'done',
        (e: { code?: string }) => e.code,
      ),
    );
    await new Promise((resolve) => setImmediate(resolve)); // some running, most queued
    victim.dispose();
    const outcomes = await Promise.all(pending);
    figures.push(`dispose in flight: ${outcomes.filter((o) => o === 'ERR_DISPOSED').length} of 16 rejected with ERR_DISPOSED, ${outcomes.filter((o) => o === 'done').length} had finished`);
    expect(
      outcomes.every((o) => o === 'done' || o === 'ERR_DISPOSED'),
      outcomes.join(' '),
    ).toBe(true);
    expect(outcomes.filter((o) => o === 'ERR_DISPOSED').length).toBeGreaterThan(0);
    // the session before is untouched and the process lives on
    expect((await d.runOne(hg, { ...reqs[0]!, abortAt: undefined, drop: false })).status).toBe('ok');
  });
});
