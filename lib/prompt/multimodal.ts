/**
 * Prompts with images (docs/model.md "Prompts", LLaVA's tokenizer_image_token):
 * the text is split on `<image>` and each chunk is tokenized on its own, so the SentencePiece
 * space rule applies at the start of every chunk; a BOS the tokenizer puts in front of a later
 * chunk is dropped (only the first chunk keeps it); each `<image>` becomes the projected image
 * vectors (576 for CLIP ViT-L/14-336), spliced in by the session as embeddings.
 */
import { HealthGPTError } from '../errors.js';
import type { Tokenizer } from '../tokenizer/tokenizer.js';
import type { EncodeOptions } from '../tokenizer/types.js';

export const IMAGE_PLACEHOLDER = '<image>';

export type PromptPiece = { kind: 'tokens'; tokens: number[] } | { kind: 'image'; index: number };

/**
 * Splits `prompt` into token runs and image slots (image k is the k-th `<image>`). Options
 * are the tokenizer's; `special` defaults to true (templates carry control tokens) and the
 * space rule to Hugging Face's slow tokenizer, which HealthGPT was trained with.
 */
export function tokenizeImagePrompt(tokenizer: Tokenizer, prompt: string, options: EncodeOptions = {}): PromptPiece[] {
  if (typeof prompt !== 'string') throw new HealthGPTError('ERR_INVALID_ARG', `prompt must be a string, got ${typeof prompt}`);
  const enc: EncodeOptions = { special: true, prefixStyle: 'hf-slow', ...options };
  const bos = tokenizer.vocab.bosId;
  const chunks = prompt.split(IMAGE_PLACEHOLDER).map((c) => tokenizer.encode(c, enc));
  // as LLaVA: when the first chunk starts with BOS, every chunk loses its leading BOS and one
  // BOS leads the whole prompt
  const leadingBos = bos !== null && chunks[0]!.length > 0 && chunks[0]![0] === bos;
  const pieces: PromptPiece[] = [];
  if (leadingBos) pieces.push({ kind: 'tokens', tokens: [bos] });
  chunks.forEach((tokens, i) => {
    if (i > 0) pieces.push({ kind: 'image', index: i - 1 });
    const body = leadingBos && tokens[0] === bos ? tokens.slice(1) : tokens;
    if (body.length === 0) return;
    const last = pieces[pieces.length - 1];
    // concat, not push(...body): a spread of a long prompt overflows the call stack
    if (last?.kind === 'tokens') last.tokens = last.tokens.concat(body);
    else pieces.push({ kind: 'tokens', tokens: body });
  });
  return pieces;
}

/** How many `<image>` slots a prompt has. */
export function countImages(prompt: string): number {
  return prompt.split(IMAGE_PLACEHOLDER).length - 1;
}
