// HealthGPT-L14 as the original runs it (com_infer_phi4.py): a tiny Phi-4-style folder
// (test/fixtures/phi4, tools/reference/make_phi4_reference.py: byte-level BPE trained on cl100k
// pre-tokens, Phi-4's 96 added tokens with their lstrip/rstrip flags, generation_config.json)
// and the release's com_hlora_weights_phi4.bin, no fusion file, with a tiny CLIP tower. Golden ids come from
// transformers' SLOW GPT2Tokenizer (use_fast=False, as HealthGPT loads it) and HealthGPT's
// prompt construction; the resize from utils.py restated in numpy.
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFileSync, mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { convertHealthGPT } from '../lib/convert/healthgpt.js';
import { convertLanguageModel } from '../lib/convert/llm.js';
import { openSafetensors } from '../lib/convert/safetensors.js';
import { GGUFFile } from '../lib/gguf/file.js';
import { HealthGPT } from '../lib/session/healthgpt.js';
import { LanguageModel } from '../lib/model/model.js';
import { tokenizeImagePrompt } from '../lib/prompt/multimodal.js';
import { PHI4_INSTRUCT, renderChat, templateFor } from '../lib/prompt/template.js';
import { TorchDict, TorchTensor, writeTorchSave, type TorchValue } from '../lib/synthetic/torch-writer.js';
import { Tokenizer } from '../lib/tokenizer/index.js';
import { root, tempDir } from './helpers.js';

interface Golden {
  trained_tokens: number;
  tokenizer_size: number;
  added: Record<string, number>;
  corpus: { text: string; slow: number[]; fast: number[] }[];
  prompts: { question: string; text: string; ids: number[]; fast: number[] }[];
  healthgpt_ids: Record<'start_index' | 'idx_0' | 'idx_8191' | 'end_index' | 'pixel_newline', number>;
  resize: { rows: number; embed_mean: number[]; head_mean: number[]; embed_sum: number; head_sum: number };
  eos_token_ids: number[];
  single_word: { text: string; slow: number[] }[];
}

const fx = join(root, 'test', 'fixtures', 'phi4');
const llm = join(fx, 'llm');
const golden = JSON.parse(readFileSync(join(fx, 'golden.json'), 'utf8')) as Golden;
const HIDDEN = 16;
const IMAGE = -200; // LLaVA's IMAGE_TOKEN_INDEX in the golden ids
const clip = join(root, 'test', 'fixtures', 'release', 'clip'); // a tiny CLIP tower (width 32)
const CLIP_WIDTH = 32;

/** The release's com_hlora_weights_phi4.bin layout for the tiny model: r 32, 4 experts (f32). */
async function writeComPlugin(path: string): Promise<void> {
  const r = 32;
  const n = 4;
  const linears: Array<[string, number, number]> = [
    ['self_attn.qkv_proj', HIDDEN, HIDDEN + 2 * 8],
    ['self_attn.o_proj', HIDDEN, HIDDEN],
    ['mlp.gate_up_proj', HIDDEN, 64],
    ['mlp.down_proj', 32, HIDDEN],
  ];
  let seed = 7;
  const rnd = (k: number): Float32Array => Float32Array.from({ length: k }, () => ((seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648 - 0.5) * 0.1);
  const sd: Array<[string, TorchValue]> = [];
  for (const [lin, din, dout] of linears) {
    const base = `base_model.model.model.layers.0.${lin}`;
    sd.push([`${base}.lora_route.weight`, new TorchTensor([n, din], rnd(n * din))]);
    sd.push([`${base}.lora_A.weight`, new TorchTensor([r, din], rnd(r * din))]);
    sd.push([`${base}.lora_B.weight`, new TorchTensor([dout, r], rnd(dout * r))]);
  }
  sd.push(['base_model.model.model.mm_projector.0.weight', new TorchTensor([HIDDEN, CLIP_WIDTH], rnd(HIDDEN * CLIP_WIDTH))]);
  sd.push(['base_model.model.model.mm_projector.0.bias', new TorchTensor([HIDDEN], rnd(HIDDEN))]);
  sd.push(['base_model.model.model.mm_projector.2.weight', new TorchTensor([HIDDEN, HIDDEN], rnd(HIDDEN * HIDDEN))]);
  sd.push(['base_model.model.model.mm_projector.2.bias', new TorchTensor([HIDDEN], rnd(HIDDEN))]);
  await writeTorchSave(path, new TorchDict(sd, true));
}

async function rowsOf(path: string, name: string): Promise<{ data: Float32Array; rows: number }> {
  const g = GGUFFile.open(path);
  try {
    const i = g.info.tensors.findIndex((t) => t.name === name);
    const t = g.info.tensors[i]!;
    expect(t.type).toBe('f32');
    const b = await g.tensorData(i);
    return { data: new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength)), rows: t.shape[1]! };
  } finally {
    g.close();
  }
}

const flatten = (pieces: ReturnType<typeof tokenizeImagePrompt>): number[] => pieces.flatMap((p) => (p.kind === 'tokens' ? p.tokens : [IMAGE]));

describe('HealthGPT-L14 (Phi-4): the release layout converts and tokenizes as the original', () => {
  const out = tempDir('healthgpt-l14-');
  const l14 = join(out, 'healthgpt-l14');
  let md: Record<string, unknown>;
  let tok: Tokenizer;

  beforeAll(async () => {
    const rel = join(out, 'release');
    mkdirSync(rel);
    await writeComPlugin(join(rel, 'com_hlora_weights_phi4.bin'));
    // as `pull l14` converts: phi-4 + com_hlora_weights_phi4.bin (release defaults r 32 / alpha 64 / 4), no fusion file
    const m = await convertHealthGPT(l14, { llm, vision: clip, plugins: [join(rel, 'com_hlora_weights_phi4.bin')], healthgptTokens: true, type: 'f32', threads: 1 });
    expect(m.files.map((f) => f.file)).toEqual(['model.gguf', 'comprehension.gguf', 'vision.gguf']);
    expect(m.notes.join('\n')).toMatch(/resized to 8960 rows as HealthGPT's utils.py does \(the 8195 new rows/);
    expect(m.notes.join('\n')).toMatch(/rank 32, alpha 64, 4 experts/);
    const g = GGUFFile.open(join(l14, 'model.gguf'));
    md = g.info.metadata;
    tok = Tokenizer.fromGGUF(g.info);
    g.close();
  });

  it("vocabulary: the tokenizer's tokens, then <start_index>, 8192 <idx_k>, <end_index>, <pixel_newline> at the slow tokenizer's ids", () => {
    expect(tok.size).toBe(golden.resize.rows);
    for (const [k, id] of Object.entries(golden.healthgpt_ids)) expect(tok.tokenId(`<${k}>`), k).toBe(id);
    for (const [t, id] of Object.entries(golden.added)) expect(tok.tokenId(t), t).toBe(id);
    expect(md['tokenizer.ggml.pre']).toBe('gpt-2'); // the slow GPT2Tokenizer's split, recorded at convert time
    // Phi-4's added tokens: lstrip and rstrip, normalized false
    const lstrip = Array.from(md['healthgpt.tokenizer.lstrip'] as ArrayLike<number>);
    expect(lstrip).toEqual(Object.values(golden.added).sort((a, b) => a - b));
    expect(Array.from(md['healthgpt.tokenizer.rstrip'] as ArrayLike<number>)).toEqual(lstrip);
    expect(Array.from(md['healthgpt.tokenizer.normalized'] as ArrayLike<number>)).toEqual([]);
    expect(Array.from(md['healthgpt.tokenizer.single_word'] as ArrayLike<number>)).toEqual([]);
  });

  it("the corpus (digits, hyphens, contractions, whitespace runs, non-Latin) gives the slow GPT2Tokenizer's ids", () => {
    let differ = 0;
    for (const c of golden.corpus) {
      expect(tok.encode(c.text, { special: true, prefixStyle: 'hf-slow' }), JSON.stringify(c.text)).toEqual(c.slow);
      if (c.slow.join() !== c.fast.join()) differ++;
    }
    expect(differ).toBeGreaterThanOrEqual(5); // the corpus does tell the two expressions apart
  });

  it("phi4_instruct with an image: the original's prompt ids (tokenizer_image_token on the slow tokenizer)", () => {
    expect(templateFor(md)).toBe(PHI4_INSTRUCT);
    for (const p of golden.prompts) {
      const text = renderChat(PHI4_INSTRUCT, [{ role: 'user', content: `<image>\n${p.question}` }]);
      expect(text).toBe(p.text);
      expect(flatten(tokenizeImagePrompt(tok, text)), p.question).toEqual(p.ids);
    }
    // the newlines around the role markers are stripped (rstrip / lstrip), not extra "\n" tokens
    const first = golden.prompts[0]!.ids;
    const nl = tok.tokenId('\u010a')!; // "\n" in GPT-2's byte alphabet
    const added = new Set(Object.values(golden.added));
    expect(first).toContain(nl); // the one after <image>, which starts its own chunk
    first.forEach((id, i) => {
      if (added.has(id)) expect([first[i - 1], first[i + 1]], `around ${id} at ${i}`).not.toContain(nl);
    });
  });

  it('the session (HealthGPT.load on the converted folder) feeds the model exactly those ids, the image where -200 stands', async () => {
    const hg = await HealthGPT.load({ model: join(l14, 'model.gguf'), vision: join(l14, 'vision.gguf'), plugins: { comprehension: join(l14, 'comprehension.gguf') }, threads: 1 });
    try {
      expect(hg.template).toBe(PHI4_INSTRUCT);
      for (const p of golden.prompts) {
        const { prompt } = await hg.askPrompt({ question: p.question, image: join(root, 'test', 'fixtures', 'image', 'gray_45x45.png') });
        expect(
          prompt.flatMap((x) => (typeof x === 'number' ? [x] : [IMAGE])),
          p.question,
        ).toEqual(p.ids);
      }
    } finally {
      hg.dispose();
    }
  });

  it('embeddings and head resized as utils.py: old rows kept bit for bit, the 8195 new rows = the mean of the old', async () => {
    const st = await openSafetensors(join(llm, 'model.safetensors'));
    try {
      for (const [gguf, hf, mean, sum] of [
        ['token_embd.weight', 'model.embed_tokens.weight', golden.resize.embed_mean, golden.resize.embed_sum],
        ['output.weight', 'lm_head.weight', golden.resize.head_mean, golden.resize.head_sum],
      ] as const) {
        const { data, rows } = await rowsOf(join(l14, 'model.gguf'), gguf);
        expect(rows).toBe(golden.resize.rows);
        const base = await st.tensors.find((t) => t.name === hf)!.readF32();
        const keep = golden.tokenizer_size;
        expect(data.subarray(0, keep * HIDDEN)).toEqual(base.subarray(0, keep * HIDDEN));
        // numpy's float64 mean rounded once to float32: equal, or one float32 ulp apart
        for (let r = keep; r < rows; r += 997) {
          const row = data.subarray(r * HIDDEN, (r + 1) * HIDDEN);
          row.forEach((v, c) => expect(Math.abs(v - mean[c]!), `${gguf} row ${r} col ${c}`).toBeLessThanOrEqual(Math.abs(mean[c]!) * 2 ** -23));
        }
        let s = 0;
        for (const v of data) s += v;
        expect(Math.abs(s - sum)).toBeLessThan(1e-6 * Math.max(1, Math.abs(sum)) + 1e-3);
      }
    } finally {
      await st.close();
    }
  });

  it("stops where the model's generation_config.json says (<|im_end|>), not at a per-family list", async () => {
    expect(Array.from(md['healthgpt.tokenizer.eos_token_ids'] as ArrayLike<number>)).toEqual(golden.eos_token_ids);
    expect(tok.eosTokenIds).toEqual(golden.eos_token_ids);
    const model = await LanguageModel.load(join(l14, 'model.gguf'), { threads: 1, contextSize: 64 });
    try {
      expect(model.defaultStopTokens()).toEqual(golden.eos_token_ids);
    } finally {
      model.dispose();
    }
  });

  it("a plain Phi-4 conversion keeps the fast tokenizer's (llama.cpp's cl100k) split, and its own vocabulary size", async () => {
    const p = join(out, 'phi4.gguf');
    const r = await convertLanguageModel(llm, p, { type: 'f32', threads: 1 });
    expect(r.vocabSize).toBe(golden.tokenizer_size);
    expect(r.resizedWithMean).toBeUndefined();
    const g = GGUFFile.open(p);
    const plain = Tokenizer.fromGGUF(g.info);
    expect(g.info.metadata['tokenizer.ggml.pre']).toBe('dbrx');
    g.close();
    // (Hugging Face strips Unicode whitespace around added tokens, as prefixStyle 'hf-slow' does)
    for (const c of golden.corpus) expect(plain.encode(c.text, { special: true, prefixStyle: 'hf-slow' }), JSON.stringify(c.text)).toEqual(c.fast);
    for (const pr of golden.prompts) expect(flatten(tokenizeImagePrompt(plain, pr.text))).toEqual(pr.fast);
  });

  it("single_word (none of Phi-4's tokens has it) follows the slow tokenizer's rule", async () => {
    const dir = join(out, 'single-word');
    mkdirSync(dir);
    for (const f of readdirSync(llm)) copyFileSync(join(llm, f), join(dir, f));
    copyFileSync(join(fx, 'single-word', 'tokenizer_config.json'), join(dir, 'tokenizer_config.json'));
    const p = join(out, 'single-word.gguf');
    await convertLanguageModel(dir, p, { type: 'f32', healthgptTokens: true, threads: 1 });
    const g = GGUFFile.open(p);
    const sw = Tokenizer.fromGGUF(g.info);
    expect(Array.from(g.info.metadata['healthgpt.tokenizer.single_word'] as ArrayLike<number>)).toEqual([golden.added['<|dummy_3|>'], golden.added['<|dummy_4|>']]);
    g.close();
    for (const c of golden.single_word) expect(sw.encode(c.text, { special: true, prefixStyle: 'hf-slow' }), JSON.stringify(c.text)).toEqual(c.slow);
  });
});

// `healthgpt pull l14` against a local server answering as the Hugging Face Hub (listing with
// blob ids, /resolve/): the release's three repositories holding the tiny files above
describe('pull l14: what it downloads and gives', () => {
  const repos: Record<string, Record<string, Buffer>> = {};
  let server: Server;
  let endpoint = '';
  const blobId = (d: Buffer): string => createHash('sha1').update(`blob ${d.length}\0`).update(d).digest('hex');

  beforeAll(async () => {
    const files = (dir: string): Record<string, Buffer> => Object.fromEntries(readdirSync(dir).map((f) => [f, readFileSync(join(dir, f))]));
    const d = tempDir('healthgpt-hub-l14-');
    await writeComPlugin(join(d, 'com_hlora_weights_phi4.bin'));
    repos['microsoft/phi-4'] = files(llm);
    repos['openai/clip-vit-large-patch14-336'] = files(clip);
    repos['lintw/HealthGPT-L14'] = { 'com_hlora_weights_phi4.bin': readFileSync(join(d, 'com_hlora_weights_phi4.bin')), 'README.md': Buffer.from('# not fetched') };
    const commit = 'd'.repeat(40);
    server = createServer((req, res) => {
      const url = new URL(req.url!, 'http://x');
      const api = /^\/api\/models\/([^/]+\/[^/]+)\/revision\/[^/]+$/.exec(url.pathname);
      const get = /^\/([^/]+\/[^/]+)\/resolve\/[^/]+\/(.+)$/.exec(url.pathname);
      const repo = repos[(api ?? get)?.[1] ?? ''];
      if (!repo) return void res.writeHead(404).end();
      if (api) {
        const siblings = Object.entries(repo).map(([rfilename, b]) => ({ rfilename, size: b.length, blobId: blobId(b) }));
        return void res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ sha: commit, siblings }));
      }
      const body = repo[decodeURIComponent(get![2]!)];
      if (!body) return void res.writeHead(404).end();
      res.writeHead(200, { 'content-length': body.length }).end(body);
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(() => new Promise<void>((r) => server.close(() => r())));

  it('phi-4 (weights, configs, tokenizer files), CLIP and com_hlora_weights_phi4.bin; converted to model, vision and comprehension: ask only', async () => {
    const cache = tempDir('healthgpt-pull-l14-');
    const { stdout } = await promisify(execFile)(process.execPath, [join(root, 'bin', 'healthgpt.js'), 'pull', 'l14', '--cache', cache, '--type', 'f32', '--json'], {
      env: { ...process.env, HF_ENDPOINT: endpoint, HEALTHGPT_NO_PROGRESS: '1' },
    });
    const r = JSON.parse(stdout) as { converted: string[]; parts: { role: string; repo: string; files: string[] }[] };
    expect(r.parts.map((p) => [p.role, p.repo])).toEqual([
      ['llm', 'microsoft/phi-4'],
      ['vision', 'openai/clip-vit-large-patch14-336'],
      ['plugins', 'lintw/HealthGPT-L14'],
    ]);
    expect(r.parts[0]!.files.sort()).toEqual(readdirSync(llm).sort());
    expect(r.parts[2]!.files).toEqual(['com_hlora_weights_phi4.bin']);
    const out = join(cache, 'models', 'l14');
    expect(r.converted.map((f) => f.slice(out.length + 1))).toEqual(['model.gguf', 'comprehension.gguf', 'vision.gguf']);
    const manifest = JSON.parse(readFileSync(join(out, 'healthgpt.json'), 'utf8')) as { notes: string[] };
    expect(manifest.notes.join('\n')).toMatch(/resized to 8960 rows as HealthGPT's utils.py does/);
    const hg = await HealthGPT.load({ model: join(out, 'model.gguf'), vision: join(out, 'vision.gguf'), plugins: { comprehension: join(out, 'comprehension.gguf') }, threads: 1 });
    try {
      const p = golden.prompts[1]!;
      const { prompt } = await hg.askPrompt({ question: p.question, image: join(root, 'test', 'fixtures', 'image', 'gray_45x45.png') });
      expect(prompt.flatMap((x) => (typeof x === 'number' ? [x] : [IMAGE]))).toEqual(p.ids);
      expect(hg.model.defaultStopTokens()).toEqual(golden.eos_token_ids);
    } finally {
      hg.dispose();
    }
  });
});
