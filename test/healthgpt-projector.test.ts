// A plugin file's own projector (mm.0 / mm.2 in the H-LoRA file) replaces the vision file's:
// the comprehension plugin of the tiny reference HealthGPT rewritten with (1) the vision
// file's own comprehension projector, which must give the reference logits, and (2) the
// generation projector's weights, which must move them; and erf against known values.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { GGUFFile } from '../lib/gguf/file.js';
import { GGUFWriter, type GGUFWriterValue } from '../lib/gguf/writer.js';
import type { GGUFType } from '../lib/gguf/constants.js';
import { HealthGPT } from '../lib/session/healthgpt.js';
import { erf } from '../lib/session/projector.js';
import { root, tempDir, maxRel } from './helpers.js';

const dir = join(root, 'test', 'fixtures', 'healthgpt');
const f = (name: string): string => join(dir, name);
const manifest = JSON.parse(readFileSync(f('manifest.json'), 'utf8')) as { question: string };
const ref = (() => {
  const b = readFileSync(f('ask.logits.f32'));
  return new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));
})();

/** com.gguf plus mm.0 / mm.2 taken from clip.gguf's `prefix` projector. */
async function pluginWithProjector(prefix: 'mm' | 'mm.gen'): Promise<string> {
  const com = GGUFFile.open(f('com.gguf'));
  const clip = GGUFFile.open(f('clip.gguf'));
  const w = new GGUFWriter();
  for (const [key, value] of Object.entries(com.info.metadata)) {
    const t = com.info.types[key]!;
    w.addKV(key, value as GGUFWriterValue, (t.type === 'array' ? t.itemType : t.type) as GGUFType);
  }
  for (const [i, t] of com.info.tensors.entries()) w.addTensor(t.name, t.shape, t.typeId, new Uint8Array(await com.tensorData(i)));
  for (const part of ['0.weight', '0.bias', '2.weight', '2.bias']) {
    const i = clip.tensorIndex(`${prefix}.${part}`);
    const t = clip.info.tensors[i]!;
    w.addTensor(`mm.${part}`, t.shape, t.typeId, new Uint8Array(await clip.tensorData(i)));
  }
  com.close();
  clip.close();
  const out = join(tempDir(), `com-${prefix}.gguf`);
  await w.write(out);
  return out;
}

async function firstLogits(plugin: string): Promise<Float32Array> {
  const hg = await HealthGPT.load({ model: f('lm.gguf'), vision: f('clip.gguf'), plugins: { comprehension: plugin }, threads: 2, kvType: 'f32' });
  try {
    const { prompt } = await hg.askPrompt({ image: f('input.png'), question: manifest.question });
    const all = await hg.model.evaluate(prompt, { plugin: 'comprehension' });
    return all.slice(all.length - hg.model.info.nVocab);
  } finally {
    hg.dispose();
  }
}

describe('plugin projectors', () => {
  it('erf: known values to double precision', () => {
    // erf(0.5), erf(1), erf(2), erf(3.5) from tables (Abramowitz & Stegun 7.1, 16+ digits)
    expect(erf(0)).toBe(0);
    expect(erf(0.5)).toBeCloseTo(0.5204998778130465, 14);
    expect(erf(1)).toBeCloseTo(0.8427007929497149, 14);
    expect(erf(-2)).toBeCloseTo(-0.9953222650189527, 14);
    expect(erf(3.5)).toBeCloseTo(0.9999992569016276, 14);
    expect(erf(7)).toBe(1);
  });

  it("the plugin's projector is used in place of the vision file's", async () => {
    // same weights as the vision file's comprehension projector: the reference logits (the
    // JS GELU and the engine matmul in place of the native projector: measured 2.4e-7 of the
    // largest logit, as the native path's 2.5e-7; the bound is the one of healthgpt.test.ts)
    const same = maxRel(await firstLogits(await pluginWithProjector('mm')), ref);
    expect(same).toBeLessThan(1e-5);
    // another projector's weights: far from them
    expect(maxRel(await firstLogits(await pluginWithProjector('mm.gen')), ref)).toBeGreaterThan(1e-2);
  });
});
