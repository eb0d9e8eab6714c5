import { describe, expect, it } from 'vitest';
import { tokenizeImagePrompt, countImages } from '../lib/prompt/multimodal.js';
import { PHI3_INSTRUCT, renderChat } from '../lib/prompt/template.js';
import { syntheticSpmVocab } from '../lib/synthetic/vocab.js';
import { Tokenizer } from '../lib/tokenizer/tokenizer.js';

function tokenizer(addBos: boolean): Tokenizer {
  const v = syntheticSpmVocab(1024);
  return Tokenizer.fromMetadata({
    'tokenizer.ggml.model': 'llama',
    'tokenizer.ggml.tokens': v.pieces,
    'tokenizer.ggml.scores': v.scores,
    'tokenizer.ggml.token_type': v.types,
    'tokenizer.ggml.bos_token_id': v.bosId,
    'tokenizer.ggml.eos_token_id': v.eosId,
    'tokenizer.ggml.unknown_token_id': v.unknownId,
    'tokenizer.ggml.add_bos_token': addBos,
  });
}

describe('prompts with <image>', () => {
  const prompt = renderChat(PHI3_INSTRUCT, [{ role: 'user', content: '<image>\nWhat is shown?' }]);

  for (const addBos of [false, true]) {
    it(`each chunk is tokenized on its own (add_bos ${addBos}); one BOS at most, at the start`, () => {
      const t = tokenizer(addBos);
      const pieces = tokenizeImagePrompt(t, prompt);
      expect(pieces.map((p) => p.kind)).toEqual(['tokens', 'image', 'tokens']);
      const [before, image, after] = pieces;
      const enc = (s: string) => t.encode(s, { special: true, prefixStyle: 'hf-slow' });
      const first = enc(prompt.split('<image>')[0]!);
      const second = enc(prompt.split('<image>')[1]!);
      expect(before).toEqual({ kind: 'tokens', tokens: first });
      expect(image).toEqual({ kind: 'image', index: 0 });
      expect(after).toEqual({ kind: 'tokens', tokens: addBos ? second.slice(1) : second });
      const all = pieces.flatMap((p) => (p.kind === 'tokens' ? p.tokens : []));
      expect(all.filter((x) => x === t.vocab.bosId).length).toBe(addBos ? 1 : 0);
      // the chunk after the image gets the SentencePiece '▁' prefix of a fresh text
      expect(after.kind === 'tokens' && t.vocab.tokens[after.tokens[0]!]!.startsWith('▁')).toBe(true);
    });
  }

  it('several images, adjacent images, an image at the very start and the end', () => {
    const t = tokenizer(true);
    expect(countImages('<image><image>x<image>')).toBe(3);
    const pieces = tokenizeImagePrompt(t, '<image><image>x<image>');
    expect(pieces.map((p) => (p.kind === 'image' ? `i${p.index}` : 't'))).toEqual(['t', 'i0', 'i1', 't', 'i2']);
    expect(pieces[0]).toEqual({ kind: 'tokens', tokens: [t.vocab.bosId] });
    const noBos = tokenizeImagePrompt(tokenizer(false), '<image>');
    expect(noBos).toEqual([{ kind: 'image', index: 0 }]);
  });

  it('a prompt without <image> is one token run', () => {
    const t = tokenizer(false);
    expect(tokenizeImagePrompt(t, 'hello')).toEqual([{ kind: 'tokens', tokens: t.encode('hello', { special: true, prefixStyle: 'hf-slow' }) }]);
    expect(() => tokenizeImagePrompt(t, 5 as never)).toThrow(/prompt must be a string/);
  });
});
