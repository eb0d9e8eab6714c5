// The vision tower through the TypeScript API: both taps and both projectors against
// transformers' golden vectors (tools/reference/make_clip_reference.py), the tap rule's sizes,
// concurrent calls, dispose, and argument validation.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HealthGPTError } from '../lib/errors.js';
import { VisionTower } from '../lib/index.js';
import { native } from '../lib/native.js';
import { root, maxRel } from './helpers.js';

const fixtures = join(root, 'test', 'fixtures', 'clip');

interface Golden {
  image: number;
  nEmbd: number;
  nPatches: number;
  comprehension: number;
  generation: number;
  pixels: Float32Array;
  hidden: Float32Array[];
  projected: Float32Array;
  genProjected: Float32Array;
}

// Layout: tools/reference/make_clip_reference.py's docstring.
function readGolden(variant: string): Golden {
  const b = readFileSync(join(fixtures, `tiny.${variant}.ref`));
  expect(b.toString('latin1', 0, 4)).toBe('HGCL');
  const h = Array.from({ length: 9 }, (_, i) => b.readUInt32LE(4 + 4 * i));
  expect(h[0]).toBe(1);
  const [, image, nEmbd, nPatches, nHidden, proj, genProj, comprehension, generation] = h;
  let off = 40;
  const take = (n: number): Float32Array => {
    const a = new Float32Array(b.buffer.slice(b.byteOffset + off, b.byteOffset + off + 4 * n));
    off += 4 * n;
    return a;
  };
  const pixels = take(3 * image * image);
  const hidden = Array.from({ length: nHidden }, () => take(nPatches * nEmbd));
  const projected = take(nPatches * proj);
  const genProjected = take(nPatches * genProj);
  expect(off).toBe(b.length);
  return { image, nEmbd, nPatches, comprehension, generation, pixels, hidden, projected, genProjected };
}

describe('VisionTower (tiny CLIP, f32)', () => {
  const g = readGolden('f32');
  let tower: VisionTower;
  beforeAll(async () => {
    tower = await VisionTower.load(join(fixtures, 'tiny.f32.gguf'), { threads: 2 });
  });
  afterAll(() => tower?.dispose());

  it('reports the sizes and taps of the file', () => {
    expect(tower.info).toMatchObject({
      imageSize: 56,
      patchSize: 14,
      nEmbd: 32,
      nPatches: 16,
      nLayer: 3,
      comprehensionLayer: 3,
      generationLayer: 1,
      comprehensionProjectorDim: 64,
      generationProjectorDim: 32,
    });
    expect(tower.info.imageMean[0]).toBeCloseTo(0.48145466, 6);
  });

  // the native test measures 2.1e-7 in f32; 1e-4 is the bound
  it('encodes both taps as transformers does', async () => {
    const c = await tower.encode(g.pixels, { tap: 'comprehension' });
    const gen = await tower.encode(g.pixels, { tap: 'generation' });
    expect(c.length).toBe(g.nPatches * g.nEmbd);
    expect(maxRel(c, g.hidden[g.comprehension])).toBeLessThan(1e-4);
    expect(maxRel(gen, g.hidden[g.generation])).toBeLessThan(1e-4);
    // the default tap is comprehension, and hidden states are reachable by index
    expect(maxRel(await tower.encode(g.pixels), g.hidden[g.comprehension])).toBeLessThan(1e-4);
    expect(maxRel(await tower.encode(g.pixels, { hiddenState: 0 }), g.hidden[0])).toBeLessThan(1e-4);
  });

  it('projects with each plugin projector', async () => {
    const p = await tower.project(g.hidden[g.comprehension], 'comprehension');
    const q = await tower.project(g.hidden[g.generation], 'generation');
    expect(maxRel(p, g.projected)).toBeLessThan(1e-4);
    expect(maxRel(q, g.genProjected)).toBeLessThan(1e-4);
  });

  it("encodes and projects in one call: the two calls' numbers, for both taps", async () => {
    for (const tap of ['comprehension', 'generation'] as const) {
      const one = await tower.encodeProject(g.pixels, tap);
      expect(one).toEqual(await tower.project(await tower.encode(g.pixels, { tap }), tap));
      expect(maxRel(one, tap === 'comprehension' ? g.projected : g.genProjected)).toBeLessThan(1e-4);
    }
  });

  it('queues concurrent calls without mixing them', async () => {
    const [a, b, c] = await Promise.all([tower.encode(g.pixels, { tap: 'generation' }), tower.encode(g.pixels, { tap: 'comprehension' }), tower.encode(g.pixels, { tap: 'generation' })]);
    expect(a).toEqual(c);
    expect(maxRel(b, g.hidden[g.comprehension])).toBeLessThan(1e-4);
  });

  it('refuses bad arguments naming them', async () => {
    await expect(tower.encode(new Float32Array(10))).rejects.toThrow(/pixels has 10 values, expected 3 x 56 x 56 = 9408/);
    await expect(tower.encode(g.pixels, { tap: 'both' as never })).rejects.toThrow(/tap must be 'comprehension' or 'generation'/);
    await expect(tower.encode(g.pixels, { hiddenState: 4 })).rejects.toThrow(/hiddenState must be an integer in 0..3/);
    await expect(tower.project(new Float32Array(33))).rejects.toThrow(/not a whole number of rows of 32/);
    await expect(tower.encodeProject(new Float32Array(10))).rejects.toThrow(/pixels has 10 values, expected 3 x 56 x 56 = 9408/);
    await expect(tower.encodeProject(g.pixels, 'both' as never)).rejects.toThrow(/tap must be 'comprehension' or 'generation'/);
  });

  it('a call queued behind a loadProjector that changes its width fails, naming it, and writes nothing past its result', async () => {
    // the raw handle: the TypeScript layer waits for loadProjector before sizing a call, the
    // addon's own callers need not. The tower's comprehension projector (64 wide) loaded as
    // the generation one (32 wide). The two jobs race for the tower's lock on libuv's threads:
    // a call that ran first gives the old projection, one that ran after is refused; tries
    // until the second is seen.
    const path = join(fixtures, 'tiny.f32.gguf');
    const before = await tower.encodeProject(g.pixels, 'generation');
    let refused = 0;
    for (let i = 0; i < 20 && refused === 0; i++) {
      const raw = await native().Clip.load(path, { threads: 1 });
      try {
        const load = raw.loadProjector(1, path);
        // settled from the start: a refusal may come before load's answer is awaited
        const queued = Promise.allSettled([raw.encodeProject(g.pixels, 1, 1), raw.project(1, g.hidden[g.generation]!)]);
        expect(await load).toEqual({ loaded: true, dim: 64 });
        for (const [k, r] of (await queued).entries()) {
          if (r.status === 'fulfilled') expect(r.value).toEqual(k === 0 ? before : await tower.project(g.hidden[g.generation]!, 'generation'));
          else {
            expect(r.reason).toMatchObject({ code: 'ERR_INVALID_ARG', message: expect.stringMatching(/width changed from 32 to 64 \(loadProjector\) while the call waited/) });
            refused++;
          }
        }
        const again = await raw.encodeProject(g.pixels, 1, 1); // sized by the new width
        expect(again).toEqual(await raw.project(0, await raw.encode(g.pixels, 1)));
      } finally {
        raw.dispose();
      }
    }
    expect(refused).toBeGreaterThan(0);
  });
});

describe('VisionTower loading and lifetime', () => {
  it('matches the quantized fixtures within their measured tolerance', async () => {
    // native test: q8_0 measured 1.1e-2 over hidden states and projections; limit 3e-2
    const g = readGolden('q8_0');
    const t = await VisionTower.load(join(fixtures, 'tiny.q8_0.gguf'));
    try {
      expect(maxRel(await t.encode(g.pixels), g.hidden[g.comprehension])).toBeLessThan(3e-2);
    } finally {
      t.dispose();
    }
  });

  it('refuses a missing file and a non-clip file with the native message', async () => {
    await expect(VisionTower.load(join(fixtures, 'missing.gguf'))).rejects.toThrow(/missing\.gguf/);
    const err = await VisionTower.load(join(root, 'test', 'fixtures', 'phi3', 'gqa.f32.gguf')).catch((e) => e);
    expect(err).toBeInstanceOf(HealthGPTError);
    expect(err.message).toMatch(/architecture is 'phi3', expected 'clip'/);
    await expect(VisionTower.load(join(fixtures, 'tiny.f32.gguf'), { threads: -1 })).rejects.toThrow(/threads must be/);
  });

  it('throws ERR_DISPOSED after dispose; a call in flight rejects with it', async () => {
    const g = readGolden('f32');
    const t = await VisionTower.load(join(fixtures, 'tiny.f32.gguf'));
    const pending = t.encode(g.pixels);
    t.dispose();
    await expect(pending).rejects.toMatchObject({ code: 'ERR_DISPOSED' });
    await expect(t.encode(g.pixels)).rejects.toMatchObject({ code: 'ERR_DISPOSED' });
    await expect(t.loadProjector('x.gguf')).rejects.toMatchObject({ code: 'ERR_DISPOSED' });
    t.dispose(); // twice is harmless
  });

  it("gpu: 'auto' runs on CUDA when there is a device, else on the CPU saying why; then 'cuda' is refused with that reason", async () => {
    const cpu = await VisionTower.load(join(fixtures, 'tiny.f32.gguf'), { threads: 1 });
    expect(cpu.info.backend).toBe('cpu');
    cpu.dispose();
    const auto = await VisionTower.load(join(fixtures, 'tiny.f32.gguf'), { gpu: 'auto', threads: 1 });
    const backend = auto.info.backend;
    auto.dispose();
    expect(backend).toMatch(/^(cuda: .+|cpu \((this engine was built without the CUDA backend|no CUDA device.*)\))$/);
    if (backend.startsWith('cpu (')) {
      await expect(VisionTower.load(join(fixtures, 'tiny.f32.gguf'), { gpu: 'cuda' })).rejects.toMatchObject({
        code: 'ERR_UNSUPPORTED',
        message: expect.stringContaining(`gpu 'cuda': ${backend.slice(5, -1)}`),
      });
    }
    await expect(VisionTower.load(join(fixtures, 'tiny.f32.gguf'), { gpu: 1 as unknown as 'auto' })).rejects.toThrow(/gpu must be "auto", "cuda" or false, got 1/);
  });
});

describe('VisionTower in worker_threads', () => {
  // each environment has its own constructors (src/handle.h), so towers load and encode in two workers at once
  const script = `
const { parentPort, workerData } = require('node:worker_threads');
const { VisionTower } = require(workerData.lib);
(async () => {
  const t = await VisionTower.load(workerData.file, { threads: 1 });
  const px = new Float32Array(3 * 56 * 56).map((_, i) => Math.sin(i));
  const f = await t.encode(px, { tap: 'generation' });
  t.dispose();
  parentPort.postMessage(Array.from(f.subarray(0, 8)));
})().catch((e) => parentPort.postMessage({ error: e.message }));
`;
  const run = (): Promise<unknown> =>
    new Promise((resolve, reject) => {
      const w = new Worker(script, { eval: true, workerData: { lib: join(root, 'dist', 'index.js'), file: join(fixtures, 'tiny.f32.gguf') } });
      w.once('message', resolve);
      w.once('error', reject);
    });

  it('two workers encode the same image alike', async () => {
    const [a, b] = await Promise.all([run(), run()]);
    expect(Array.isArray(a)).toBe(true);
    expect((a as number[]).every(Number.isFinite)).toBe(true);
    expect(b).toEqual(a);
  });
});
