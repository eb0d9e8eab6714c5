/**
 * Image tokens (docs/model.md "Tokens"): HealthGPT appends `<start_index>`,
 * `<idx_0>` .. `<idx_{K-1}>` (one per VQGAN codebook entry), `<end_index>` and
 * `<pixel_newline>` to the vocabulary. Generation puts `<start_index>` at the end of the prompt
 * and the model must answer with exactly one `<idx_k>` per latent position (1024 for a 32 x 32
 * latent), then `<end_index>`. That is enforced while sampling, by a logit mask, never by a
 * regex over decoded text afterwards (the released code's way, which silently accepts a wrong
 * count).
 */
import { HealthGPTError } from '../errors.js';
import type { LogitMask } from '../model/sampler.js';

export interface ImageTokenIds {
  start: number;
  end: number;
  /** id of `<idx_0>`; `<idx_k>` is firstIndex + k */
  firstIndex: number;
  /** K: how many `<idx_k>` tokens the vocabulary holds (the codebook size) */
  codebookSize: number;
  pixelNewline: number | undefined;
}

/** Latent positions of a 256 x 256 image in the f8 VQGAN: 32 x 32. */
export const IMAGE_TOKEN_COUNT = 1024;

/**
 * Finds the image tokens by their text. The `<idx_k>` ids must be consecutive (they are in
 * every HealthGPT vocabulary: added in one call), so a mask is a range, not a set.
 */
export function findImageTokens(tokenToId: ReadonlyMap<string, number>): ImageTokenIds {
  const need = (text: string): number => {
    const id = tokenToId.get(text);
    if (id === undefined) throw new HealthGPTError('ERR_VOCAB', `the vocabulary has no ${text} token: this model cannot generate images (is it a HealthGPT file?)`);
    return id;
  };
  const start = need('<start_index>');
  const end = need('<end_index>');
  const firstIndex = need('<idx_0>');
  let codebookSize = 1;
  for (;;) {
    const id = tokenToId.get(`<idx_${codebookSize}>`);
    if (id === undefined) break;
    if (id !== firstIndex + codebookSize) throw new HealthGPTError('ERR_VOCAB', `<idx_${codebookSize}> has id ${id}, expected ${firstIndex + codebookSize}: the image tokens are not consecutive`);
    codebookSize++;
  }
  return { start, end, firstIndex, codebookSize, pixelNewline: tokenToId.get('<pixel_newline>') };
}

/**
 * The logit mask for an image answer that starts at `startPosition` (the prompt's length,
 * `<start_index>` included): the first `count` tokens may only be `<idx_k>`, the next only
 * `<end_index>`. `position` is the sampler's: the history length when the token is drawn.
 */
export function imageTokenMask(ids: ImageTokenIds, startPosition: number, count = IMAGE_TOKEN_COUNT): LogitMask {
  if (!Number.isInteger(count) || count < 1) throw new HealthGPTError('ERR_INVALID_ARG', `count must be a positive integer, got ${String(count)}`);
  const lo = ids.firstIndex;
  const hi = ids.firstIndex + ids.codebookSize;
  const at = (position: number): number => {
    const k = position - startPosition;
    if (k < 0 || k > count) throw new HealthGPTError('ERR_SAMPLING', `image token ${k} is outside 0..${count}`);
    return k;
  };
  const mask = (logits: Float32Array, position: number): void => {
    const k = at(position);
    if (k < count) {
      logits.fill(-Infinity, 0, lo);
      logits.fill(-Infinity, hi);
    } else {
      const keep = logits[ids.end];
      logits.fill(-Infinity);
      // the end is forced, whatever the model thinks of it
      logits[ids.end] = Number.isFinite(keep) ? keep : 0;
    }
  };
  // the same choice as a range, for greedy decoding's pick in the engine
  return Object.assign(mask, { range: (position: number): readonly [number, number] => (at(position) < count ? [lo, hi] : [ids.end, ids.end + 1]) });
}

/**
 * Codebook indices from generated tokens: exactly `count` `<idx_k>` tokens, optionally followed
 * by `<end_index>`. Anything else is an error naming the first offending position.
 */
export function imageIndices(tokens: readonly number[], ids: ImageTokenIds, count = IMAGE_TOKEN_COUNT): Int32Array {
  const n = tokens.length > 0 && tokens[tokens.length - 1] === ids.end ? tokens.length - 1 : tokens.length;
  if (n !== count) throw new HealthGPTError('ERR_IMAGE_TOKENS', `expected ${count} image tokens, got ${n}`);
  const out = new Int32Array(count);
  for (let i = 0; i < count; i++) {
    const k = tokens[i] - ids.firstIndex;
    if (!Number.isInteger(k) || k < 0 || k >= ids.codebookSize) throw new HealthGPTError('ERR_IMAGE_TOKENS', `token ${i} (id ${tokens[i]}) is not an <idx_k> token`);
    out[i] = k;
  }
  return out;
}
