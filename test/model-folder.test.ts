// One name loads every part (lib/session/model-folder.ts): `ask` / `generate -m FOLDER`, `-m m3`
// after pull, HealthGPT.load('folder/'); separate files replace the folder's; a missing part is
// named with how to get it. The folder holds the tiny reference HealthGPT's files
// (test/fixtures/healthgpt) under other names, so only its healthgpt.json can say which is which.
import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { HealthGPT } from '../lib/session/healthgpt.js';
import { expandLoadOptions, modelParts, CLI_PART_NAMES } from '../lib/session/model-folder.js';
import { resolveModelFiles } from '../lib/session/model-files.js';
import { cli, root, tempDir } from './helpers.js';

const fx = join(root, 'test', 'fixtures', 'healthgpt');
const ref = JSON.parse(readFileSync(join(fx, 'manifest.json'), 'utf8')) as { question: string; ask: { argmax: number } };
const refIndices = [...new Int32Array(new Uint8Array(readFileSync(join(fx, 'gen.indices.i32'))).buffer)];
const PARTS = [
  ['lm.gguf', 'a-language.gguf', 'language-model', undefined],
  ['clip.gguf', 'b-tower.gguf', 'vision', undefined],
  ['com.gguf', 'c-com.gguf', 'plugin', 'comprehension'],
  ['gen.gguf', 'd-gen.gguf', 'plugin', 'generation'],
  ['vqgan.gguf', 'e-decoder.gguf', 'image-decoder', undefined],
] as const;

/** A converted folder of the fixture's files, with the parts `drop` left out of it. */
function folder(dir: string, drop: string[] = []): string {
  mkdirSync(dir, { recursive: true });
  const files: object[] = [];
  for (const [from, to, role, plugin] of PARTS) {
    if (drop.includes(role) || (plugin && drop.includes(plugin))) continue;
    copyFileSync(join(fx, from), join(dir, to));
    files.push({ file: to, role, ...(plugin ? { plugin } : {}), sources: [from], bytes: 0 });
  }
  writeFileSync(join(dir, 'healthgpt.json'), JSON.stringify({ format: 'healthgpt-model', version: 1, type: 'f32', files, notes: [] }));
  return dir;
}

describe('one name for every part', () => {
  const base = tempDir('healthgpt-folder-');
  let full: string;
  beforeAll(() => {
    full = folder(join(base, 'healthgpt-tiny'));
    folder(join(base, 'cache', 'models', 'm3'));
  });
  const q = ref.question;

  it('ask -m FOLDER and -m m3 (pulled into $HEALTHGPT_CACHE) answer as the separate files do', () => {
    const files = ['-m', join(fx, 'lm.gguf'), '--vision', join(fx, 'clip.gguf'), '--plugin-com', join(fx, 'com.gguf')];
    const want = cli(['ask', ...files, '-i', join(fx, 'input.png'), q, '-n', '3', '--json', '--threads', '2']);
    expect(want.status, want.stderr).toBe(0);
    const w = JSON.parse(want.stdout) as { tokens: number[]; answer: string };
    expect(w.tokens[0]).toBe(ref.ask.argmax);
    for (const [name, env] of [
      [full, {}],
      ['m3', { HEALTHGPT_CACHE: join(base, 'cache') }],
    ] as const) {
      const r = cli(['ask', '-m', name, '-i', join(fx, 'input.png'), q, '-n', '3', '--json', '--threads', '2'], env);
      expect(r.status, r.stderr).toBe(0);
      const g = JSON.parse(r.stdout) as { tokens: number[]; answer: string };
      expect([g.tokens, g.answer]).toEqual([w.tokens, w.answer]);
    }
  });

  it('generate -m FOLDER: the reference image tokens', () => {
    const out = join(base, 'out.png');
    const r = cli(['generate', '-m', full, '--kv-type', 'f32', '--threads', '2', '--task', 'reconstruct', '-i', join(fx, 'input.png'), '-o', out, '--json']);
    expect(r.status, r.stderr).toBe(0);
    expect((JSON.parse(r.stdout) as { indices: number[] }).indices).toEqual(refIndices);
  }, 120_000);

  it("HealthGPT.load('folder/') loads every part it lists", async () => {
    const hg = await HealthGPT.load(full);
    try {
      expect(hg.vqgan).toBeDefined();
      expect([...hg.model.plugins].sort()).toEqual(['comprehension', 'generation']);
      const a = await hg.answer({ image: join(fx, 'input.png'), question: q, maxTokens: 1 });
      expect(a.tokens).toEqual([ref.ask.argmax]);
    } finally {
      hg.dispose();
    }
  });

  it("serve's resolveModelFiles takes the same names: the folder through its healthgpt.json, m3 from the cache", async () => {
    const m3 = join(base, 'cache', 'models', 'm3');
    const prev = process.env.HEALTHGPT_CACHE;
    process.env.HEALTHGPT_CACHE = join(base, 'cache');
    try {
      expect(await resolveModelFiles(['m3'])).toMatchObject({
        model: join(m3, 'a-language.gguf'),
        vision: join(m3, 'b-tower.gguf'),
        plugins: { comprehension: join(m3, 'c-com.gguf'), generation: join(m3, 'd-gen.gguf') },
        vqgan: join(m3, 'e-decoder.gguf'),
      });
      await expect(resolveModelFiles(['l14'])).rejects.toThrow(/l14: not in the cache .*healthgpt pull l14/);
    } finally {
      if (prev === undefined) delete process.env.HEALTHGPT_CACHE;
      else process.env.HEALTHGPT_CACHE = prev;
    }
    expect((await resolveModelFiles([full])).vqgan).toBe(join(full, 'e-decoder.gguf'));
  });

  it("separate files replace the folder's parts, the others stay", () => {
    const other = join(base, 'other-com.gguf');
    const o = expandLoadOptions({ model: full, plugins: { comprehension: other }, threads: 1 });
    expect(o).toEqual({
      model: join(full, 'a-language.gguf'),
      vision: join(full, 'b-tower.gguf'),
      plugins: { comprehension: other, generation: join(full, 'd-gen.gguf') },
      vqgan: join(full, 'e-decoder.gguf'),
      threads: 1,
    });
    expect(modelParts(full, { vqgan: 'mine.gguf' }, ['vqgan'], CLI_PART_NAMES).vqgan).toBe('mine.gguf');
    // and the CLI uses it: a replaced plugin that does not exist is the one refused
    const r = cli(['ask', '-m', full, '--plugin-com', other, q]);
    expect(r.status).toBe(1);
    expect(r.stderr).toContain(other);
    // a GGUF model is left as it is
    expect(expandLoadOptions({ model: join(fx, 'lm.gguf') })).toEqual({ model: join(fx, 'lm.gguf') });
  });

  it('a part the command needs and the folder lacks is named, with how to get it', async () => {
    const noVq = folder(join(base, 'no-vqgan'), ['image-decoder']);
    let r = cli(['generate', '-m', noVq, '--task', 'reconstruct', '-i', join(fx, 'input.png'), '-o', join(base, 'x.png')]);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(
      /no-vqgan has no VQGAN \(vqgan\.gguf\): the VQGAN is not on the Hugging Face Hub: download last\.ckpt .*healthgpt pull m3 --vqgan last\.ckpt.*or give --vqgan vqgan\.gguf/,
    );
    // ask does not need it
    r = cli(['ask', '-m', noVq, '-i', join(fx, 'input.png'), q, '-n', '1', '--json']);
    expect(r.status, r.stderr).toBe(0);
    const noGen = folder(join(base, 'no-gen'), ['generation']);
    r = cli(['generate', '-m', noGen, '--task', 'reconstruct', '-i', join(fx, 'input.png'), '-o', join(base, 'x.png')]);
    expect(r.stderr).toMatch(/no-gen has no generation plugin \(generation\.gguf\): .*--plugin-gen generation\.gguf/);
    const noVision = folder(join(base, 'no-vision'), ['vision']);
    r = cli(['ask', '-m', noVision, q]);
    expect(r.stderr).toMatch(/no-vision has no vision tower \(vision\.gguf\): convert one with healthgpt convert --vision .*or give --vision vision\.gguf/);
    await expect(HealthGPT.load(noVision)).rejects.toThrow(/no-vision has no vision tower .*or give vision vision\.gguf/);
    const noCom = folder(join(base, 'no-com'), ['comprehension']);
    r = cli(['ask', '-m', noCom, q]);
    expect(r.stderr).toMatch(/no-com has no comprehension plugin \(comprehension\.gguf\): .*--plugin-com/);
    r = cli(['ask', '-m', 'l14', q], { HEALTHGPT_CACHE: join(base, 'cache') });
    expect(r.stderr).toMatch(/l14: not in the cache \(.*models\/l14\); download and convert it with: healthgpt pull l14/);
    r = cli(['ask', '-m', join(fx, 'lm.gguf'), '--plugin-com', join(fx, 'com.gguf'), q]);
    expect(r.stderr).toMatch(/--vision is needed: the CLIP vision tower GGUF \(or name a converted folder, or m3 \/ l14, as the model\)/);
    r = cli(['ask', '-m', join(base, 'nowhere'), q]);
    expect(r.stderr).toMatch(/nowhere.*no such file or folder/);
    // a manifest naming a file the folder lost
    const lost = folder(join(base, 'lost'));
    writeFileSync(join(lost, 'healthgpt.json'), readFileSync(join(lost, 'healthgpt.json'), 'utf8').replace('b-tower.gguf', 'gone.gguf'));
    r = cli(['ask', '-m', lost, q]);
    expect(r.stderr).toMatch(/healthgpt\.json lists gone\.gguf \(vision\), which the folder does not have/);
    r = cli(['ask', '-m', fx, q]);
    expect(r.stderr).toMatch(/no healthgpt\.json \(not a folder written by healthgpt convert or healthgpt pull\)/);
  });
});
