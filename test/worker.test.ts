// The library from worker_threads: the addon loads per thread and two workers generate at once.
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
});
