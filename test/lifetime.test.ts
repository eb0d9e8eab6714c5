// The engine objects' lifetime through the addon's one handle mechanism (src/handle.h), in
// processes and workers of their own so that a crash shows as an exit status: dispose() while
// jobs are queued and running (each rejects with ERR_DISPOSED or had finished), dispose() of
// an idle object (freed off the JS thread by a job of its own), the process exiting while that
// job or a compute job is in flight, and workers ending or terminated likewise.
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { root } from './helpers.js';

const run = promisify(execFile);
const fx = (p: string): string => join(root, 'test', 'fixtures', p);

// Loads the three objects and returns one job per object: a model eval, a CLIP encode, a VQGAN decode.
const setup = `
const { native } = require(${JSON.stringify(join(root, 'dist', 'native.js'))});
const addon = native();
async function open() {
  const model = await addon.Model.load(${JSON.stringify(fx('phi3/gqa.f32.gguf'))}, { threads: 2, contextSize: 64 });
  const clip = await addon.Clip.load(${JSON.stringify(fx('clip/tiny.f32.gguf'))}, { threads: 2 });
  const vqgan = await addon.Vqgan.load(${JSON.stringify(fx('vqgan/tiny.gguf'))}, { threads: 2 });
  const s = clip.info().imageSize;
  const jobs = {
    model: () => model.eval(new Int32Array(32).fill(1), 0, true),
    clip: () => clip.encode(new Float32Array(3 * s * s), 0),
    vqgan: () => vqgan.decode(new Int32Array(vqgan.info().latent ** 2)),
  };
  return { objects: { model, clip, vqgan }, jobs };
}
const outcome = (p) => p.then(() => 'done', (e) => e.code);
`;

async function node(script: string, args: string[] = []): Promise<string> {
  const { stdout } = await run(process.execPath, ['-e', setup + script, ...args], { cwd: root, maxBuffer: 1 << 20 });
  return stdout.trim();
}

describe('engine object lifetime', () => {
  it('dispose() with jobs queued and running: each rejects with ERR_DISPOSED or had finished; later calls throw it', async () => {
    const out = await node(`
(async () => {
  const { objects, jobs } = await open();
  const report = {};
  for (const k of Object.keys(jobs)) {
    const pending = [1, 2, 3, 4].map(() => outcome(jobs[k]()));
    objects[k].dispose();
    objects[k].dispose(); // twice is harmless
    const later = (() => { try { jobs[k](); return 'no throw'; } catch (e) { return e.code; } })();
    report[k] = { pending: await Promise.all(pending), later };
  }
  console.log(JSON.stringify(report));
})();`);
    const report = JSON.parse(out) as Record<string, { pending: string[]; later: string }>;
    for (const k of ['model', 'clip', 'vqgan']) {
      expect(report[k]!.later, k).toBe('ERR_DISPOSED');
      expect(
        report[k]!.pending.every((o) => o === 'ERR_DISPOSED' || o === 'done'),
        `${k}: ${report[k]!.pending}`,
      ).toBe(true);
      // the ones queued behind the first never ran
      expect(
        report[k]!.pending.slice(1).every((o) => o === 'ERR_DISPOSED'),
        `${k}: ${report[k]!.pending}`,
      ).toBe(true);
    }
  });

  it('the process exits cleanly while a dispose or a compute job is in flight', async () => {
    // exit at once after dispose() of idle objects, after dispose() with jobs running, and with jobs running undisposed
    for (const mode of ['idle', 'busy', 'undisposed']) {
      const out = await node(
        `
(async () => {
  const { objects, jobs } = await open();
  const mode = process.argv[1];
  if (mode !== 'idle') for (const k of Object.keys(jobs)) jobs[k]().catch(() => {});
  if (mode !== 'undisposed') for (const o of Object.values(objects)) o.dispose();
  console.log('exiting');
  process.exit(0);
})();`,
        [mode],
      );
      expect(out, mode).toBe('exiting');
    }
  });

  it('workers that end, or are terminated, with disposes and jobs in flight leave the process whole', async () => {
    const worker = `
(async () => {
  const { objects, jobs } = await open();
  for (const k of Object.keys(jobs)) jobs[k]().catch(() => {});
  for (const o of Object.values(objects)) o.dispose();
  const { parentPort, workerData } = require('node:worker_threads');
  parentPort.postMessage('disposed');
  // a worker to be terminated stays alive until it is (else it may end first, with code 0)
  if (workerData.hold) setInterval(() => {}, 1000);
})();`;
    const out = await node(`
const { Worker } = require('node:worker_threads');
(async () => {
  const codes = [];
  for (const terminate of [false, true, false, true]) {
    const w = new Worker(${JSON.stringify(setup + worker)}, { eval: true, workerData: { hold: terminate } });
    const exited = new Promise((resolve) => w.once('exit', resolve));
    await new Promise((resolve, reject) => { w.once('message', resolve); w.once('error', reject); });
    if (terminate) await w.terminate();
    codes.push(await exited);
  }
  // the main thread's objects still work after the workers went
  const { objects, jobs } = await open();
  const r = await outcome(jobs.model());
  for (const o of Object.values(objects)) o.dispose();
  console.log(JSON.stringify({ codes, main: r }));
})();`);
    const r = JSON.parse(out) as { codes: number[]; main: string };
    expect(r.main).toBe('done');
    expect(r.codes).toEqual([0, 1, 0, 1]); // terminate() exits with 1
  });
});
