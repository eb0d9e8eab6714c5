// The checkpoint converter against tools/reference/make_convert_reference.py's files: the readers
// give back the exact tensors torch and transformers saved, malicious and corrupt inputs are
// refused by name with nothing run and nothing written, and a converted Phi3ForCausalLM gives
// transformers' logits and the slow tokenizer's ids.
import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { HealthGPTError } from '../lib/errors.js';
import { GGUFFile } from '../lib/gguf/file.js';
import { LanguageModel } from '../lib/model/model.js';
import { healthgptTokens, loadHfVocab } from '../lib/convert/hf-tokenizer.js';
import { convertLanguageModel } from '../lib/convert/llm.js';
import { type PyTuple, unpickle } from '../lib/convert/pickle.js';
import { openSafetensors, openSafetensorsIndex } from '../lib/convert/safetensors.js';
import { parseSentencePieceModel } from '../lib/convert/sentencepiece.js';
import type { LazyTensor } from '../lib/convert/tensor.js';
import { openTorchCheckpoint } from '../lib/convert/torch.js';
import { QuantizePool } from '../lib/convert/quantize-pool.js';
import { ggmlType } from '../lib/gguf/constants.js';
import { native } from '../lib/native.js';
import { Tokenizer } from '../lib/tokenizer/index.js';
import { cli, root, tempDir, maxRel } from './helpers.js';

const fx = join(root, 'test', 'fixtures', 'convert');
interface TensorDesc {
  dtype: string;
  shape: number[];
  sha256_f32: string;
}
const manifest = JSON.parse(readFileSync(join(fx, 'manifest.json'), 'utf8')) as {
  vocab: number;
  tensors: Record<string, Record<string, TensorDesc>>;
  lightning_extra: { epoch: number; global_step: number };
  slow_tokenizer: Array<{ text: string; ids: number[] }>;
  gpt2_slow_tokenizer: Array<{ text: string; ids: number[] }>;
  gpt2_tokenizer_size: number;
};
const TORCH_DTYPE: Record<string, string> = { float32: 'F32', bfloat16: 'BF16', float16: 'F16', float64: 'F64', int64: 'I64' };

const sha = (a: Float32Array): string =>
  createHash('sha256')
    .update(new Uint8Array(a.buffer, a.byteOffset, a.byteLength))
    .digest('hex');

async function expectSameTensors(tensors: LazyTensor[], ref: Record<string, TensorDesc>): Promise<void> {
  expect(tensors.map((t) => t.name).sort()).toEqual(Object.keys(ref).sort());
  for (const t of tensors) {
    const r = ref[t.name]!;
    expect(t.dtype, t.name).toBe(TORCH_DTYPE[r.dtype]);
    expect(t.shape, t.name).toEqual(r.shape);
    expect(sha(await t.readF32()), t.name).toBe(r.sha256_f32);
  }
}

/** The HealthGPTError a promise rejects with. */
async function refusal(p: Promise<unknown>): Promise<HealthGPTError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(HealthGPTError);
  return err as HealthGPTError;
}

/** A safetensors file from a header object and a data section. */
function safetensorsBytes(header: unknown, data: Uint8Array, claimedLength?: bigint): Buffer {
  const h = Buffer.from(JSON.stringify(header));
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(claimedLength ?? BigInt(h.length));
  return Buffer.concat([len, h, data]);
}

/** A copy of the model folder with its weights replaced (or kept, when `weights` is omitted). */
function modelCopy(weights?: { name: string; bytes: Uint8Array }): string {
  const d = tempDir('healthgpt-convert-');
  for (const f of readdirSync(join(fx, 'model'))) if (f !== 'model.safetensors' || !weights) copyFileSync(join(fx, 'model', f), join(d, f));
  if (weights) writeFileSync(join(d, weights.name), weights.bytes);
  return d;
}

/** A copy of the model folder with the tokenizer files of another fixture folder instead of its own. */
function withTokenizer(from: string): string {
  const d = tempDir('healthgpt-convert-');
  for (const f of ['config.json', 'model.safetensors']) copyFileSync(join(fx, 'model', f), join(d, f));
  for (const f of readdirSync(join(fx, from))) copyFileSync(join(fx, from, f), join(d, f));
  return d;
}

describe('safetensors reader', () => {
  it('single file: every tensor exactly as saved', async () => {
    const f = await openSafetensors(join(fx, 'model', 'model.safetensors'));
    try {
      await expectSameTensors(f.tensors, manifest.tensors['pytorch_model.bin']!);
    } finally {
      await f.close();
    }
  });

  it('sharded with model.safetensors.index.json: the same tensors across the shards', async () => {
    const s = await openSafetensorsIndex(join(fx, 'sharded', 'model.safetensors.index.json'));
    try {
      expect(s.files.length).toBeGreaterThan(1);
      await expectSameTensors(s.tensors, manifest.tensors['pytorch_model.bin']!);
    } finally {
      await s.close();
    }
  });

  const d = tempDir('healthgpt-st-');
  const write = (name: string, b: Buffer): string => {
    writeFileSync(join(d, name), b);
    return join(d, name);
  };
  const good = { w: { dtype: 'F32', shape: [2, 2], data_offsets: [0, 16] } };

  it.each([
    ['a truncated header', () => write('trunc.safetensors', safetensorsBytes(good, new Uint8Array(16)).subarray(0, 30)), /header claims \d+ bytes, the file has/],
    ['a header that claims 2^40 bytes', () => write('huge.safetensors', safetensorsBytes(good, new Uint8Array(16), 1n << 40n)), /header claims 1099511627776 bytes/],
    [
      'offsets past the data',
      () => write('past.safetensors', safetensorsBytes({ w: { dtype: 'F32', shape: [2, 2], data_offsets: [0, 16] } }, new Uint8Array(8))),
      /tensor 'w': data_offsets \[0, 16\] run past the 8 bytes/,
    ],
    [
      'a byte count that does not match the shape',
      () => write('count.safetensors', safetensorsBytes({ w: { dtype: 'F32', shape: [2, 3], data_offsets: [0, 16] } }, new Uint8Array(16))),
      /tensor 'w': 16 bytes for F32 \[2, 3\], which needs 24/,
    ],
    [
      'an unknown dtype',
      () => write('dtype.safetensors', safetensorsBytes({ w: { dtype: 'F8_E4M3', shape: [4], data_offsets: [0, 4] } }, new Uint8Array(4))),
      /tensor 'w': dtype "F8_E4M3" is not supported/,
    ],
    ['a header that is not JSON', () => write('json.safetensors', Buffer.concat([Buffer.from([5, 0, 0, 0, 0, 0, 0, 0]), Buffer.from('{"w":')])), /not valid JSON/],
  ])('refuses %s', async (_what, make, message) => {
    const err = await refusal(openSafetensors(make()));
    expect(err.code).toBe('ERR_CONVERT');
    expect(err.message).toMatch(message);
  });

  it('refuses an index whose shard name leaves the folder', async () => {
    const idx = join(d, 'model.safetensors.index.json');
    writeFileSync(idx, JSON.stringify({ weight_map: { w: '../model.safetensors' } }));
    expect((await refusal(openSafetensorsIndex(idx))).message).toMatch(/not a file name in the same folder/);
  });
});

describe('torch checkpoint reader', () => {
  it.each(['pytorch_model.bin', 'bf16.bin', 'peft.bin'])('%s: every tensor exactly as torch.save wrote it', async (file) => {
    const c = await openTorchCheckpoint(join(fx, 'torch', file));
    try {
      await expectSameTensors(c.tensors, manifest.tensors[file]!);
    } finally {
      await c.close();
    }
  });

  it.each([
    ['zip64.bin', 'zip64 records (as torch writes past 4 GiB)'],
    ['proto4.bin', 'pickle protocol 4 (STACK_GLOBAL, MEMOIZE, FRAME)'],
  ])('%s, %s: the same tensors as peft.bin', async (file) => {
    const c = await openTorchCheckpoint(join(fx, 'torch', file));
    try {
      await expectSameTensors(c.tensors, manifest.tensors['peft.bin']!);
    } finally {
      await c.close();
    }
  });

  it('Lightning .ckpt: the state_dict inside, views (transpose, offset slice, column) gathered, other entries kept', async () => {
    const c = await openTorchCheckpoint(join(fx, 'torch', 'lightning.ckpt'));
    try {
      await expectSameTensors(c.tensors, manifest.tensors['lightning.ckpt']!);
      expect(c.extra.get('epoch')).toBe(manifest.lightning_extra.epoch);
      expect(c.extra.get('global_step')).toBe(manifest.lightning_extra.global_step);
      const t = c.tensors.find((x) => x.name === 'decoder.conv_in.weight_t')!;
      // base = arange(24).reshape(4, 6) / 8; its transpose's row 1 is base[:, 1]
      expect(Array.from((await t.readF32()).subarray(4, 8))).toEqual([1 / 8, 7 / 8, 13 / 8, 19 / 8]);
    } finally {
      await c.close();
    }
  });

  it('refuses the legacy (non-zip) format with how to re-save it', async () => {
    const err = await refusal(openTorchCheckpoint(join(fx, 'torch', 'legacy.bin')));
    expect(err.message).toMatch(/legacy \(pre-1\.6, non-zip\) torch serialization is not supported; re-save/);
  });

  it.each([
    ['system.bin', /global 'os\.system' is not on the allow-list/, '/tmp/healthgpt-pwned-1'],
    ['eval.bin', /global 'builtins\.eval' is not on the allow-list/, '/tmp/healthgpt-pwned-2'],
    ['traversal.bin', /zip entry 'archive\/\.\.\/\.\.\/escape' has a "\.\." component/, undefined],
    ['recursive.bin', /dicts nested more than 32 deep/, undefined],
  ])('refuses evil/%s by name, running nothing', async (file, message, sideEffect) => {
    const err = await refusal(openTorchCheckpoint(join(fx, 'evil', file)));
    expect(err.message).toMatch(message);
    if (sideEffect) expect(existsSync(sideEffect)).toBe(false);
  });
});

describe('unpickler', () => {
  const p2 = (body: number[]): Uint8Array => new Uint8Array([0x80, 0x02, ...body, 0x2e]);
  it('reads plain containers and numbers', () => {
    // {'a': [1, -2, 3.5, None, True], 'b': (2**70,)} written by hand in protocol 2
    const long70 = [0x8a, 9, 0, 0, 0, 0, 0, 0, 0, 0, 0x40];
    const v = unpickle(
      p2([0x7d, 0x28, 0x58, 1, 0, 0, 0, 0x61, 0x5d, 0x28, 0x4b, 1, 0x4a, 0xfe, 0xff, 0xff, 0xff, 0x47, 0x40, 0x0c, 0, 0, 0, 0, 0, 0, 0x4e, 0x88, 0x65, 0x58, 1, 0, 0, 0, 0x62, ...long70, 0x85, 0x75]),
    ) as Map<string, unknown>;
    expect(v.get('a')).toEqual([1, -2, 3.5, null, true]);
    expect((v.get('b') as PyTuple).items).toEqual([1n << 70n]);
  });
  it.each([
    ['INST', [0x69, ...Buffer.from('os\nsystem\n')], /opcode 0x69 'i' at offset 2 is not supported/],
    ['EXT1', [0x82, 1], /opcode 0x82 at offset 2 is not supported/],
    ['a GLOBAL off the list', [...Buffer.from('ctorch\nload\n')], /global 'torch\.load' is not on the allow-list/],
    ['BUILD on a non-dict', [0x5d, 0x7d, 0x62], /BUILD on a list/],
    ['a truncated string', [0x58, 0xff, 0, 0, 0, 0x61], /truncated: 255 bytes needed/],
  ])('refuses %s', (_what, body, message) => {
    expect(() => unpickle(p2(body as number[]))).toThrow(message);
  });
});

describe('tokenizer', () => {
  it('tokenizer.model parsed: BPE with byte fallback, Llama-2 special ids, byte pieces typed BYTE', () => {
    const sp = parseSentencePieceModel(new Uint8Array(readFileSync(join(fx, 'model', 'tokenizer.model'))));
    expect(sp.pieces.length).toBe(400);
    expect([sp.modelType, sp.byteFallback, sp.unkId, sp.bosId, sp.eosId, sp.padId]).toEqual([2, true, 0, 1, 2, -1]);
    expect(sp.pieces.slice(0, 3)).toEqual(['<unk>', '<s>', '</s>']);
    expect(Array.from(sp.types.slice(0, 4))).toEqual([2, 3, 3, 6]);
    expect(sp.pieces[3 + 0x41]).toBe('<0x41>');
    const bytes = new Uint8Array(readFileSync(join(fx, 'model', 'tokenizer.model')));
    expect(() => parseSentencePieceModel(bytes.subarray(0, 1001), 'cut.model')).toThrow(/^cut\.model: (a field of \d+ bytes at offset \d+ runs past its message|truncated)/);
    expect(() => parseSentencePieceModel(new Uint8Array([0x0a, 0x02, 0x18, 0x09]), 'bad.model')).toThrow(/bad\.model: piece 0 has no text/);
  });

  it('tokenizer.model alone: special ids from the model, Phi-3 config ids when the config is there', async () => {
    const d = tempDir('healthgpt-convert-');
    copyFileSync(join(fx, 'model', 'tokenizer.model'), join(d, 'tokenizer.model'));
    const bare = await loadHfVocab(d, { vocabSize: 400 });
    expect([bare.vocab.bosId, bare.vocab.eosId, bare.vocab.unknownId, bare.vocab.paddingId, bare.tokenizerSize]).toEqual([1, 2, 0, undefined, 400]);
    const full = await loadHfVocab(join(fx, 'model'), { vocabSize: 416 });
    expect([full.vocab.bosId, full.vocab.eosId, full.vocab.unknownId, full.vocab.paddingId, full.tokenizerSize]).toEqual([1, 400, 0, 400, 411]);
    // a tokenizer bigger than the embeddings is refused
    expect((await refusal(loadHfVocab(join(fx, 'model'), { vocabSize: 405 }))).message).toMatch(/the tokenizer has 411 tokens, more than the model's vocab_size 405/);
  });

  it('HealthGPT tokens: 8195 after the tokenizer, into rows given (fusion) or as utils.py resizes; refused when given rows are too few', async () => {
    const t = healthgptTokens();
    expect([t.length, t[0], t[1], t[8192], t[8193], t[8194]]).toEqual([8195, '<start_index>', '<idx_0>', '<idx_8191>', '<end_index>', '<pixel_newline>']);
    const v = await loadHfVocab(join(fx, 'model'), { vocabSize: 411 + 8195 + 2, healthgptTokens: true });
    expect(v.kind === 'spm' && [v.vocab.pieces[411], v.vocab.pieces[411 + 8194], v.vocab.pieces.length, v.resize]).toEqual(['<start_index>', '<pixel_newline>', 411 + 8195 + 2, undefined]);
    expect((await refusal(loadHfVocab(join(fx, 'model'), { vocabSize: 416, healthgptTokens: true }))).message).toMatch(/make 8606, more than the model's 416 embedding rows/);
    // no rows given: resize_token_embeddings(len(tokenizer)): exactly 411 + 8195, no padding
    const r = await loadHfVocab(join(fx, 'model'), { vocabSize: 416, healthgptTokens: true, resize: true });
    expect(r.kind === 'spm' && [r.vocab.pieces.length, r.vocab.pieces[410], r.vocab.pieces[411], r.resize]).toEqual([8606, '<|user|>', '<start_index>', { rows: 8606, keep: 411 }]);
  });

  it('HealthGPT tokens for another codebook size (a VQGAN with K codes: K <idx_k>), a bad size refused by code', async () => {
    const t = healthgptTokens(64);
    expect([t.length, t[1], t[64], t[65], t[66]]).toEqual([67, '<idx_0>', '<idx_63>', '<end_index>', '<pixel_newline>']);
    const v = await loadHfVocab(join(fx, 'model'), { vocabSize: 411 + 67, healthgptTokens: true, codebookSize: 64 });
    expect(v.kind === 'spm' && [v.vocab.pieces[411 + 64], v.vocab.pieces[411 + 66], v.vocab.pieces.length]).toEqual(['<idx_63>', '<pixel_newline>', 411 + 67]);
    for (const bad of [0, -1, 1.5, Number.NaN]) expect(() => healthgptTokens(bad)).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG' }));
  });
});

describe('convert --llm', () => {
  const out = tempDir('healthgpt-convert-out-');
  const f32 = join(out, 'tiny.f32.gguf');
  // "Phi-3" in the name gives Phi-3's added tokens RSTRIP, as llama.cpp and HF's config do
  const name = 'Phi-3 tiny reference (random weights)';
  beforeAll(async () => {
    await convertLanguageModel(join(fx, 'model'), f32, { type: 'f32', name });
  });

  const readLogits = (): { tokens: number[]; nVocab: number; logits: Float32Array } => {
    const b = readFileSync(join(fx, 'model.logits'));
    const n = b.readUInt32LE(8);
    const nVocab = b.readUInt32LE(12);
    const tokens = Array.from({ length: n }, (_, i) => b.readInt32LE(16 + 4 * i));
    const off = 16 + 4 * n;
    return { tokens, nVocab, logits: new Float32Array(b.buffer.slice(b.byteOffset + off, b.byteOffset + off + 4 * n * nVocab)) };
  };
  const logitsOf = async (path: string): Promise<Float32Array> => {
    const m = await LanguageModel.load(path, { kvType: 'f32', threads: 2 });
    try {
      return await m.evaluate(readLogits().tokens);
    } finally {
      m.dispose();
    }
  };

  it('F32: transformers logits within 1e-4 relative at every position', async () => {
    const ref = readLogits();
    const got = await logitsOf(f32);
    expect(got.length).toBe(ref.logits.length);
    // float32 rounding only (measured 2.2e-7); the bound
    expect(maxRel(got, ref.logits)).toBeLessThan(1e-4);
  });

  it("llama.cpp (node-llama-cpp) loads the file: the same logits inside the sliding window, and the slow tokenizer's ids for plain text", async () => {
    const nlc = await import('node-llama-cpp');
    const llama = await nlc.getLlama({ gpu: false, build: 'never', logLevel: nlc.LlamaLogLevel.error, progressLogs: false });
    try {
      const lm = await llama.loadModel({ modelPath: f32, gpuLayers: 0 });
      try {
        const ref = readLogits();
        const ctx = await lm.createContext({ contextSize: 64, batchSize: 64, sequences: 1, threads: 2, flashAttention: false, experimentalKvCacheKeyType: 'F32', experimentalKvCacheValueType: 'F32' });
        const got = new Float32Array(ref.logits.length).fill(Number.NaN);
        try {
          const out = await ctx.getSequence().controlledEvaluate(ref.tokens.map((t) => [t as import('node-llama-cpp').Token, { generateNext: { logits: true } }] as const));
          out.forEach((o, p) => {
            for (const [tok, logit] of o!.next.logits!) got[p * ref.nVocab + tok] = logit;
          });
        } finally {
          await ctx.dispose();
        }
        // Positions inside the sliding window (6) only: this llama.cpp build ignores Phi-3's window
        // (its logits match transformers run with sliding_window=None at every position, 2e-7
        // measured, and differ past the window by up to 0.9 relative), while this engine and
        // transformers apply it. Inside the window: float32 rounding, measured 2.1e-7.
        const inWindow = 6 * ref.nVocab;
        expect(maxRel(got.subarray(0, inWindow), ref.logits.subarray(0, inWindow))).toBeLessThan(1e-4);
        // without special tokens llama.cpp's space prefix is the slow tokenizer's
        for (const { text, ids } of manifest.slow_tokenizer.filter((x) => !x.text.includes('<|'))) expect([lm.tokens.bos!, ...lm.tokenize(text)], text).toEqual(ids);
      } finally {
        await lm.dispose();
      }
    } finally {
      await llama.dispose();
    }
  });

  it('metadata: phi3 keys as llama.cpp writes them, vocabulary padded to vocab_size', () => {
    const g = GGUFFile.open(f32);
    try {
      const md = g.info.metadata;
      expect(md['general.architecture']).toBe('phi3');
      expect([md['phi3.embedding_length'], md['phi3.feed_forward_length'], md['phi3.block_count'], md['phi3.attention.head_count'], md['phi3.attention.head_count_kv']]).toEqual([32, 64, 2, 4, 2]);
      expect([md['phi3.context_length'], md['phi3.rope.dimension_count'], md['phi3.attention.sliding_window'], md['phi3.rope.scaling.original_context_length']]).toEqual([64, 8, 6, 64]);
      const tokens = md['tokenizer.ggml.tokens'] as string[];
      expect(tokens.length).toBe(manifest.vocab);
      expect([tokens[400], tokens[410], tokens[411], tokens[415]]).toEqual(['<|endoftext|>', '<|user|>', '[PAD411]', '[PAD415]']);
      expect([md['tokenizer.ggml.bos_token_id'], md['tokenizer.ggml.eos_token_id'], md['tokenizer.ggml.add_bos_token']]).toEqual([1, 400, true]);
      expect(g.info.tensors.find((t) => t.name === 'blk.0.attn_qkv.weight')!.shape).toEqual([32, 64]);
    } finally {
      g.close();
    }
  });

  it("token ids equal the Hugging Face slow tokenizer's", () => {
    const g = GGUFFile.open(f32);
    const tok = Tokenizer.fromGGUF(g.info);
    g.close();
    for (const { text, ids } of manifest.slow_tokenizer) expect(tok.encode(text, { prefixStyle: 'hf-slow', special: true }), text).toEqual(ids);
  });

  it('tokenizer.json without tokenizer.model: the same ids (scores from the merge ranks)', async () => {
    const p = join(out, 'tokjson.gguf');
    await convertLanguageModel(withTokenizer('tokenizer-json'), p, { type: 'f32', name });
    const g = GGUFFile.open(p);
    const tok = Tokenizer.fromGGUF(g.info);
    g.close();
    expect(tok.model).toBe('llama');
    for (const { text, ids } of manifest.slow_tokenizer) expect(tok.encode(text, { prefixStyle: 'hf-slow', special: true }), text).toEqual(ids);
  });

  it("GPT2Tokenizer (Phi-4's kind): byte-level BPE vocabulary, the slow tokenizer's ids", async () => {
    const p = join(out, 'gpt2.gguf');
    await convertLanguageModel(withTokenizer('gpt2-tokenizer'), p, { type: 'f32', name: 'tiny byte-level' });
    const g = GGUFFile.open(p);
    const md = g.info.metadata;
    // HF's slow GPT2Tokenizer splits with the GPT-2 expression whatever tokenizer.json says
    const tok = Tokenizer.fromGGUF(g.info, { preRegexesOf: 'gpt-2' });
    g.close();
    expect([md['tokenizer.ggml.model'], md['tokenizer.ggml.pre'], md['tokenizer.ggml.eos_token_id'], md['tokenizer.ggml.add_bos_token']]).toEqual(['gpt2', 'dbrx', 360, false]);
    const tokens = md['tokenizer.ggml.tokens'] as string[];
    expect(tokens.length).toBe(manifest.vocab);
    expect(tokens[manifest.gpt2_tokenizer_size]).toBe(`[PAD${manifest.gpt2_tokenizer_size}]`);
    for (const { text, ids } of manifest.gpt2_slow_tokenizer) expect(tok.encode(text, { special: true }), text).toEqual(ids);
  });

  it('sharded safetensors and the torch .bin give the identical file', async () => {
    const sharded = join(out, 'sharded.gguf');
    const shardDir = tempDir('healthgpt-convert-');
    for (const f of readdirSync(join(fx, 'sharded'))) copyFileSync(join(fx, 'sharded', f), join(shardDir, f));
    for (const f of ['tokenizer.model', 'tokenizer_config.json']) copyFileSync(join(fx, 'model', f), join(shardDir, f));
    await convertLanguageModel(shardDir, sharded, { type: 'f32', name });
    const bin = join(out, 'bin.gguf');
    await convertLanguageModel(modelCopy({ name: 'pytorch_model.bin', bytes: readFileSync(join(fx, 'torch', 'pytorch_model.bin')) }), bin, { type: 'f32', name });
    const ref = readFileSync(f32);
    expect(readFileSync(sharded).equals(ref)).toBe(true);
    expect(readFileSync(bin).equals(ref)).toBe(true);
  });

  it('pytorch_model.bin.index.json, and a bf16 checkpoint to bf16: every weight bit for bit', async () => {
    const dir = modelCopy({ name: 'pytorch_model.bin', bytes: readFileSync(join(fx, 'torch', 'bf16.bin')) });
    const names = Object.keys(manifest.tensors['bf16.bin']!);
    writeFileSync(join(dir, 'pytorch_model.bin.index.json'), JSON.stringify({ weight_map: Object.fromEntries(names.map((n) => [n, 'pytorch_model.bin'])) }));
    const p = join(out, 'bf16.gguf');
    await convertLanguageModel(dir, p, { type: 'bf16', name });
    const src = await openTorchCheckpoint(join(fx, 'torch', 'bf16.bin'));
    const g = GGUFFile.open(p);
    try {
      const emb = g.info.tensors.findIndex((t) => t.name === 'token_embd.weight');
      const norm = g.info.tensors.findIndex((t) => t.name === 'blk.0.attn_norm.weight');
      expect([g.info.tensors[emb]!.type, g.info.tensors[norm]!.type]).toEqual(['bf16', 'f32']);
      // bf16 -> f32 -> bf16 is exact: the file holds the checkpoint's very bits
      const want = await src.tensors.find((t) => t.name === 'model.embed_tokens.weight')!.readF32();
      const u = new Uint32Array(want.buffer);
      const got = new Uint16Array(new Uint8Array(await g.tensorData(emb)).buffer);
      expect(got.length).toBe(u.length);
      expect(got.every((h, i) => h === u[i]! >>> 16)).toBe(true);
      const wantNorm = await src.tensors.find((t) => t.name === 'model.layers.0.input_layernorm.weight')!.readF32();
      expect(new Float32Array(new Uint8Array(await g.tensorData(norm)).buffer)).toEqual(wantNorm);
    } finally {
      g.close();
      await src.close();
    }
  });

  it('q8_0 and f16: logits near the reference', async () => {
    // against the unquantized model, so this is the weights' rounding: measured 8.2e-4 (f16) and
    // 1.85e-2 (q8_0, row length 32: one block per row); bounds ~1.6-2.5x that
    const ref = readLogits();
    for (const [type, tol] of [
      ['f16', 2e-3],
      ['q8_0', 3e-2],
    ] as const) {
      const p = join(out, `tiny.${type}.gguf`);
      await convertLanguageModel(join(fx, 'model'), p, { type, name });
      expect(maxRel(await logitsOf(p), ref.logits), type).toBeLessThan(tol);
    }
  });

  const refused = async (dir: string, message: RegExp): Promise<void> => {
    const o = join(out, `refused-${Math.random().toString(36).slice(2)}.gguf`);
    const err = await refusal(convertLanguageModel(dir, o, { type: 'f32' }));
    expect(err.message).toMatch(message);
    expect(existsSync(o)).toBe(false);
    expect(readdirSync(out).filter((f) => f.includes('.tmp-'))).toEqual([]);
  };

  it('refuses malicious and corrupt checkpoints, writing nothing', async () => {
    for (const [file, message] of [
      ['system.bin', /os\.system/],
      ['eval.bin', /builtins\.eval/],
      ['traversal.bin', /could escape its folder/],
    ] as const)
      await refused(modelCopy({ name: 'pytorch_model.bin', bytes: readFileSync(join(fx, 'evil', file)) }), message);
    await refused(modelCopy({ name: 'pytorch_model.bin', bytes: readFileSync(join(fx, 'torch', 'legacy.bin')) }), /legacy/);
    const bin = readFileSync(join(fx, 'torch', 'pytorch_model.bin'));
    await refused(modelCopy({ name: 'pytorch_model.bin', bytes: bin.subarray(0, bin.length - 50) }), /no zip end-of-central-directory record \(truncated or not a zip\)/);
    const st = readFileSync(join(fx, 'model', 'model.safetensors'));
    await refused(modelCopy({ name: 'model.safetensors', bytes: st.subarray(0, st.length - 100) }), /run past the \d+ bytes of data/);
  });

  it('reports unknown and missing tensors by name', async () => {
    const f = await openSafetensors(join(fx, 'model', 'model.safetensors'));
    const keep = f.tensors.filter((t) => t.name !== 'model.layers.1.mlp.down_proj.weight');
    const header: Record<string, unknown> = {};
    const parts: Buffer[] = [];
    let at = 0;
    for (const t of [...keep, { name: 'model.vision_tower.w', shape: [2], readF32: async () => new Float32Array(2) }]) {
      const v = Buffer.from((await t.readF32()).buffer);
      header[t.name] = { dtype: 'F32', shape: t.shape, data_offsets: [at, at + v.length] };
      parts.push(v);
      at += v.length;
    }
    await f.close();
    const dir = modelCopy({ name: 'model.safetensors', bytes: safetensorsBytes(header, Buffer.concat(parts)) });
    await refused(dir, /1 tensor\(s\) that are not Phi3ForCausalLM weights: model\.vision_tower\.w/);
    const header2 = Object.fromEntries(Object.entries(header).filter(([k]) => k !== 'model.vision_tower.w'));
    writeFileSync(join(dir, 'model.safetensors'), safetensorsBytes(header2, Buffer.concat(parts.slice(0, -1))));
    await refused(dir, /1 tensor\(s\) missing: model\.layers\.1\.mlp\.down_proj\.weight$/);
  });

  it('an AbortSignal stops the conversion mid-file, leaving nothing behind', async () => {
    const o = join(out, 'aborted.gguf');
    const ac = new AbortController();
    let seen = 0;
    const err = await refusal(convertLanguageModel(join(fx, 'model'), o, { type: 'q8_0', signal: ac.signal, onTensor: () => ++seen === 3 && ac.abort() }));
    expect(err.code).toBe('ABORT_ERR');
    expect(seen).toBe(3);
    expect(existsSync(o)).toBe(false);
    expect(readdirSync(out).filter((f) => f.includes('.tmp-'))).toEqual([]);
  });

  it('refuses an output in a folder that does not exist', async () => {
    const err = await refusal(convertLanguageModel(join(fx, 'model'), join(out, 'no-such-folder', 'm.gguf'), { type: 'f32' }));
    expect(err.message).toMatch(/no-such-folder does not exist/);
  });

  it('--healthgpt-tokens without HealthGPT rows (M3, no fusion file): resized as utils.py, the 8195 new rows = the mean of rows 0..410', async () => {
    const p = join(out, 'healthgpt-tokens.gguf');
    const r = await convertLanguageModel(modelCopy(), p, { type: 'f32', name, healthgptTokens: true });
    expect([r.vocabSize, r.resizedWithMean]).toEqual([411 + 8195, 8195]);
    const f = await openSafetensors(join(fx, 'model', 'model.safetensors'));
    const g = GGUFFile.open(p);
    try {
      for (const [gguf, hf] of [
        ['token_embd.weight', 'model.embed_tokens.weight'],
        ['output.weight', 'lm_head.weight'],
      ]) {
        const base = await f.tensors.find((t) => t.name === hf)!.readF32(); // 416 rows: 411..415 are dropped
        const i = g.info.tensors.findIndex((t) => t.name === gguf);
        const b = await g.tensorData(i);
        const got = new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));
        expect(got.length).toBe((411 + 8195) * 32);
        expect(got.subarray(0, 411 * 32)).toEqual(base.subarray(0, 411 * 32));
        const mean = new Float32Array(32).map((_, c) => {
          let s = 0;
          for (let row = 0; row < 411; row++) s += base[row * 32 + c]!;
          return s / 411;
        });
        for (const row of [411, 412, 411 + 8192, 411 + 8194]) expect(got.subarray(row * 32, (row + 1) * 32), `${gguf} row ${row}`).toEqual(mean);
      }
    } finally {
      g.close();
      await f.close();
    }
    const m = await LanguageModel.load(p, { kvType: 'f32', threads: 2 });
    try {
      expect(m.info.nVocab).toBe(411 + 8195);
      expect(m.tokenize('<start_index><idx_0><idx_8191><end_index><pixel_newline>', { addSpecial: false })).toEqual([411, 412, 411 + 8192, 411 + 8193, 411 + 8194]);
      expect((await m.evaluate([1, 411, 412])).length).toBe(3 * (411 + 8195));
    } finally {
      m.dispose();
    }
  });

  it('refuses a config that is not a Phi3ForCausalLM', async () => {
    const dir = modelCopy();
    const cfg = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8'));
    writeFileSync(join(dir, 'config.json'), JSON.stringify({ ...cfg, architectures: ['LlamaForCausalLM'], model_type: 'llama' }));
    await refused(dir, /only Phi3ForCausalLM is converted/);
  });
});

describe('quantization workers', () => {
  it('three workers over 7-row chunks give the bytes of one quantizeRow call over the whole tensor', async () => {
    const rows = 101;
    const row = 64;
    const values = Float32Array.from({ length: rows * row }, (_, i) => Math.sin(i * 0.731) * (1 + (i % 13)));
    const pool = new QuantizePool(3, 7 * row);
    try {
      expect(pool.size).toBe(3);
      for (const name of ['q8_0', 'q4_0', 'f16', 'bf16']) {
        const t = ggmlType(name)!;
        const want = native().quantizeRow(t.id, values);
        const got = await pool.quantize(values, row, t);
        expect(Buffer.from(got).equals(want), name).toBe(true);
      }
      // a row length the type cannot take is refused by the worker, not a crash
      const err = await refusal(pool.quantize(new Float32Array(3 * 48), 48, ggmlType('q4_K')!));
      expect(err.message).toMatch(/quantization failed: length 144 is not a positive multiple of the q4_K block \(256\)/);
    } finally {
      await pool.close();
    }
  });
});

describe('healthgpt convert (CLI)', () => {
  it('converts with a progress-free summary; with --vision/--plugins/--vqgan, a bad path is named and nothing is written', () => {
    const o = join(tempDir('healthgpt-convert-cli-'), 'm.gguf');
    const r = cli(['convert', '--llm', join(fx, 'model'), '-o', o, '--type', 'q8_0']);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/wrote .*m\.gguf: 15 tensors, vocabulary 416/);
    const named: Record<string, RegExp> = {
      '--vision': /x\/config\.json: ENOENT/,
      '--plugins': /--plugins: cannot tell which plugin 'x'/,
      '--vqgan': /x: cannot open/,
    };
    for (const flag of ['--vision', '--plugins', '--vqgan']) {
      const x = cli(['convert', '--llm', join(fx, 'model'), flag, 'x', '-o', o + flag]);
      expect(x.status).toBe(1);
      expect(x.stderr).toMatch(named[flag]!);
      expect(existsSync(o + flag)).toBe(false);
    }
    expect(cli(['convert', '--llm', join(fx, 'model'), '-o', o, '--type', 'q3']).stderr).toMatch(/unknown quantization type "q3"/);
  });
});
