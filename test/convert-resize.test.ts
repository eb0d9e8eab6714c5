// The language model's rows and stops as HealthGPT's own scripts run M3 (test/fixtures/convert/model
// as the Phi-3 folder: tokenizer 411, config vocab_size 416): the fusion file's trained rows by
// default (app.py, gen_infer.py), `embeddings: 'base'` / `--embeddings base` for com_infer.py's
// (utils.py's resize: the 8195 new rows = the mean of the old), and the end-of-sequence ids
// from generation_config.json (Phi-3's lists 32000, 32001, 32007: <|endoftext|>, <|assistant|>, <|end|>).
import { copyFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { convertHealthGPT } from '../lib/convert/healthgpt.js';
import { convertLanguageModel } from '../lib/convert/llm.js';
import { openSafetensors } from '../lib/convert/safetensors.js';
import { GGUFFile } from '../lib/gguf/file.js';
import { LanguageModel } from '../lib/model/model.js';
import { TorchDict, TorchTensor, writeTorchSave } from '../lib/synthetic/torch-writer.js';
import { cli, root, tempDir } from './helpers.js';

const fx = join(root, 'test', 'fixtures', 'convert', 'model');
const com = join(root, 'test', 'fixtures', 'release', 'com_hlora_weights.bin');
const specs = { comprehension: { rank: 8, alpha: 16, experts: 4 } };
const W = 32;

async function tensor(path: string, name: string): Promise<Float32Array> {
  const g = GGUFFile.open(path);
  try {
    const b = await g.tensorData(g.tensorIndex(name));
    return new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));
  } finally {
    g.close();
  }
}

/** The fixture folder, copied, with a generation_config.json when given. */
function folder(generationConfig?: object): string {
  const d = tempDir('healthgpt-resize-llm-');
  for (const f of readdirSync(fx)) copyFileSync(join(fx, f), join(d, f));
  if (generationConfig) writeFileSync(join(d, 'generation_config.json'), JSON.stringify(generationConfig));
  return d;
}

describe("the language model's embeddings: fusion (default) or base (com_infer.py)", () => {
  const d = tempDir('healthgpt-resize-');
  const rows = 411 + 8195;
  const fusion = join(d, 'fusion_layer_weights.bin');
  const fusionEmbed = Float32Array.from({ length: rows * W }, (_, i) => Math.sin(i) * 0.5);
  const fusionHead = Float32Array.from({ length: rows * W }, (_, i) => Math.cos(i) * 0.5);
  let base: { embed: Float32Array; head: Float32Array };

  beforeAll(async () => {
    await writeTorchSave(
      fusion,
      new TorchDict(
        [
          ['base_model.model.model.embed_tokens.weight', new TorchTensor([rows, W], fusionEmbed)],
          ['base_model.model.lm_head.weight', new TorchTensor([rows, W], fusionHead)],
        ],
        true,
      ),
    );
    const st = await openSafetensors(join(fx, 'model.safetensors'));
    const read = (n: string): Promise<Float32Array> => st.tensors.find((t) => t.name === n)!.readF32();
    base = { embed: await read('model.embed_tokens.weight'), head: await read('lm_head.weight') };
    await st.close();
  });

  it("default: the fusion file's trained rows, for both plugins", async () => {
    const out = join(d, 'fusion');
    await convertHealthGPT(out, { llm: fx, plugins: [com, fusion], pluginSpecs: specs, healthgptTokens: true, type: 'f32', threads: 1 });
    expect(await tensor(join(out, 'model.gguf'), 'token_embd.weight')).toEqual(fusionEmbed);
    expect(await tensor(join(out, 'model.gguf'), 'output.weight')).toEqual(fusionHead);
  });

  it("'base': the base model's rows 0..410, the 8195 new rows their mean (the fusion file's rows unused)", async () => {
    const out = join(d, 'base');
    const m = await convertHealthGPT(out, { llm: fx, plugins: [com, fusion], pluginSpecs: specs, healthgptTokens: true, embeddings: 'base', type: 'f32', threads: 1 });
    expect(m.notes.join('\n')).toMatch(/resized to 8606 rows as HealthGPT's utils.py does/);
    for (const [name, src] of [
      ['token_embd.weight', base.embed],
      ['output.weight', base.head],
    ] as const) {
      const got = await tensor(join(out, 'model.gguf'), name);
      expect(got.length).toBe(rows * W);
      expect(got.subarray(0, 411 * W)).toEqual(src.subarray(0, 411 * W));
      for (let c = 0; c < W; c++) {
        let s = 0;
        for (let r = 0; r < 411; r++) s += src[r * W + c]!;
        const mean = Math.fround(s / 411);
        for (const r of [411, 5000, rows - 1]) expect(got[r * W + c], `${name} row ${r} col ${c}`).toBe(mean);
      }
    }
    await expect(convertHealthGPT(join(d, 'bad'), { llm: fx, plugins: [com, fusion], pluginSpecs: specs, embeddings: 'trained' as 'base' })).rejects.toThrow(/embeddings must be 'fusion' or 'base'/);
    const r = cli(['convert', '--llm', fx, '--plugins', `${com},${fusion}`, '--embeddings', 'nope', '-o', join(d, 'cli')]);
    expect(r.status).not.toBe(0);
    expect(r.stderr).toMatch(/--embeddings must be fusion or base, got 'nope'/);
  });
});

describe('stops: the converted model ends where its generation_config.json says', () => {
  it("Phi-3's list (<|endoftext|>, <|assistant|>, <|end|>), else config.json's eos_token_id; a bad id refused by file", async () => {
    const d = tempDir('healthgpt-stops-');
    const listed = join(d, 'listed.gguf');
    await convertLanguageModel(folder({ eos_token_id: [400, 401, 407] }), listed, { type: 'f32', threads: 1 });
    const m = await LanguageModel.load(listed, { threads: 1 });
    try {
      expect(Array.from(m.metadata['healthgpt.tokenizer.eos_token_ids'] as ArrayLike<number>)).toEqual([400, 401, 407]);
      expect(m.defaultStopTokens()).toEqual([400, 401, 407]);
      expect(['<|endoftext|>', '<|assistant|>', '<|end|>'].map((t) => m.tokenizer.tokenId(t))).toEqual([400, 401, 407]);
    } finally {
      m.dispose();
    }
    const single = join(d, 'single.gguf');
    await convertLanguageModel(folder(), single, { type: 'f32', threads: 1 }); // config.json: eos_token_id 400
    const g = GGUFFile.open(single);
    expect(Array.from(g.info.metadata['healthgpt.tokenizer.eos_token_ids'] as ArrayLike<number>)).toEqual([400]);
    g.close();
    await expect(convertLanguageModel(folder({ eos_token_id: 9999 }), join(d, 'bad.gguf'), { type: 'f32' })).rejects.toThrow(/generation_config.json: eos_token_id 9999 is not a token id/);
  });
});
