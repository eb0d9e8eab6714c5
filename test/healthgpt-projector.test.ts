// A plugin file's own projector (mm.0 / mm.2 in the H-LoRA file) replaces the vision file's,
// in the engine (VisionTower.loadProjector, hg_clip_load_projector): its features against a
// float64 mlp2x_gelu within the bound of the engine's f32 arithmetic; the comprehension plugin
// of the tiny reference HealthGPT rewritten with (1) the vision file's own comprehension
// projector, which must give the reference logits, and (2) the generation projector's
// weights, which must move them.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { GGUFFile } from '../lib/gguf/file.js';
import { GGUFWriter, type GGUFWriterValue } from '../lib/gguf/writer.js';
import type { GGUFType } from '../lib/gguf/constants.js';
import { HealthGPT } from '../lib/session/healthgpt.js';
import { VisionTower } from '../lib/vision/clip.js';
import { root, tempDir, maxRel } from './helpers.js';

const dir = join(root, 'test', 'fixtures', 'healthgpt');
const f = (name: string): string => join(dir, name);
const manifest = JSON.parse(readFileSync(f('manifest.json'), 'utf8')) as { question: string };
const floats = (b: Buffer): Float32Array => new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));
const ref = floats(readFileSync(f('ask.logits.f32')));

/** com.gguf plus mm.0 / mm.2 taken from clip.gguf's `prefix` projector (`parts` of them). */
async function pluginWithProjector(prefix: 'mm' | 'mm.gen', parts = ['0.weight', '0.bias', '2.weight', '2.bias']): Promise<string> {
  const com = GGUFFile.open(f('com.gguf'));
  const clip = GGUFFile.open(f('clip.gguf'));
  const w = new GGUFWriter();
  for (const [key, value] of Object.entries(com.info.metadata)) {
    const t = com.info.types[key]!;
    w.addKV(key, value as GGUFWriterValue, (t.type === 'array' ? t.itemType : t.type) as GGUFType);
  }
  for (const [i, t] of com.info.tensors.entries()) w.addTensor(t.name, t.shape, t.typeId, new Uint8Array(await com.tensorData(i)));
  for (const part of parts) {
    const i = clip.tensorIndex(`${prefix}.${part}`);
    const t = clip.info.tensors[i]!;
    w.addTensor(`mm.${part}`, t.shape, t.typeId, new Uint8Array(await clip.tensorData(i)));
  }
  com.close();
  clip.close();
  const out = join(tempDir(), `com-${prefix}-${parts.length}.gguf`);
  await w.write(out);
  return out;
}

/** erf in double precision: Maclaurin series below 3, erfc's continued fraction above. */
function erf(x: number): number {
  const ax = Math.abs(x);
  if (ax < 3) {
    let term = ax;
    let sum = ax;
    for (let n = 1; n < 80; n++) {
      term *= (-ax * ax) / n;
      const t = term / (2 * n + 1);
      sum += t;
      if (Math.abs(t) < 1e-17 * Math.abs(sum)) break;
    }
    return Math.sign(x) * sum * (2 / Math.sqrt(Math.PI));
  }
  if (ax > 6) return Math.sign(x);
  let g = ax;
  for (let n = 60; n >= 1; n--) g = ax + n / 2 / g;
  return Math.sign(x) * (1 - Math.exp(-ax * ax) / Math.sqrt(Math.PI) / g);
}

/**
 * mlp2x_gelu in float64 over n rows of k features, with, per output, the bound on what f32
 * arithmetic may differ by (any summation order, with or without FMA): a sum of K products
 * is within gamma_K = K u / (1 - K u) of sum |w x| (u = 2^-24), plus one rounding of the bias;
 * the GELU passes an input error on at most 1.13 times (max |gelu'|) and adds a few roundings
 * of its own (erff within 2 ulp, 1 + erf, the products: 8 u of |v| + |gelu(v)|); the second
 * linear carries the first's errors through sum |w2| err plus its own gamma_K term.
 */
async function projectorReference(file: string, prefix: string, x: Float32Array, n: number): Promise<{ y: Float64Array; bound: Float64Array }> {
  const g = GGUFFile.open(file);
  const read = async (name: string): Promise<{ v: Float32Array; shape: number[] }> => {
    const i = g.tensorIndex(`${prefix}.${name}`);
    return { v: floats(await g.convertTensor(i, 0)), shape: g.info.tensors[i]!.shape.map(Number) };
  };
  const [w0, b0, w2, b2] = [await read('0.weight'), await read('0.bias'), await read('2.weight'), await read('2.bias')];
  g.close();
  const k = w0.shape[0]!;
  const d = w0.shape[1]!;
  const m = w2.shape[1]!;
  const u = 2 ** -24;
  const gamma = (terms: number): number => (terms * u) / (1 - terms * u);
  const y = new Float64Array(n * m);
  const bound = new Float64Array(n * m);
  const h = new Float64Array(d);
  const eh = new Float64Array(d);
  for (let r = 0; r < n; r++) {
    for (let i = 0; i < d; i++) {
      let s = 0;
      let a = 0;
      for (let j = 0; j < k; j++) {
        const p = w0.v[i * k + j]! * x[r * k + j]!;
        s += p;
        a += Math.abs(p);
      }
      const v = s + b0.v[i]!;
      h[i] = 0.5 * v * (1 + erf(v / Math.SQRT2));
      const ev = gamma(k) * a + u * Math.abs(v);
      eh[i] = 1.13 * ev + 8 * u * (Math.abs(v) + Math.abs(h[i]!));
    }
    for (let o = 0; o < m; o++) {
      let s = 0;
      let a = 0;
      let carried = 0;
      for (let i = 0; i < d; i++) {
        s += w2.v[o * d + i]! * h[i]!;
        a += Math.abs(w2.v[o * d + i]! * h[i]!);
        carried += Math.abs(w2.v[o * d + i]!) * eh[i]!;
      }
      y[r * m + o] = s + b2.v[o]!;
      bound[r * m + o] = carried + gamma(d) * a + u * Math.abs(y[r * m + o]!);
    }
  }
  return { y, bound };
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
  it('erf (the reference below): known values to double precision', () => {
    // erf(0.5), erf(1), erf(2), erf(3.5) from tables (Abramowitz & Stegun 7.1, 16+ digits)
    expect(erf(0)).toBe(0);
    expect(erf(0.5)).toBeCloseTo(0.5204998778130465, 14);
    expect(erf(1)).toBeCloseTo(0.8427007929497149, 14);
    expect(erf(-2)).toBeCloseTo(-0.9953222650189527, 14);
    expect(erf(3.5)).toBeCloseTo(0.9999992569016276, 14);
    expect(erf(7)).toBe(1);
  });

  it("the engine runs the plugin's projector: a float64 mlp2x_gelu within its f32 arithmetic's bound", async () => {
    const plugin = await pluginWithProjector('mm.gen'); // not the tower's comprehension weights
    const tower = await VisionTower.load(f('clip.gguf'), { threads: 2 });
    try {
      const feats = await tower.encode(floats(readFileSync(f('pixels.f32'))));
      const own = await tower.project(feats);
      expect(await tower.loadProjector(plugin, 'comprehension')).toBe(true);
      const got = await tower.project(feats);
      const n = tower.info.nPatches;
      const { y, bound } = await projectorReference(plugin, 'mm', feats, n);
      let worst = 0; // |got - y| / bound: at most 1
      let peak = 0;
      for (let i = 0; i < y.length; i++) {
        worst = Math.max(worst, Math.abs(got[i]! - y[i]!) / bound[i]!);
        peak = Math.max(peak, Math.abs(y[i]!));
      }
      expect(got.length).toBe(y.length);
      expect(worst).toBeLessThanOrEqual(1);
      // the bound is tight enough to mean something (a wrong GELU or bias is far outside it),
      // and the projector did change
      expect(Math.max(...bound) / peak).toBeLessThan(1e-4);
      expect(maxRel(own, Float32Array.from(y))).toBeGreaterThan(1e-2);
    } finally {
      tower.dispose();
    }
  });

  it('a plugin without a projector leaves the tower as it was; a broken one is named and changes nothing', async () => {
    const tower = await VisionTower.load(f('clip.gguf'), { threads: 1 });
    try {
      const feats = new Float32Array(tower.info.nEmbd * 2).map((_, i) => Math.sin(i));
      const before = await tower.project(feats, 'generation');
      expect(await tower.loadProjector(f('com.gguf'), 'generation')).toBe(false);
      const broken = await pluginWithProjector('mm', ['0.weight', '0.bias', '2.weight']);
      await expect(tower.loadProjector(broken, 'generation')).rejects.toMatchObject({ code: 'ERR_INVALID_FILE', message: expect.stringMatching(/com-mm-3\.gguf: tensor mm\.2\.bias is missing/) });
      expect(await tower.project(feats, 'generation')).toEqual(before);
      expect(tower.info.generationProjectorDim).toBe(before.length / 2);
    } finally {
      tower.dispose();
    }
  });

  it("the plugin's projector is used in place of the vision file's", async () => {
    // same weights as the vision file's comprehension projector: the reference logits (the
    // bound is the one of healthgpt.test.ts)
    const same = maxRel(await firstLogits(await pluginWithProjector('mm')), ref);
    expect(same).toBeLessThan(1e-5);
    // another projector's weights: far from them
    expect(maxRel(await firstLogits(await pluginWithProjector('mm.gen')), ref)).toBeGreaterThan(1e-2);
  });
});
