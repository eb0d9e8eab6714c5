// The mmproj layout against llama.cpp itself (the revision bundled in node-llama-cpp 3.22.1),
// both directions, from golden data recorded by tools/mmproj-golden (README there; CI builds
// no llama.cpp and runs no Python):
//  - our files in llama.cpp: tiny.<variant>.gguf load in llama.cpp's clip.cpp, which runs the
//    same layers to the same tap and projects to the same width; on files whose position
//    embedding is one row for all positions (tiny-constpos.*, written by our writer) its
//    numbers match our engine's row for row, once llama.cpp's token order is allowed for
//    (this revision puts the class token after the patches: ggml-org/llama.cpp#25814, so its
//    row r is patch r + 1 and its last row the class token; with one position embedding the
//    order changes nothing else).
//  - our converter's files in llama.cpp: lib/convert/clip.ts on a tiny HF CLIP + projector
//    (hf-tiny/, committed) writes, byte for byte, the files llama.cpp was recorded on, for
//    every --type; their numbers match llama.cpp's the same way.
//  - llama.cpp's files here: the legacy converter's output (convert_image_encoder_to_gguf.py,
//    the script the released LLaVA-1.5 mmproj files came from: ffn_up / ffn_down names
//    swapped, conv and projector f16) loads in our engine and matches transformers, with and
//    without clip.vision.feature_layer.
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { openCheckpoint } from '../lib/convert/checkpoint.js';
import { convertClip } from '../lib/convert/clip.js';
import { VisionTower } from '../lib/index.js';
import { root } from './helpers.js';

const clipDir = join(root, 'test', 'fixtures', 'clip');
const dir = join(clipDir, 'llama-cpp');

interface HarnessInfo {
  ok: boolean;
  error?: string;
  image_size?: number;
  n_patches?: number;
  n_embd?: number;
  n_mmproj_embd?: number;
  layers_run?: number;
}
interface Manifest {
  llama_cpp_revision: string;
  ours: Record<string, HarnessInfo>;
  constpos: Record<string, HarnessInfo>;
  legacy: Record<string, HarnessInfo & { hf_hidden_state: number }>;
  converted: Record<string, HarnessInfo & { sha256: string }>;
  shapes: { n_patches: number; n_embd: number; n_mmproj_embd: number };
}

const manifest = JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8')) as Manifest;
const { n_patches: P, n_embd: E, n_mmproj_embd: D } = manifest.shapes;

function f32(path: string): Float32Array {
  const b = readFileSync(path);
  return new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.length));
}

/** features (P x E) then projected (P x D), as the harness and record.py write them */
function split(a: Float32Array): { feat: Float32Array; proj: Float32Array } {
  expect(a.length).toBe(P * E + P * D);
  return { feat: a.subarray(0, P * E), proj: a.subarray(P * E) };
}

/** The pixels every recording used: those of tiny.f32.ref (after its 40-byte header). */
function pixels(): Float32Array {
  const b = readFileSync(join(clipDir, 'tiny.f32.ref'));
  const image = b.readUInt32LE(8);
  return new Float32Array(b.buffer.slice(b.byteOffset + 40, b.byteOffset + 40 + 4 * 3 * image * image));
}

/** max |a - b| over rows [a0, a0 + n) of a against rows [b0, b0 + n) of b, width w */
function maxDiffRows(a: Float32Array, a0: number, b: Float32Array, b0: number, n: number, w: number): number {
  let m = 0;
  for (let r = 0; r < n; r++) for (let i = 0; i < w; i++) m = Math.max(m, Math.abs(a[(a0 + r) * w + i]! - b[(b0 + r) * w + i]!));
  return m;
}

function maxAbs(a: Float32Array): number {
  let m = 0;
  for (const v of a) m = Math.max(m, Math.abs(v));
  return m;
}

async function run(path: string): Promise<{ tower: VisionTower; feat: Float32Array; proj: Float32Array }> {
  const tower = await VisionTower.load(path, { threads: 1 });
  const feat = await tower.encode(pixels(), { tap: 'comprehension' });
  const proj = await tower.project(feat, 'comprehension');
  return { tower, feat, proj };
}

// llama.cpp against our engine, relative to the largest value: its patch conv rounds pixels
// and weights to f16 (ggml_conv_2d's im2col is f16), its GELU is the tanh form from an f16
// table, and for bf16 / q8_0 weights it rounds the activations to bf16 / q8_0 as well.
const TOL: Record<string, number> = { f32: 1e-3, f16: 2e-3, bf16: 1e-2, q8_0: 4e-2 };
// Our engine against transformers on the file's own weights (bf16 / q8_0: our activations are
// rounded to bf16 / q8_0 too). Measured values: tools/mmproj-golden/README.md; limits about 2x.
const OURS_TOL: Record<string, number> = { f32: 1e-5, f16: 1e-5, bf16: 1e-2, q8_0: 4e-2 };

// HG_MMPROJ_REPORT=1 prints the measured differences (max abs, and relative to the largest value).
const report: string[] = [];
function note(what: string, d: number, scale: number): number {
  report.push(`${what}: max abs ${d.toExponential(2)}, relative ${(d / scale).toExponential(2)}`);
  return d;
}
afterAll(() => {
  if (process.env.HG_MMPROJ_REPORT) console.log(report.join('\n'));
});

describe('mmproj files: ours in llama.cpp ' + manifest.llama_cpp_revision.slice(0, 10), () => {
  for (const variant of ['f32', 'f16', 'bf16', 'q8_0']) {
    it(`tiny.${variant}.gguf: llama.cpp loads it and runs the layers of our comprehension tap`, async () => {
      const info = manifest.ours[variant]!;
      expect(info.ok).toBe(true);
      const tower = await VisionTower.load(join(clipDir, `tiny.${variant}.gguf`), { threads: 1 });
      try {
        expect(info.layers_run).toBe(tower.info.comprehensionLayer);
        expect(info.n_patches).toBe(tower.info.nPatches);
        expect(info.n_embd).toBe(tower.info.nEmbd);
        expect(info.n_mmproj_embd).toBe(tower.info.comprehensionProjectorDim);
        expect(info.image_size).toBe(tower.info.imageSize);
      } finally {
        tower.dispose();
      }
    });

    it(`tiny-constpos.${variant}.gguf: our features and projection match llama.cpp's, patch for patch`, async () => {
      const info = manifest.constpos[variant]!;
      expect(info.ok).toBe(true);
      const path = join(dir, `tiny-constpos.${variant}.gguf`);
      const { tower, feat, proj } = await run(path);
      try {
        expect(info.layers_run).toBe(tower.info.comprehensionLayer);
        const cpp = split(f32(join(dir, `tiny-constpos.${variant}.llama-cpp.f32`)));
        const hf = split(f32(join(dir, `tiny-constpos.${variant}.hf.f32`)));
        // ours against transformers (every row): the engine's own accuracy on this file
        const v = variant;
        expect(note(`constpos ${v} ours vs hf features`, maxDiffRows(feat, 0, hf.feat, 0, P, E), maxAbs(hf.feat))).toBeLessThan(OURS_TOL[v]! * maxAbs(hf.feat));
        expect(note(`constpos ${v} ours vs hf projected`, maxDiffRows(proj, 0, hf.proj, 0, P, D), maxAbs(hf.proj))).toBeLessThan(OURS_TOL[v]! * maxAbs(hf.proj));
        // ours (patches 1..P-1) against llama.cpp (its rows 0..P-2)
        const df = note(`constpos ${v} ours vs llama.cpp features`, maxDiffRows(feat, 1, cpp.feat, 0, P - 1, E), maxAbs(cpp.feat));
        const dp = note(`constpos ${v} ours vs llama.cpp projected`, maxDiffRows(proj, 1, cpp.proj, 0, P - 1, D), maxAbs(cpp.proj));
        note(`constpos ${v} llama.cpp vs hf projected`, maxDiffRows(cpp.proj, 0, hf.proj, 1, P - 1, D), maxAbs(hf.proj));
        expect(df).toBeLessThan(TOL[variant]! * maxAbs(cpp.feat));
        expect(dp).toBeLessThan(TOL[variant]! * maxAbs(cpp.proj));
        // and llama.cpp's last row is not a patch: it is the class token (issue 25814)
        expect(maxDiffRows(proj, P - 1, cpp.proj, P - 1, 1, D)).toBeGreaterThan(Math.max(10 * dp, 0.1 * maxAbs(cpp.proj)));
      } finally {
        tower.dispose();
      }
    });
  }
});

describe("mmproj files: llama.cpp's legacy converter in our engine", () => {
  for (const name of ['legacy-select', 'legacy-noselect']) {
    it(`${name}.gguf loads and matches transformers (hidden state -2, projector)`, async () => {
      const path = join(dir, `${name}.gguf`);
      expect(existsSync(path)).toBe(true);
      const info = manifest.legacy[name]!;
      const { tower, feat, proj } = await run(path);
      try {
        expect(tower.info.comprehensionLayer).toBe(info.hf_hidden_state);
        const hf = split(f32(join(dir, `${name}.hf.f32`)));
        expect(note(`${name} ours vs hf features`, maxDiffRows(feat, 0, hf.feat, 0, P, E), maxAbs(hf.feat))).toBeLessThan(1e-4 * maxAbs(hf.feat));
        expect(note(`${name} ours vs hf projected`, maxDiffRows(proj, 0, hf.proj, 0, P, D), maxAbs(hf.proj))).toBeLessThan(1e-4 * maxAbs(hf.proj));
        const cpp = split(f32(join(dir, `${name}.llama-cpp.f32`)));
        note(`${name} ours vs llama.cpp features`, maxDiffRows(feat, 1, cpp.feat, 0, P - 1, E), maxAbs(cpp.feat));
        const dp = note(`${name} ours vs llama.cpp projected`, maxDiffRows(proj, 1, cpp.proj, 0, P - 1, D), maxAbs(cpp.proj));
        if (name === 'legacy-select') {
          // with clip.vision.feature_layer, llama.cpp runs the same layers and agrees
          expect(info.layers_run).toBe(tower.info.comprehensionLayer);
          expect(dp).toBeLessThan(TOL.f16! * maxAbs(cpp.proj));
        } else {
          // without it (the released LLaVA-1.5 files), llama.cpp runs one layer fewer than
          // the converter kept (clip.h): hidden state -3 of the original tower, not -2
          expect(info.layers_run).toBe(tower.info.comprehensionLayer - 1);
          expect(dp).toBeGreaterThan(0.05 * maxAbs(cpp.proj));
        }
      } finally {
        tower.dispose();
      }
    });
  }
});

describe('mmproj files: our converter (lib/convert/clip.ts) in llama.cpp', () => {
  const hfDir = join(dir, 'hf-tiny');
  for (const type of ['f32', 'f16', 'bf16', 'q8_0'] as const) {
    it(`convert --vision --type ${type}: the file llama.cpp ran, and our numbers match its`, async () => {
      const info = manifest.converted[type]!;
      expect(info.ok).toBe(true);
      const tmp = mkdtempSync(join(tmpdir(), 'hg-mmproj-'));
      try {
        const out = join(tmp, `ours.${type}.gguf`);
        const proj = await openCheckpoint(join(hfDir, 'mm_projector.safetensors'));
        try {
          const t = new Map(proj.tensors.map((x) => [x.name, x]));
          const get = (k: string) => t.get(`model.mm_projector.${k}`)!;
          await convertClip(hfDir, out, {
            type,
            comprehension: { 'mm.0.weight': get('0.weight'), 'mm.0.bias': get('0.bias'), 'mm.2.weight': get('2.weight'), 'mm.2.bias': get('2.bias') },
          });
        } finally {
          await proj.close();
        }
        expect(createHash('sha256').update(readFileSync(out)).digest('hex')).toBe(info.sha256);
        const { tower, feat, proj: projected } = await run(out);
        try {
          expect(info.layers_run).toBe(tower.info.comprehensionLayer);
          expect(info.n_mmproj_embd).toBe(tower.info.comprehensionProjectorDim);
          const cpp = split(f32(join(dir, `hf-tiny.${type}.llama-cpp.f32`)));
          const df = note(`converted ${type} ours vs llama.cpp features`, maxDiffRows(feat, 1, cpp.feat, 0, P - 1, E), maxAbs(cpp.feat));
          const dp = note(`converted ${type} ours vs llama.cpp projected`, maxDiffRows(projected, 1, cpp.proj, 0, P - 1, D), maxAbs(cpp.proj));
          expect(df).toBeLessThan(TOL[type]! * maxAbs(cpp.feat));
          expect(dp).toBeLessThan(TOL[type]! * maxAbs(cpp.proj));
          if (type === 'f32') {
            // the same tower and projector as legacy-select (make_hf(7)): transformers' numbers
            const hf = split(f32(join(dir, 'legacy-select.hf.f32')));
            expect(note('converted f32 ours vs hf projected', maxDiffRows(projected, 0, hf.proj, 0, P, D), maxAbs(hf.proj))).toBeLessThan(1e-4 * maxAbs(hf.proj));
          }
        } finally {
          tower.dispose();
        }
      } finally {
        rmSync(tmp, { recursive: true, force: true });
      }
    });
  }
});
