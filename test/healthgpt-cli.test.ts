// `healthgpt ask` and `healthgpt generate` on the tiny reference HealthGPT
// (tools/reference/make_healthgpt_reference.py): JSON output, the PNG written, errors by name.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { decodeImage } from '../lib/image/index.js';
import { LanguageModel } from '../lib/model/model.js';
import { answerText } from '../lib/session/answer-text.js';
import { cli, root, tempDir } from './helpers.js';

const dir = join(root, 'test', 'fixtures', 'healthgpt');
const f = (name: string): string => join(dir, name);
const manifest = JSON.parse(readFileSync(f('manifest.json'), 'utf8')) as { question: string; ask: { argmax: number } };
const refIndices = [...new Int32Array(new Uint8Array(readFileSync(f('gen.indices.i32'))).buffer)];
const base = ['-m', f('lm.gguf'), '--vision', f('clip.gguf'), '--threads', '2'];

describe('healthgpt ask / generate', () => {
  it('ask --json: {answer, tokens, stop, timings}, greedy first token as the reference, the answer decoded as HealthGPT decodes', async () => {
    const r = cli(['ask', ...base, '--plugin-com', f('com.gguf'), '--image', f('input.png'), manifest.question, '-n', '3', '--json']);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    const out = JSON.parse(r.stdout) as { answer: string; tokens: number[]; stop: unknown; timings: Record<string, number> };
    expect(out.tokens.length).toBe(3);
    expect(out.tokens[0]).toBe(manifest.ask.argmax);
    expect(out.stop).toEqual({ reason: 'length', token: null, text: null });
    const lm = await LanguageModel.load(f('lm.gguf'), { threads: 1 });
    try {
      expect(out.answer).toBe(answerText(lm.tokenizer, out.tokens));
    } finally {
      lm.dispose();
    }
    for (const k of ['load_ms', 'encode_ms', 'prefill_ms', 'decode_ms']) expect(out.timings[k]).toBeGreaterThanOrEqual(0);
  });

  it('ask streams the same text as --json gives', () => {
    const args = ['ask', ...base, '--plugin-com', f('com.gguf'), '-i', f('input.png'), manifest.question, '-n', '3'];
    const streamed = cli(args);
    const json = JSON.parse(cli([...args, '--json']).stdout) as { answer: string };
    expect(streamed.status).toBe(0);
    expect(streamed.stdout).toBe(`${json.answer}\n`);
  });

  // F32 KV cache as the reference computes (the default f16 cache rounds keys and values,
  // and one near tie among the 1024 greedy steps then flips)
  it('generate -o out.png: a 256x256 PNG of the reference indices', async () => {
    const out = join(tempDir(), 'out.png');
    const r = cli(['generate', ...base, '--kv-type', 'f32', '--plugin-gen', f('gen.gguf'), '--vqgan', f('vqgan.gguf'), '--task', 'reconstruct', '--image', f('input.png'), '-o', out, '--json']);
    expect(r.status).toBe(0);
    const j = JSON.parse(r.stdout) as { output: string; width: number; height: number; indices: number[] };
    expect([j.output, j.width, j.height]).toEqual([out, 256, 256]);
    expect(j.indices).toEqual(refIndices);
    const png = await decodeImage(out);
    expect([png.format, png.width, png.height]).toEqual(['png', 256, 256]);
  }, 120_000);

  it("--gpu: 'cuda' without CUDA fails saying why, 'off' runs quietly on the CPU, bad values are refused", async () => {
    const probe = await LanguageModel.load(f('lm.gguf'), { threads: 1 });
    const onCuda = probe.info.backend.startsWith('cuda: ');
    probe.dispose();
    const ask = ['ask', ...base, '--plugin-com', f('com.gguf'), manifest.question, '-n', '1'];
    if (!onCuda) {
      const r = cli([...ask, '--gpu', 'cuda']);
      expect(r.status).toBe(1);
      expect(r.stderr).toMatch(/gpu 'cuda': /);
    }
    const off = cli([...ask, '--gpu', 'off', '--json']);
    expect(off.status).toBe(0);
    expect(off.stderr).toBe('');
    const bad = cli([...ask, '--gpu', 'gpu0']);
    expect(bad.status).not.toBe(0);
    expect(bad.stderr).toMatch(/--gpu/);
  });

  it('refuses bad arguments by name', () => {
    const gen = ['generate', ...base, '--plugin-gen', f('gen.gguf'), '--vqgan', f('vqgan.gguf')];
    let r = cli([...gen, '--task', 'paint', '-o', '/tmp/x.png']);
    expect(r.status).not.toBe(0);
    expect(r.stderr).toMatch(/--task.*paint/s);
    r = cli([...gen, '--task', 'ct2mri', '-o', join(tempDir(), 'x.png')]);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/task ct2mri needs an input image/);
    r = cli(['ask', ...base, '--plugin-com', f('com.gguf'), '--window', 'wide', 'q']);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/--window must be "center,width".*"wide"/);
    r = cli(['ask', ...base, '--plugin-com', f('missing.gguf'), 'q']);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/missing\.gguf/);
    // a plugin file in the other's place: its hlora.plugin says which it is
    r = cli(['ask', ...base, '--plugin-com', f('gen.gguf'), 'q']);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/plugins\.comprehension: .*gen\.gguf is the "generation" plugin/);
    // --output is checked before the model loads: no folder to write into, a folder in a file's
    // place, a file in a folder's place (several inputs); nothing is left behind
    const t = tempDir();
    const task = [...gen, '--task', 'reconstruct', '-i', f('input.png')];
    r = cli([...task, '-o', join(t, 'nodir', 'x.png')]);
    expect([r.status, r.stderr]).toEqual([1, expect.stringMatching(/--output .*nodir.*the folder .* does not exist/)]);
    r = cli([...task, '-o', t]);
    expect([r.status, r.stderr]).toEqual([1, expect.stringMatching(/--output .*is a folder/)]);
    r = cli([...task, '-i', f('input.png'), '-o', f('input.png')]);
    expect([r.status, r.stderr]).toEqual([1, expect.stringMatching(/it must be a folder, and a file is there/)]);
    expect(readdirSync(t)).toEqual([]);
  });

  it('--threads beyond the engine pool, and numbers past a C int, are refused by name, not wrapped', () => {
    let r = cli(['ask', '-m', f('lm.gguf'), '--vision', f('clip.gguf'), '--plugin-com', f('com.gguf'), '--threads', '100000', 'q']);
    expect([r.status, r.stderr]).toEqual([1, expect.stringMatching(/option '--threads <n>' argument '100000' is invalid\. an integer in 0\.\.1024/)]);
    r = cli(['ask', ...base, '--plugin-com', f('com.gguf'), '--context', '4294967297', 'q']);
    expect([r.status, r.stderr]).toEqual([1, expect.stringMatching(/option '--context <n>' argument '4294967297' is invalid\. an integer in 0\.\.2147483647/)]);
    for (const bad of ['', '1.5', 'x']) {
      r = cli(['quantize', f('lm.gguf'), join(tempDir(), 'q.gguf'), 'q8_0', '--threads', bad]);
      expect([r.status, r.stderr]).toEqual([1, expect.stringMatching(/option '--threads <n>' argument .* is invalid/)]);
    }
  });
});
