// lib/synthetic/release.ts: the tiny random HealthGPT the demo writes in the released layouts
// from TypeScript (no Python on a fresh machine). What it writes must convert and load; its
// writers (torch.save zip + protocol-2 pickle, safetensors, tokenizer.model) must round-trip
// through our readers exactly. (Checked once by hand with Python: torch 2.15.0's
// torch.load(weights_only=True), safetensors 0.8.0's load_file and sentencepiece 0.2.1 read
// every file it writes; the bf16 .bin files are read by torch.load(weights_only=True) in
// tools/reference/make_synthetic_release_reference.py.)
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { convertHealthGPT } from '../lib/convert/healthgpt.js';
import { openSafetensors } from '../lib/convert/safetensors.js';
import { openTorchCheckpoint } from '../lib/convert/torch.js';
import { LanguageModel } from '../lib/model/model.js';
import { randomNormal } from '../lib/synthetic/phi3.js';
import { SYNTHETIC_RELEASE, SYNTHETIC_RELEASE_ROWS, syntheticReleaseOptions, writeSyntheticRelease } from '../lib/synthetic/release.js';
import { findImageTokens } from '../lib/generate/image-tokens.js';
import { GGUFFile } from '../lib/gguf/file.js';
import { writeSafetensors } from '../lib/synthetic/safetensors-writer.js';
import { TorchDict, TorchTensor, writeTorchSave } from '../lib/synthetic/torch-writer.js';
import { VisionTower } from '../lib/vision/clip.js';
import { Vqgan } from '../lib/vqgan/decoder.js';
import { maxRel, root, tempDir } from './helpers.js';

describe('torch.save and safetensors writers', () => {
  it('round-trip names, shapes, values and Lightning extras through our readers', async () => {
    const d = tempDir();
    const a = randomNormal(6, 1);
    const b = randomNormal(20, 2);
    await writeTorchSave(
      join(d, 'x.ckpt'),
      new TorchDict([
        ['epoch', 7],
        ['lr', 4.5e-6],
        ['name', 'é'],
        ['flag', true],
        ['none', null],
        [
          'state_dict',
          new TorchDict(
            [
              ['w', new TorchTensor([2, 3], a)],
              ['nested.v', new TorchTensor([20], b)],
              ['s', new TorchTensor([], Float32Array.of(3.5))],
            ],
            true,
          ),
        ],
      ]),
    );
    const c = await openTorchCheckpoint(join(d, 'x.ckpt'));
    try {
      expect(c.tensors.map((t) => [t.name, t.dtype, t.shape])).toEqual([
        ['w', 'F32', [2, 3]],
        ['nested.v', 'F32', [20]],
        ['s', 'F32', []],
      ]);
      expect(await c.tensors[0]!.readF32()).toEqual(a);
      expect(await c.tensors[1]!.readF32()).toEqual(b);
      expect(Array.from(await c.tensors[2]!.readF32())).toEqual([3.5]);
      expect([...c.extra]).toEqual([
        ['epoch', 7],
        ['lr', 4.5e-6],
        ['name', 'é'],
        ['flag', true],
        ['none', null],
      ]);
    } finally {
      await c.close();
    }
    await writeSafetensors(join(d, 'x.safetensors'), [
      { name: 'w', shape: [2, 3], data: a },
      { name: 'ids', shape: [1, 4], data: BigInt64Array.of(0n, 1n, 2n, 3n) },
    ]);
    const s = await openSafetensors(join(d, 'x.safetensors'));
    try {
      expect(s.tensors.map((t) => [t.name, t.dtype, t.shape])).toEqual([
        ['w', 'F32', [2, 3]],
        ['ids', 'I64', [1, 4]],
      ]);
      expect(await s.tensors[0]!.readF32()).toEqual(a);
      expect(Array.from(await s.tensors[1]!.readF32())).toEqual([0, 1, 2, 3]);
    } finally {
      await s.close();
    }
  });
});

describe('the synthetic release', () => {
  const dir = tempDir('healthgpt-synthetic-release-');
  const out = join(dir, 'converted');
  let notes = '';
  beforeAll(async () => {
    const opts = await writeSyntheticRelease(join(dir, 'release'));
    notes = (await convertHealthGPT(out, { ...opts, type: 'f16', threads: 1 })).notes.join('\n');
  });

  it("holds HealthGPT's released keys exactly: bf16, stacked adapters with no .default, a projector per plugin, only the rows in fusion", async () => {
    const s = SYNTHETIC_RELEASE.llm;
    const qkv = s.hidden + (2 * s.kvHeads * s.hidden) / s.heads;
    const linears: Array<[string, number, number]> = [
      ['self_attn.qkv_proj', s.hidden, qkv],
      ['self_attn.o_proj', s.hidden, s.hidden],
      ['mlp.gate_up_proj', s.hidden, 2 * s.ffn],
      ['mlp.down_proj', s.ffn, s.hidden],
    ];
    const keys = async (f: string): Promise<Array<[string, string, number[]]>> => {
      const c = await openTorchCheckpoint(join(dir, 'release', f));
      try {
        return c.tensors.map((t) => [t.name, t.dtype, [...t.shape]]);
      } finally {
        await c.close();
      }
    };
    for (const [file, plugin] of [
      ['com_hlora_weights.bin', 'comprehension'],
      ['gen_hlora_weights.bin', 'generation'],
    ] as const) {
      const { rank: r, experts: n } = SYNTHETIC_RELEASE.plugins[plugin];
      const want: Array<[string, string, number[]]> = [];
      for (let i = 0; i < s.layers; i++)
        for (const [lin, din, dout] of linears) {
          const p = `base_model.model.model.layers.${i}.${lin}`;
          want.push([`${p}.lora_route.weight`, 'BF16', [n, din]], [`${p}.lora_A.weight`, 'BF16', [r, din]], [`${p}.lora_B.weight`, 'BF16', [dout, r]]);
        }
      const w = SYNTHETIC_RELEASE.clip.width;
      for (const [k, shape] of [
        ['0.weight', [s.hidden, w]],
        ['0.bias', [s.hidden]],
        ['2.weight', [s.hidden, s.hidden]],
        ['2.bias', [s.hidden]],
      ] as const)
        want.push([`base_model.model.model.mm_projector.${k}`, 'BF16', [...shape]]);
      expect(await keys(file), file).toEqual(want);
    }
    expect(await keys('fusion_layer_weights.bin')).toEqual([
      ['base_model.model.model.embed_tokens.weight', 'BF16', [SYNTHETIC_RELEASE_ROWS, s.hidden]],
      ['base_model.model.lm_head.weight', 'BF16', [SYNTHETIC_RELEASE_ROWS, s.hidden]],
    ]);
  });

  it("its model.yaml is HealthGPT's shipped file line for line, numbers aside", () => {
    const shipped = readFileSync(join(root, 'test', 'fixtures', 'vqgan', 'healthgpt-model.yaml'), 'utf8');
    const ours = readFileSync(join(dir, 'release', 'vqgan', 'model.yaml'), 'utf8');
    expect(ours).toMatch(/ch_mult:\n {6}- 1\n/);
    expect(ours.replace(/\d+/g, 'N')).toBe(shipped.replace(/\d+/g, 'N'));
  });

  it("can generate: one <idx_k> per VQGAN code after the tokenizer, rows resized from the fusion file, each plugin's projector in the vision file", async () => {
    const s = SYNTHETIC_RELEASE;
    expect(SYNTHETIC_RELEASE_ROWS).toBe(s.llm.tokenizer + s.vqgan.n_embed + 3);
    expect(notes).toMatch(new RegExp(`embeddings and head resized to ${SYNTHETIC_RELEASE_ROWS} rows from .*fusion_layer_weights\\.bin`));
    expect(notes).toMatch(/comprehension: 2 layers, stacked adapters[\s\S]*generation: 2 layers, stacked adapters/);
    expect(notes).toMatch(/projectors: comprehension, generation/);
    const m = await LanguageModel.load(join(out, 'model.gguf'), { threads: 1 });
    try {
      expect(m.info.nVocab).toBe(SYNTHETIC_RELEASE_ROWS);
      const ids = findImageTokens(m.tokenizer.vocab.tokenToId);
      // the codebook size follows the VQGAN (64 here, the release's 8192)
      expect(ids).toEqual({ start: s.firstRow, firstIndex: s.firstRow + 1, codebookSize: s.vqgan.n_embed, end: s.firstRow + 1 + s.vqgan.n_embed, pixelNewline: s.firstRow + 2 + s.vqgan.n_embed });
    } finally {
      m.dispose();
    }
    for (const plugin of ['comprehension', 'generation']) {
      const g = GGUFFile.open(join(out, `${plugin}.gguf`));
      try {
        // neither plugin has rows of its own: both run over fusion's
        expect(g.info.tensors.some((t) => t.name === 'token_embd.weight' || t.name === 'output.weight')).toBe(false);
      } finally {
        g.close();
      }
    }
  });

  // HealthGPT's loader and H-LoRA on these very files (tools/reference/make_synthetic_release_reference.py:
  // load_state_dict(strict=False) leaves no unexpected key; float64 torch): the converted release
  // must give its logits and projections. F32 conversion of bf16 files is exact, so only float32
  // arithmetic separates them: measured 4.1e-7 / 3.3e-7 of the largest logit (comprehension /
  // generation), 1.0e-7 for the projections; 1e-5 leaves 25x and fails on any mis-stacked expert
  // or projector taken from the wrong file.
  it("converted, computes what HealthGPT's loader and H-LoRA compute on the same files", async () => {
    const b = readFileSync(join(root, 'test', 'fixtures', 'release', 'synthetic-release.ref'));
    expect(b.toString('latin1', 0, 4)).toBe('HGSR');
    const [version, nTok, nVocab, nPatches, width, nEmbd] = Array.from({ length: 6 }, (_, i) => b.readUInt32LE(4 + 4 * i));
    expect([version, nVocab, width, nEmbd]).toEqual([1, SYNTHETIC_RELEASE_ROWS, SYNTHETIC_RELEASE.clip.width, SYNTHETIC_RELEASE.llm.hidden]);
    let off = 28;
    for (const f of ['com_hlora_weights.bin', 'gen_hlora_weights.bin', 'fusion_layer_weights.bin']) {
      const want = b.subarray(off, off + 32).toString('hex');
      off += 32;
      expect(
        createHash('sha256')
          .update(readFileSync(join(dir, 'release', f)))
          .digest('hex'),
        `${f} changed: regenerate tools/reference/make_synthetic_release_reference.py`,
      ).toBe(want);
    }
    const tokens = Array.from({ length: nTok! }, (_, i) => b.readInt32LE(off + 4 * i));
    off += 4 * nTok!;
    const take = (n: number): Float32Array => {
      const a = new Float32Array(b.buffer.slice(b.byteOffset + off, b.byteOffset + off + 4 * n));
      off += 4 * n;
      return a;
    };
    const logits = { comprehension: take(nTok! * nVocab!), generation: take(nTok! * nVocab!) };
    const features = take(nPatches! * width!);
    const projected = { comprehension: take(nPatches! * nEmbd!), generation: take(nPatches! * nEmbd!) };
    expect(off).toBe(b.length);

    const f32 = join(dir, 'converted-f32');
    await convertHealthGPT(f32, { ...syntheticReleaseOptions(join(dir, 'release')), type: 'f32', threads: 1 });
    const m = await LanguageModel.load(join(f32, 'model.gguf'), { kvType: 'f32', threads: 2, plugins: { comprehension: join(f32, 'comprehension.gguf'), generation: join(f32, 'generation.gguf') } });
    try {
      for (const plugin of ['comprehension', 'generation'] as const) {
        expect(maxRel(await m.evaluate(tokens, { plugin }), logits[plugin]), plugin).toBeLessThan(1e-5);
        // the plugins matter here: without one the logits are far off
        expect(maxRel(await m.evaluate(tokens), logits[plugin])).toBeGreaterThan(1e-2);
      }
    } finally {
      m.dispose();
    }
    const t = await VisionTower.load(join(f32, 'vision.gguf'), { threads: 2 });
    try {
      for (const tap of ['comprehension', 'generation'] as const) expect(maxRel(await t.project(features, tap), projected[tap]), tap).toBeLessThan(1e-5);
    } finally {
      t.dispose();
    }
  });

  it("without --vqgan the image tokens default to the release's 8192 (too many for these rows: refused by code); codebookSize says how many", async () => {
    const { vqgan: _, ...opts } = syntheticReleaseOptions(join(dir, 'release'));
    const err = (await convertHealthGPT(join(dir, 'no-vqgan'), { ...opts, plugins: opts.plugins!.slice(1), type: 'f32', threads: 1 }).catch((e: unknown) => e)) as { code?: string; message?: string };
    expect(err).toMatchObject({ code: 'ERR_TOKENIZER' });
    expect(err.message).toMatch(new RegExp(`HealthGPT's 8195 make \\d+, more than the model's ${SYNTHETIC_RELEASE_ROWS} embedding rows`));
    await convertHealthGPT(join(dir, 'explicit'), { ...opts, plugins: opts.plugins!.slice(1), codebookSize: SYNTHETIC_RELEASE.vqgan.n_embed, type: 'f32', threads: 1 });
    const m = await LanguageModel.load(join(dir, 'explicit', 'model.gguf'), { threads: 1 });
    try {
      expect(findImageTokens(m.tokenizer.vocab.tokenToId).codebookSize).toBe(SYNTHETIC_RELEASE.vqgan.n_embed);
    } finally {
      m.dispose();
    }
  });

  it('is written the same way twice (a cached copy stays valid)', async () => {
    const again = join(dir, 'again');
    await writeSyntheticRelease(again);
    for (const f of ['com_hlora_weights.bin', 'gen_hlora_weights.bin', 'fusion_layer_weights.bin', 'vqgan/last.ckpt', 'llm/model.safetensors', 'llm/tokenizer.model', 'clip/model.safetensors'])
      expect(readFileSync(join(again, f)).equals(readFileSync(join(dir, 'release', f))), f).toBe(true);
  });

  it('converts to a model whose plugins load and change its logits, with its tokenizer', async () => {
    const m = await LanguageModel.load(join(out, 'model.gguf'), {
      threads: 2,
      plugins: { comprehension: join(out, 'comprehension.gguf'), generation: join(out, 'generation.gguf') },
    });
    try {
      const ids = m.tokenize('the chest scan');
      expect(ids.length).toBe(3); // whole-word pieces of the synthetic vocabulary
      expect(m.detokenize(ids)).toBe('the chest scan');
      // generation_config.json's three ends of sequence, as Phi-3-mini lists them (32000, 32001, 32007)
      const named = ['<|endoftext|>', '<|assistant|>', '<|end|>'].map((t) => m.tokenize(t, { special: true })[0]);
      expect(m.defaultStopTokens()).toEqual(named);
      const tokens = [...ids, SYNTHETIC_RELEASE.firstRow + 5, 17];
      const none = await m.evaluate(tokens);
      for (const plugin of ['comprehension', 'generation']) {
        const got = await m.evaluate(tokens, { plugin });
        expect(got.every(Number.isFinite)).toBe(true);
        let diff = 0;
        for (let i = 0; i < got.length; i++) diff = Math.max(diff, Math.abs(got[i]! - none[i]!));
        expect(diff, plugin).toBeGreaterThan(1e-2);
      }
    } finally {
      m.dispose();
    }
  });

  it('converts to a vision tower with both projectors and a VQGAN that decodes', async () => {
    const c = SYNTHETIC_RELEASE.clip;
    const t = await VisionTower.load(join(out, 'vision.gguf'));
    try {
      expect(t.info).toMatchObject({
        imageSize: c.imageSize,
        nEmbd: c.width,
        nLayer: c.layers - 1,
        comprehensionProjectorDim: SYNTHETIC_RELEASE.llm.hidden,
        generationProjectorDim: SYNTHETIC_RELEASE.llm.hidden,
      });
      const px = randomNormal(3 * c.imageSize * c.imageSize, 5);
      for (const tap of ['comprehension', 'generation'] as const) {
        const p = await t.project(await t.encode(px, { tap }), tap);
        expect(p.length).toBe((c.imageSize / c.patchSize) ** 2 * SYNTHETIC_RELEASE.llm.hidden);
        expect(p.every(Number.isFinite)).toBe(true);
      }
    } finally {
      t.dispose();
    }
    const vq = await Vqgan.load(join(out, 'vqgan.gguf'));
    try {
      // HealthGPT's f8 geometry: a 32 x 32 latent decodes to 256 x 256
      const h = SYNTHETIC_RELEASE.vqgan;
      expect([vq.info.latent, vq.info.nEmbed]).toEqual([32, h.n_embed]);
      const img = await vq.decode(Int32Array.from({ length: 32 * 32 }, (_, i) => (i * 7) % h.n_embed));
      expect([img.width, img.height, img.rgb.length]).toEqual([256, 256, 256 * 256 * 3]);
      expect(new Set(img.rgb).size).toBeGreaterThan(10); // not a flat image
    } finally {
      vq.dispose();
    }
  });
});
