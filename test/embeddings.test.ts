// Prompts with input embeddings in place of tokens (the way projected image features enter
// the model): rows equal to token_embd's give the tokens' logits bit for bit, with and
// without a plugin; the prefix reuse compares embeddings by value, so an array changed in
// place is recomputed; bad embeddings are refused naming the index.
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GGUFFile } from '../lib/gguf/file.js';
import { LanguageModel } from '../lib/model/model.js';
import { root } from './helpers.js';

const fixtures = join(root, 'test', 'fixtures', 'phi3-hlora');
const tokens = [17, 203, 99, 241, 5, 66, 130, 250, 12, 77];

const collect = async (it: AsyncGenerator<number, unknown, void>): Promise<number[]> => {
  const out: number[] = [];
  for await (const t of it) out.push(t);
  return out;
};

describe('prompts with embeddings', () => {
  let m: LanguageModel;
  let table: Float32Array; // token_embd of the F32 base, row after row
  let E: number;
  const rowsOf = (ids: number[]): Float32Array => {
    const out = new Float32Array(ids.length * E);
    ids.forEach((id, i) => out.set(table.subarray(id * E, (id + 1) * E), i * E));
    return out;
  };
  beforeAll(async () => {
    const path = join(fixtures, 'base.f32.gguf');
    const f = GGUFFile.open(path);
    const buf = await f.tensorData(f.tensorIndex('token_embd.weight'));
    f.close();
    table = new Float32Array(buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength));
    m = await LanguageModel.load(path, { kvType: 'f32', threads: 2, plugins: { comprehension: join(fixtures, 'comprehension.f32.gguf') } });
    E = m.info.nEmbd;
    expect(table.length).toBe(m.info.nVocab * E);
  });
  afterAll(() => m.dispose());

  for (const plugin of [undefined, 'comprehension']) {
    it(`token_embd rows in place of tokens give the same logits (${plugin ?? 'no plugin'})`, async () => {
      const want = await m.evaluate(tokens, { plugin });
      // an F32 row is copied either way: identical, not merely close
      const got = await m.evaluate([tokens[0], tokens[1], rowsOf(tokens.slice(2, 6)), ...tokens.slice(6)], { plugin });
      expect(Buffer.from(got.buffer).equals(Buffer.from(want.buffer))).toBe(true);
      const first = await m.evaluate([rowsOf([tokens[0]]), ...tokens.slice(1)], { plugin });
      expect(Buffer.from(first.buffer).equals(Buffer.from(want.buffer))).toBe(true);
    });
  }

  it('generates after embeddings as after the tokens, and reuses a prefix only when the values match', async () => {
    const opts = { maxTokens: 6, stopTokens: [], temperature: 0 };
    const plain = await collect(m.generate(tokens, opts));
    const image = rowsOf(tokens.slice(3, 7));
    const prompt = [...tokens.slice(0, 3), image, ...tokens.slice(7)];
    expect(await collect(m.generate(prompt, opts))).toEqual(plain);
    // changed in place: the cache holds the old values, which must not be reused
    for (let i = 0; i < image.length; i++) image[i] = table[(tokens[0] * E + i) % table.length];
    const changed = await collect(m.generate(prompt, opts));
    const fresh = await LanguageModel.load(join(fixtures, 'base.f32.gguf'), { kvType: 'f32', threads: 2 });
    try {
      expect(changed).toEqual(await collect(fresh.generate(prompt, opts)));
    } finally {
      fresh.dispose();
    }
    expect(changed).not.toEqual(plain); // the change matters for this prompt
  });

  it('refuses embeddings of the wrong size or with non-finite values, naming the index', async () => {
    await expect(m.evaluate([1, new Float32Array(E + 1)])).rejects.toThrow(`embeddings at index 1 hold ${E + 1} floats, not a whole number of rows of ${E}`);
    const nan = new Float32Array(E);
    nan[3] = Number.NaN;
    await expect(m.evaluate([nan, 2])).rejects.toThrow('embeddings at index 0 have a non-finite value at 3');
  });
});
