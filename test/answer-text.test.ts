// The answer's text as HealthGPT decodes it (lib/session/answer-text.ts): against transformers
// 4.41's slow LlamaTokenizer with HealthGPT's special tokens added
// (tools/reference/make_decode_reference.py -> test/fixtures/tokenizer/hf-decode.json).
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { convertLanguageModel } from '../lib/convert/llm.js';
import { LanguageModel } from '../lib/model/model.js';
import { AnswerText, answerText } from '../lib/session/answer-text.js';
import { root, tempDir } from './helpers.js';

interface Case {
  ids: number[];
  text?: string;
  printed?: string;
}
const ref = JSON.parse(readFileSync(join(root, 'test', 'fixtures', 'tokenizer', 'hf-decode.json'), 'utf8')) as {
  transformers: string;
  codebook_size: number;
  cases: Case[];
  end_cases: Case[];
  kept: Case[];
};

describe('answer text = tokenizer.decode(ids, skip_special_tokens=True)', () => {
  let model: LanguageModel;
  beforeAll(async () => {
    const out = join(tempDir(), 'model.gguf');
    // the tiny Phi-3 tokenizer with HealthGPT's tokens for a 2-entry codebook, as the reference adds them
    await convertLanguageModel(join(root, 'test', 'fixtures', 'convert', 'model'), out, { type: 'f32', threads: 1, healthgptTokens: true, codebookSize: ref.codebook_size });
    model = await LanguageModel.load(out, { threads: 1 });
    return () => model.dispose();
  });

  it('equals the reference on text, bytes, newlines, image tokens, <s> and <|endoftext|> inside, streamed or whole', () => {
    expect(ref.transformers).toBe('4.41.0');
    expect(model.tokenizer.vocab.tokens[411]).toBe('<start_index>');
    expect(ref.cases.length).toBeGreaterThan(8);
    for (const c of ref.cases) {
      expect(answerText(model.tokenizer, c.ids), JSON.stringify(c.ids)).toBe(c.text);
      const a = new AnswerText(model.tokenizer);
      expect(c.ids.map((id) => a.push(id)).join('') + a.flush()).toBe(c.text);
    }
    // the SentencePiece space is dropped once, at the first token that is text
    expect(ref.cases.filter((c) => c.text!.startsWith(' ')).length).toBe(1); // '  two spaces': two of three kept
    expect(ref.cases.some((c) => c.ids[0] === 1 && c.text === 'Normal')).toBe(true);
  });

  it('is what com_infer.py prints when the answer ends at <|end|> (decode(...)[:-8]; the engine stops before it)', () => {
    for (const c of ref.end_cases) expect(answerText(model.tokenizer, c.ids)).toBe(c.printed);
  });

  it("never prints Phi-3's other chat tokens, which that decode would keep between spaces", () => {
    const [c] = ref.kept;
    expect(c!.text).toBe('left <|user|> right');
    expect(answerText(model.tokenizer, c!.ids)).toBe('left right');
  });
});

describe('LanguageModel.generate onStop', () => {
  it('reports the stop token that ended a generation, which is not yielded', async () => {
    const m = await LanguageModel.load(join(root, 'test', 'fixtures', 'healthgpt', 'lm.gguf'), { threads: 1 });
    try {
      const prompt = m.tokenize('What is shown?');
      const free: number[] = [];
      for await (const t of m.generate(prompt, { maxTokens: 3, temperature: 0, stopTokens: [] })) free.push(t);
      expect(free.length).toBe(3);
      const got: number[] = [];
      let stopped: number | undefined;
      const gen = m.generate(prompt, { maxTokens: 3, temperature: 0, stopTokens: [free[2]!], onStop: (t) => (stopped = t) });
      let r = await gen.next();
      for (; !r.done; r = await gen.next()) got.push(r.value);
      expect([got, stopped, r.value]).toEqual([free.slice(0, 2), free[2], 'stop']);
    } finally {
      m.dispose();
    }
  });
});
