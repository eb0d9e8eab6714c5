// The chat templates render exactly docs/model.md's prompts.
import { describe, expect, it } from 'vitest';
import { PHI3_INSTRUCT, PHI4_INSTRUCT, renderChat } from '../lib/prompt/template.js';

describe('chat templates', () => {
  it("phi3_instruct, one turn: docs/model.md's prompt to the byte", () => {
    expect(renderChat(PHI3_INSTRUCT, [{ role: 'user', content: '<image>\nWhat is shown?' }])).toBe(
      '<|system|>\nYou are a helpful AI assistant.<|end|>\n<|user|>\n<image>\nWhat is shown?<|end|>\n<|assistant|>\n',
    );
  });

  it('phi3_instruct, several turns', () => {
    expect(
      renderChat(PHI3_INSTRUCT, [
        { role: 'user', content: 'A?' },
        { role: 'assistant', content: 'B.' },
        { role: 'user', content: 'C?' },
      ]),
    ).toBe('<|system|>\nYou are a helpful AI assistant.<|end|>\n<|user|>\nA?<|end|>\n<|assistant|>\nB.<|end|>\n<|user|>\nC?<|end|>\n<|assistant|>\n');
  });

  it('phi4_instruct keeps the released system text unless replaced', () => {
    expect(renderChat(PHI4_INSTRUCT, [{ role: 'user', content: 'Hi' }])).toBe(
      '<|im_start|>system<|im_sep|>\nYou are a medieval knight and must provide explanations to modern people.<|im_end|>\n<|im_start|>user<|im_sep|>\nHi<|im_end|>\n<|im_start|>assistant<|im_sep|>\n',
    );
    expect(renderChat(PHI4_INSTRUCT, [{ role: 'user', content: 'Hi' }], '<|im_start|>system<|im_sep|>\nBe brief.')).toMatch(/^<\|im_start\|>system<\|im_sep\|>\nBe brief\.<\|im_end\|>/);
  });

  it('refuses malformed conversations, naming the field', () => {
    expect(() => renderChat(PHI3_INSTRUCT, [])).toThrow(/non-empty/);
    expect(() => renderChat(PHI3_INSTRUCT, [{ role: 'system' as 'user', content: 'x' }])).toThrow(/messages\[0\]\.role/);
    expect(() =>
      renderChat(PHI3_INSTRUCT, [
        { role: 'user', content: 'x' },
        { role: 'assistant', content: 'y' },
      ]),
    ).toThrow(/last message/);
  });
});
