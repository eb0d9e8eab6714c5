/**
 * HealthGPT's chat templates (LLaVA conversation styles, docs/model.md "Prompts"):
 * `phi3_instruct` for HealthGPT-M3 and `phi4_instruct` for HealthGPT-L14. Both are
 * the MPT separator style: the system text and the separator, then for each turn
 * role + message + separator, and the open turn is just the assistant role.
 */
import { HealthGPTError } from '../errors.js';

export type Role = 'user' | 'assistant';

export interface ChatMessage {
  role: Role;
  content: string;
}

export interface ChatTemplate {
  name: 'phi3_instruct' | 'phi4_instruct';
  system: string;
  roles: Record<Role, string>;
  separator: string;
}
// Where a turn ends is the model's own: its generation config's end-of-sequence ids, recorded
// by the converter (LanguageModel.defaultStopTokens), not a list per template.

export const PHI3_INSTRUCT: ChatTemplate = {
  name: 'phi3_instruct',
  system: '<|system|>\nYou are a helpful AI assistant.',
  roles: { user: '\n<|user|>\n', assistant: '\n<|assistant|>\n' },
  separator: '<|end|>',
};

/** The released L14 code's system text, kept verbatim for fidelity (the caller may replace it). */
export const PHI4_INSTRUCT: ChatTemplate = {
  name: 'phi4_instruct',
  system: '<|im_start|>system<|im_sep|>\nYou are a medieval knight and must provide explanations to modern people.',
  roles: { user: '\n<|im_start|>user<|im_sep|>\n', assistant: '\n<|im_start|>assistant<|im_sep|>\n' },
  separator: '<|im_end|>',
};

export const TEMPLATES = { phi3_instruct: PHI3_INSTRUCT, phi4_instruct: PHI4_INSTRUCT } as const;

/** The prompt text for a conversation whose next turn is the assistant's. */
export function renderChat(template: ChatTemplate, messages: readonly ChatMessage[], system?: string): string {
  if (!Array.isArray(messages) || messages.length === 0) throw new HealthGPTError('ERR_INVALID_ARG', 'messages must be a non-empty array');
  let out = (system ?? template.system) + template.separator;
  messages.forEach((m, i) => {
    if (m.role !== 'user' && m.role !== 'assistant') throw new HealthGPTError('ERR_INVALID_ARG', `messages[${i}].role must be "user" or "assistant", got ${String(m.role)}`);
    if (typeof m.content !== 'string') throw new HealthGPTError('ERR_INVALID_ARG', `messages[${i}].content must be a string`);
    out += template.roles[m.role as Role] + m.content + template.separator;
  });
  if (messages[messages.length - 1].role !== 'user') throw new HealthGPTError('ERR_INVALID_ARG', "the last message must be the user's");
  return out + template.roles.assistant;
}

/** The template a model file calls for: phi4 vocabularies (gpt2 BPE) get phi4_instruct. */
export function templateFor(metadata: Record<string, unknown>): ChatTemplate {
  return metadata['tokenizer.ggml.model'] === 'gpt2' ? PHI4_INSTRUCT : PHI3_INSTRUCT;
}
