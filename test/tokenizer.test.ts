// Tokenizer unit tests on tiny hand-made vocabularies (no reference packages needed): the
// SentencePiece merge order, byte fallback, special-token splitting and the space prefix, BPE
// merges and pre-tokenizers, detokenization and streaming, GGUF vocab helpers, errors.
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, test } from 'vitest';
import { HealthGPTError } from '../lib/errors.js';
import { GGUFFile } from '../lib/gguf/file.js';
import { GGUFWriter } from '../lib/gguf/writer.js';
import {
  SUPPORTED_PRE_TOKENIZERS,
  Tokenizer,
  TokenType,
  addBpeVocab,
  addSpmVocab,
  bpeVocabFromHfTokenizerJson,
  bpeVocabFromRanks,
  preTokenize,
  spmVocabFromHfTokenizerJson,
} from '../lib/tokenizer/index.js';
import { bytesToByteLevel } from '../lib/tokenizer/unicode.js';
import { tempDir } from './helpers.js';

const dir = tempDir('healthgpt-tokenizer-');
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const T = TokenType;
const hex = (b: number): string => `<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`;

// A tiny SentencePiece vocabulary: ids 0..2 specials, 3..258 bytes, then pieces.
const SPM_PIECES: [string, number, number][] = [
  ['<unk>', 0, T.UNKNOWN],
  ['<s>', 0, T.CONTROL],
  ['</s>', 0, T.CONTROL],
  ...Array.from({ length: 256 }, (_, b): [string, number, number] => [hex(b), 0, T.BYTE]),
  ['▁', -100, T.NORMAL], // 259
  ['a', -100, T.NORMAL], // 260
  ['b', -100, T.NORMAL], // 261
  ['c', -100, T.NORMAL], // 262
  ['▁a', -1, T.NORMAL], // 263
  ['ab', -2, T.NORMAL], // 264
  ['bc', -2, T.NORMAL], // 265
  ['▁ab', -3, T.NORMAL], // 266
  ['h', -100, T.NORMAL], // 267
  ['i', -100, T.NORMAL], // 268
  ['hi', -1, T.NORMAL], // 269
  ['▁hi', -1, T.NORMAL], // 270
  ['<|user|>', 0, T.CONTROL], // 271
  ['<|end|>', 0, T.CONTROL], // 272
  ['xy', 0, T.USER_DEFINED], // 273
  ['yzw', 0, T.USER_DEFINED], // 274
  ['x', -100, T.NORMAL], // 275
  ['y', -100, T.NORMAL], // 276
  ['z', -100, T.NORMAL], // 277
  ['w', -100, T.NORMAL], // 278
  ['é', -100, T.NORMAL], // 279
  ['[PAD280]', 0, T.UNUSED], // 280
];

function spmMeta(over: Record<string, unknown> = {}, pieces = SPM_PIECES): Record<string, unknown> {
  return {
    'tokenizer.ggml.model': 'llama',
    'tokenizer.ggml.tokens': pieces.map((p) => p[0]),
    'tokenizer.ggml.scores': pieces.map((p) => p[1]),
    'tokenizer.ggml.token_type': pieces.map((p) => p[2]),
    'tokenizer.ggml.bos_token_id': 1,
    'tokenizer.ggml.eos_token_id': 2,
    'tokenizer.ggml.unknown_token_id': 0,
    ...over,
  };
}

const spm = (over: Record<string, unknown> = {}, options = {}): Tokenizer => Tokenizer.fromMetadata(spmMeta(over), options);

describe('SentencePiece (llama) encoding', () => {
  test('highest score merges first, ties go to the leftmost pair', () => {
    const noPrefix = spm({ 'tokenizer.ggml.add_space_prefix': false });
    expect(noPrefix.encode('abc', { addSpecial: false })).toEqual([264, 262]); // ab(-2) = bc(-2): leftmost
    const bcFirst = Tokenizer.fromMetadata(
      spmMeta(
        { 'tokenizer.ggml.add_space_prefix': false },
        SPM_PIECES.map((p) => (p[0] === 'bc' ? [p[0], -1.5, p[2]] : p)),
      ),
    );
    expect(bcFirst.encode('abc', { addSpecial: false })).toEqual([260, 265]);
    // "▁abc": ▁a (-1) first, then bc (-2) beats ▁ab (-3)
    expect(spm().encode('abc', { addSpecial: false })).toEqual([263, 265]);
    expect(spm().encode('ab', { addSpecial: false })).toEqual([266]);
    expect(spm().encode('hi hi', { addSpecial: false })).toEqual([270, 270]);
  });

  test('space prefix, BOS and EOS follow the vocabulary flags', () => {
    expect(spm().encode('hi')).toEqual([1, 270]);
    expect(spm({ 'tokenizer.ggml.add_bos_token': false }).encode('hi')).toEqual([270]);
    expect(spm({ 'tokenizer.ggml.add_eos_token': true }).encode('hi')).toEqual([1, 270, 2]);
    expect(spm({ 'tokenizer.ggml.add_space_prefix': false }).encode('hi', { addSpecial: false })).toEqual([269]);
    expect(spm().encode('')).toEqual([1]);
    expect(spm().encode('', { addSpecial: false })).toEqual([]);
  });

  test('characters missing from the vocabulary fall back to <0xXX> byte tokens', () => {
    expect(spm().encode('é', { addSpecial: false })).toEqual([259, 279]);
    expect(spm().encode('ç', { addSpecial: false })).toEqual([259, 3 + 0xc3, 3 + 0xa7]);
    expect(spm().encode('😊', { addSpecial: false })).toEqual([259, 3 + 0xf0, 3 + 0x9f, 3 + 0x98, 3 + 0x8a]);
    // a lone surrogate is encoded as U+FFFD, as UTF-8 conversion does
    expect(spm().encode('\ud83d', { addSpecial: false })).toEqual([259, 3 + 0xef, 3 + 0xbf, 3 + 0xbd]);
  });

  test('control tokens are text unless special; user-defined tokens always split, longest first', () => {
    const t = spm();
    expect(t.encode('<|user|>hi', { addSpecial: false, special: true })).toEqual([271, 270]);
    expect(t.encode('<|user|>hi', { addSpecial: false })).not.toContain(271);
    // llama.cpp tries "yzw" (longer) before "xy": "x" + <yzw>, not <xy> + "zw"
    expect(t.encode('xyzw', { addSpecial: false })).toEqual([259, 275, 274]);
    expect(t.encode('xy', { addSpecial: false })).toEqual([273]);
    // every fragment after a special token gets the '▁' prefix (llama.cpp is_prev_special)
    expect(t.encode('hi<|end|>hi<|end|>', { special: true })).toEqual([1, 270, 272, 270, 272]);
  });

  test("HF slow (legacy=false) style: '▁' only before the whole text", () => {
    const t = spm();
    const o = { addSpecial: false, special: true, prefixStyle: 'hf-slow' } as const;
    expect(t.encode('hi<|end|>hi', o)).toEqual([270, 272, 269]);
    // text starting with a special token: the lone '▁' stays unless the token is in all_special_tokens
    expect(t.encode('<|user|>hi', o)).toEqual([259, 271, 269]);
    expect(t.encode('<|user|>hi', { ...o, hfAllSpecialIds: [271] })).toEqual([271, 269]);
    expect(t.encode('<s>hi', o)).toEqual([1, 269]);
    expect(t.encode('▁hi', o)).toEqual([259, 270]); // literal '▁' read as a space
    expect(t.encode('', o)).toEqual([]);
  });

  test('RSTRIP (llama.cpp Phi-3 rule) drops whitespace after special tokens', () => {
    const text = '<|user|>\n  hi';
    expect(spm().encode(text, { addSpecial: false, special: true })).toEqual([271, 259, 3 + 0x0a, 259, 270]);
    const phi3 = spm({ 'general.name': 'Phi3' });
    expect(phi3.encode(text, { addSpecial: false, special: true })).toEqual([271, 270]);
    expect(spm({}, { phi3Rstrip: true }).encode(text, { addSpecial: false, special: true })).toEqual([271, 270]);
    expect(phi3.encode(text, { addSpecial: false, special: true, prefixStyle: 'hf-slow' })).toEqual([259, 271, 269]);
    // <s> keeps its whitespace under the Phi-3 rule
    expect(phi3.encode('<s> hi', { addSpecial: false, special: true })).toEqual([1, 259, 270]);
  });
});

describe('detokenization', () => {
  test("'▁' becomes a space and the first piece loses one leading space", () => {
    const t = spm();
    expect(t.decode([270, 270])).toBe('hi hi');
    expect(t.decode([270], { stripLeadingSpace: false })).toBe(' hi');
    expect(t.decode(t.encode('  hi', { addSpecial: false }))).toBe('  hi');
  });

  test('BOS/EOS and special tokens as llama.cpp renders them', () => {
    const t = spm();
    // the BOS consumes the leading-space strip (empty piece); remove_special drops BOS but keeps the space too
    expect(t.decode([1, 270])).toBe(' hi');
    expect(t.decode([1, 270], { removeSpecial: true })).toBe(' hi');
    expect(t.decode([1, 270], { special: true })).toBe('<s> hi');
    expect(t.decode([271, 270])).toBe(' hi');
    expect(t.decode([271, 270], { special: true })).toBe('<|user|> hi');
    expect(t.decode([273])).toBe('xy'); // user-defined: always text
    expect(t.decode([280])).toBe(''); // unused
    expect(t.decode([3 + 0xc3, 3 + 0xa7])).toBe('ç');
    expect(t.decode([3 + 0xc3])).toBe('\ufffd');
    expect(() => t.decode([281])).toThrow(HealthGPTError);
    expect(t.isEog(2)).toBe(true);
  });

  test('the streaming decoder holds back incomplete characters', () => {
    const t = spm();
    const ids = [...Buffer.from('ç😊a', 'utf8')].map((b) => 3 + b);
    const d = t.streamDecoder();
    expect(ids.map((id) => d.push(id))).toEqual(['', 'ç', '', '', '', '😊', 'a']);
    expect(d.flush()).toBe('');
    // an unfinished character is U+FFFD only at the end; a byte that cannot start one at once
    expect(d.push(3 + 0xe2)).toBe('');
    expect(d.flush()).toBe('\ufffd');
    expect(d.push(3 + 0x80) + d.push(3 + 0x41)).toBe('\ufffdA');
    const s = t.streamDecoder({ stripLeadingSpace: true });
    expect(s.pushAll([270, 270])).toBe('hi hi');
    expect(t.streamDecoder().pushAll([270, 271, 270])).toBe(' hi hi');
    expect(t.streamDecoder({ special: true }).pushAll([271])).toBe('<|user|>');
  });

  test('every split of multi-byte characters streams without U+FFFD', () => {
    const t = spm();
    const text = 'é😊👨‍👩‍👧 漢字 ﬁ 𠮷 ∑ x';
    const bytes = [...Buffer.from(text, 'utf8')];
    const d = t.streamDecoder();
    let out = '';
    for (const b of bytes) {
      const piece = d.push(3 + b);
      expect(piece).not.toContain('\ufffd');
      out += piece;
    }
    expect(out + d.flush()).toBe(text);
  });
});

// A tiny byte-level BPE vocabulary: the 256 byte characters, then merge results.
function bpeMeta(pre: string, over: Record<string, unknown> = {}): Record<string, unknown> {
  const tokens: string[] = [];
  for (let b = 0; b < 256; b++) tokens.push(byteLevel(b));
  const merges = ['h e', 'l l', 'he ll', 'hell o', 'Ġ hello', '1 2', '12 3'];
  for (const m of merges) tokens.push(m.replace(' ', ''));
  tokens.push('Ġzz', '<|im_start|>', '<|endoftext|>');
  return {
    'tokenizer.ggml.model': 'gpt2',
    'tokenizer.ggml.pre': pre,
    'tokenizer.ggml.tokens': tokens,
    'tokenizer.ggml.token_type': tokens.map((t) => (t.startsWith('<|') ? T.CONTROL : T.NORMAL)),
    'tokenizer.ggml.merges': merges,
    'tokenizer.ggml.bos_token_id': tokens.indexOf('<|endoftext|>'),
    'tokenizer.ggml.eos_token_id': tokens.indexOf('<|endoftext|>'),
    ...over,
  };
}

const byteLevel = (b: number): string => bytesToByteLevel(Uint8Array.of(b));

describe('byte-level BPE (gpt2) encoding', () => {
  test('merges apply by rank; unmerged bytes stay byte tokens', () => {
    const t = Tokenizer.fromMetadata(bpeMeta('dbrx'));
    const id = (s: string): number => t.tokenId(s)!;
    expect(t.encode('hello hello')).toEqual([id('hello'), id('Ġhello')]);
    expect(t.encode('12345')).toEqual([id('123'), id('4'), id('5')]);
    expect(t.encode('hé')).toEqual([id('h'), id('Ã'), id('©')]);
    expect(t.decode(t.encode('hello hé 12345\n'))).toBe('hello hé 12345\n');
    expect(t.encode('<|im_start|>hello', { special: true })).toEqual([id('<|im_start|>'), id('hello')]);
    expect(t.encode('<|im_start|>')).not.toContain(id('<|im_start|>'));
  });

  test('ignore_merges (llama-bpe family) takes whole-word tokens directly', () => {
    const word = ' zz';
    const dbrx = Tokenizer.fromMetadata(bpeMeta('dbrx'));
    expect(dbrx.encode(word)).toEqual([dbrx.tokenId('Ġ'), dbrx.tokenId('z'), dbrx.tokenId('z')]);
    const llama3 = Tokenizer.fromMetadata(bpeMeta('llama-bpe'));
    expect(llama3.addBos).toBe(true);
    expect(llama3.encode(word, { addSpecial: false })).toEqual([llama3.tokenId('Ġzz')]);
  });

  test('clean_up_tokenization_spaces follows the pre-tokenizer default', () => {
    const dbrx = Tokenizer.fromMetadata(bpeMeta('dbrx'));
    const ids = dbrx.encode("a , b ! c ' d it 's");
    expect(dbrx.decode(ids)).toBe("a, b! c'd it's");
    expect(dbrx.decode(ids, { cleanSpaces: false })).toBe("a , b ! c ' d it 's");
    expect(Tokenizer.fromMetadata(bpeMeta('gpt-4o')).decode(ids)).toBe("a , b ! c ' d it 's");
  });

  test('pre-tokenizers split like llama.cpp', () => {
    const cl100k = preTokenize("I'm 12345 don'T\n\n  x?!\n", preTokenizerRegexes('dbrx'), false);
    expect(cl100k).toEqual(['I', "'m", ' ', '123', '45', ' don', "'T", '\n\n', ' ', ' x', '?!\n']);
    const gpt2 = preTokenize("I'm 12345 don'T\n\n  x?!", preTokenizerRegexes('gpt-2'), false);
    expect(gpt2).toEqual(['I', "'m", ' 12345', ' don', "'", 'T', '\n\n ', ' x', '?!']);
    const o200k = preTokenize('HelloWorld CamelCase 1234', preTokenizerRegexes('gpt-4o'), false);
    expect(o200k).toEqual(['Hello', 'World', ' Camel', 'Case', ' ', '123', '4']);
    const def = preTokenize('a+b=12345!', preTokenizerRegexes('default'), false);
    expect(def).toEqual(['a', '+', 'b', '=', '123', '45', '!']);
    expect(SUPPORTED_PRE_TOKENIZERS).toContain('dbrx');
    // HF's slow GPT2Tokenizer always splits with the GPT-2 expression: Phi-4 with preRegexesOf 'gpt-2'
    const slow = Tokenizer.fromMetadata(bpeMeta('dbrx'), { preRegexesOf: 'gpt-2' });
    expect(slow.vocab.pre!.regexes).toEqual(preTokenizerRegexes('gpt-2'));
    expect(slow.vocab.pre!.name).toBe('dbrx');
  });
});

function preTokenizerRegexes(name: string): readonly string[] {
  return Tokenizer.fromMetadata(bpeMeta(name)).vocab.pre!.regexes;
}

describe('errors', () => {
  const code = (fn: () => unknown): string | undefined => {
    try {
      fn();
    } catch (err) {
      expect(err).toBeInstanceOf(HealthGPTError);
      return (err as HealthGPTError).code;
    }
    return undefined;
  };
  test('missing or unsupported models and malformed vocabularies are ERR_TOKENIZER', () => {
    const { 'tokenizer.ggml.model': _m, ...noModel } = spmMeta();
    void _m;
    expect(code(() => Tokenizer.fromMetadata(noModel))).toBe('ERR_TOKENIZER');
    expect(code(() => spm({ 'tokenizer.ggml.model': 'bert' }))).toBe('ERR_TOKENIZER');
    expect(code(() => spm({ 'tokenizer.ggml.tokens': undefined }))).toBe('ERR_TOKENIZER');
    expect(code(() => spm({ 'tokenizer.ggml.tokens': ['a', 'b', 'a'] }))).toBe('ERR_TOKENIZER');
    expect(code(() => spm({ 'tokenizer.ggml.scores': [0, 1] }))).toBe('ERR_TOKENIZER');
    expect(code(() => spm({ 'tokenizer.ggml.token_type': SPM_PIECES.map(() => 'x') }))).toBe('ERR_TOKENIZER');
    expect(code(() => spm({ 'tokenizer.ggml.bos_token_id': 99999 }))).toBe(undefined); // ignored, default kept
    expect(
      code(() => spm({ 'tokenizer.ggml.bos_token_id': 99999, 'tokenizer.ggml.tokens': SPM_PIECES.map((p) => p[0]).slice(0, 1), 'tokenizer.ggml.scores': [0], 'tokenizer.ggml.token_type': [1] })),
    ).toBe('ERR_TOKENIZER');
    expect(code(() => Tokenizer.fromMetadata(bpeMeta('dbrx', { 'tokenizer.ggml.merges': undefined })))).toBe('ERR_TOKENIZER');
    expect(code(() => Tokenizer.fromMetadata(bpeMeta('no-such-pre')))).toBe('ERR_TOKENIZER');
    expect(code(() => Tokenizer.fromGGUF({} as never))).toBe('ERR_TOKENIZER');
    // a character without a byte token in a vocabulary lacking <0xXX> pieces
    const noBytes = SPM_PIECES.filter((p) => p[2] !== T.BYTE);
    const t = Tokenizer.fromMetadata(spmMeta({ 'tokenizer.ggml.add_bos_token': false }, noBytes));
    expect(code(() => t.encode('ç'))).toBe('ERR_TOKENIZER');
    expect(code(() => addSpmVocab(new GGUFWriter(), { pieces: ['a', 'b'], scores: [0], types: [1, 1] }))).toBe('ERR_TOKENIZER');
    expect(code(() => addBpeVocab(new GGUFWriter(), { tokens: ['a', 'a'], merges: ['a a'], pre: 'dbrx' }))).toBe('ERR_TOKENIZER');
  });
});

describe('GGUF vocabulary helpers', () => {
  test('a SentencePiece vocabulary survives GGUFWriter and GGUFFile', async () => {
    const w = new GGUFWriter();
    w.addKV('general.architecture', 'phi3');
    addSpmVocab(w, {
      pieces: SPM_PIECES.map((p) => p[0]),
      scores: SPM_PIECES.map((p) => p[1]),
      types: SPM_PIECES.map((p) => p[2]),
      bosId: 1,
      eosId: 2,
      unknownId: 0,
      addBos: true,
      addEos: false,
    });
    const path = join(dir, 'spm.gguf');
    await w.write(path);
    const f = GGUFFile.open(path);
    try {
      expect(f.info.types['tokenizer.ggml.scores']).toEqual({ type: 'array', itemType: 'f32' });
      expect(f.info.types['tokenizer.ggml.token_type']).toEqual({ type: 'array', itemType: 'i32' });
      expect(f.info.types['tokenizer.ggml.bos_token_id']).toEqual({ type: 'u32' });
      const t = Tokenizer.fromGGUF(f.info);
      expect(t.model).toBe('llama');
      expect(t.encode('hi hi ç')).toEqual(spm().encode('hi hi ç'));
    } finally {
      f.close();
    }
  });

  test('a BPE vocabulary survives GGUFWriter and GGUFFile', async () => {
    const md = bpeMeta('dbrx');
    const w = new GGUFWriter();
    addBpeVocab(w, {
      tokens: md['tokenizer.ggml.tokens'] as string[],
      types: md['tokenizer.ggml.token_type'] as number[],
      merges: md['tokenizer.ggml.merges'] as string[],
      pre: 'dbrx',
      bosId: md['tokenizer.ggml.bos_token_id'] as number,
      eosId: md['tokenizer.ggml.eos_token_id'] as number,
    });
    const path = join(dir, 'bpe.gguf');
    await w.write(path);
    const f = GGUFFile.open(path);
    try {
      const t = Tokenizer.fromGGUF(f.info);
      expect(t.model).toBe('gpt2');
      expect(t.encode('hello hello 12345')).toEqual(Tokenizer.fromMetadata(md).encode('hello hello 12345'));
    } finally {
      f.close();
    }
  });

  test('tokenizer.json builders and tiktoken ranks', () => {
    const json = {
      added_tokens: [{ id: 5, content: '<s>', special: true }],
      model: { type: 'BPE', unk_token: '<unk>', vocab: { '<unk>': 0, a: 1, b: 2, ab: 3, '<0x41>': 4 }, merges: ['a b'] },
    };
    const v = spmVocabFromHfTokenizerJson(json);
    expect(v.pieces).toEqual(['<unk>', 'a', 'b', 'ab', '<0x41>', '<s>']);
    expect(v.types).toEqual([T.UNKNOWN, T.NORMAL, T.NORMAL, T.NORMAL, T.BYTE, T.CONTROL]);
    expect(v.scores[3]).toBe(-0);
    const b = bpeVocabFromHfTokenizerJson({ model: { vocab: { a: 0, b: 1, ab: 2 }, merges: [['a', 'b']] } }, 'gpt-2');
    expect(b.merges).toEqual(['a b']);
    // ranks: bytes a, b, c, then "ab" (3), "abc" (4) -> merges "a b", "ab c"
    const r = bpeVocabFromRanks(
      ['a', 'b', 'c', 'ab', 'abc'].map((s) => Uint8Array.from(Buffer.from(s))),
      { pre: 'dbrx', specialTokens: { '<|end|>': 6 } },
    );
    expect(r.merges).toEqual(['a b', 'ab c']);
    expect(r.tokens).toEqual(['a', 'b', 'c', 'ab', 'abc', '[PAD5]', '<|end|>']);
    expect(r.types).toEqual([T.NORMAL, T.NORMAL, T.NORMAL, T.NORMAL, T.NORMAL, T.UNUSED, T.CONTROL]);
  });
});
