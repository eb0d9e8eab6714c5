// The library from worker_threads: the addon loads per thread and two workers generate at once.
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { describe, expect, it } from 'vitest';
import { root } from './helpers.js';

const script = `
const { parentPort, workerData } = require('node:worker_threads');
const { LanguageModel } = require(workerData.lib);
(async () => {
  const m = await LanguageModel.load(workerData.model, { threads: 1 });
  const out = [];
  for await (const t of m.generate([251, 92, 237], { maxTokens: 8, stopTokens: [] })) out.push(t);
  m.dispose();
  parentPort.postMessage(out);
})().catch((e) => parentPort.postMessage({ error: e.message }));
`;

function run(): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const w = new Worker(script, { eval: true, workerData: { lib: join(root, 'dist', 'index.js'), model: join(root, 'test', 'fixtures', 'phi3', 'gqa.f32.gguf') } });
    w.once('message', resolve);
    w.once('error', reject);
  });
}

describe('worker_threads', () => {
  it('two workers load the model and generate the same greedy tokens', async () => {
    const [a, b] = await Promise.all([run(), run()]);
    expect(Array.isArray(a)).toBe(true);
    expect((a as number[]).length).toBe(8);
    expect(b).toEqual(a);
  });

  it('a worker terminated while its model is busy never takes the host process down', () => {
    // Completions that reach a terminating environment used to throw a C++ Napi::Error that
    // nothing could catch there (std::terminate). Run in a child so a regression fails the
    // test instead of killing the test runner.
    const busy = `
const { parentPort, workerData } = require('node:worker_threads');
const { LanguageModel } = require(workerData.lib);
(async () => {
  const m = await LanguageModel.load(workerData.model, { threads: 1 });
  parentPort.postMessage('loaded');
  for (let i = 0; i < 4; i++) m.evaluate([251, 92, 237, 5, 6, 7, 8, 9, 10, 11]).catch(() => {});
  (async () => { for await (const t of m.generate([251, 92, 237], { maxTokens: 200, stopTokens: [] })) {} })().catch(() => {});
})();
`;
    const host = `
const { Worker } = require('node:worker_threads');
const one = (delay) => new Promise((resolve) => {
  const w = new Worker(${JSON.stringify(busy)}, { eval: true, workerData: ${JSON.stringify({ lib: join(root, 'dist', 'index.js'), model: join(root, 'test', 'fixtures', 'phi3', 'gqa.f32.gguf') })} });
  w.on('message', () => setTimeout(() => w.terminate().then(resolve), delay));
  w.on('error', resolve);
});
(async () => { for (let i = 0; i < 12; i++) await one(i % 4); console.log('survived 12'); })();
`;
    const r = spawnSync(process.execPath, ['-e', host], { encoding: 'utf8', timeout: 60_000 });
    expect(r.stderr, 'stderr').not.toMatch(/terminate called/);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toContain('survived 12');
  });
});
