/**
 * A small SentencePiece vocabulary in Phi-3's shape for random-weight models: <unk> <s> </s>,
 * the 256 byte-fallback tokens (so any text encodes), Phi-3's chat control tokens with their
 * ids' relative order, and a few hundred English and medical word pieces so text does not
 * all fall back to bytes. Not Phi-3's real vocabulary: that comes with real weights.
 */
import { TokenType } from '../tokenizer/types.js';
import type { SpmVocab } from '../tokenizer/vocab-gguf.js';

const WORDS = (
  'the of and to in is a that for it as was with on be by this are or at from an which not have has but were ' +
  'patient image scan chest lung heart brain liver kidney bone left right normal abnormal lesion mass nodule ' +
  'fracture opacity effusion pneumonia tumor contrast axial sagittal coronal slice ct mri x ray pet ultrasound ' +
  'shown shows seen there no yes what where which how is are does do finding findings organ tissue region ' +
  'size large small mild severe acute chronic upper lower lobe view question answer diagnosis report'
).split(' ');

const CHAT_TOKENS = ['<|endoftext|>', '<|assistant|>', '<|system|>', '<|end|>', '<|user|>'];

/** HealthGPT-M3's vocabulary size: Phi-3's 32011 tokens and HealthGPT's 8195 image tokens. */
export const HEALTHGPT_VOCAB_SIZE = 40206;

/**
 * Phi-3's added tokens at their ids (docs/model.md: 32000 <|endoftext|> .. 32010 <|user|>, the
 * unnamed ones as <|placeholderN|>), then HealthGPT's image tokens: 32011 <start_index>,
 * 32012 .. 40203 <idx_0> .. <idx_8191>, 40204 <end_index>, 40205 <pixel_newline>.
 */
function healthgptAddedTokens(): Array<[string, number]> {
  const out: Array<[string, number]> = [
    ['<|endoftext|>', TokenType.CONTROL],
    ['<|assistant|>', TokenType.CONTROL],
    ['<|placeholder1|>', TokenType.CONTROL],
    ['<|placeholder2|>', TokenType.CONTROL],
    ['<|placeholder3|>', TokenType.CONTROL],
    ['<|placeholder4|>', TokenType.CONTROL],
    ['<|system|>', TokenType.CONTROL],
    ['<|end|>', TokenType.CONTROL],
    ['<|placeholder5|>', TokenType.CONTROL],
    ['<|placeholder6|>', TokenType.CONTROL],
    ['<|user|>', TokenType.CONTROL],
    ['<start_index>', TokenType.USER_DEFINED],
  ];
  for (let k = 0; k < 8192; k++) out.push([`<idx_${k}>`, TokenType.USER_DEFINED]);
  out.push(['<end_index>', TokenType.USER_DEFINED], ['<pixel_newline>', TokenType.USER_DEFINED]);
  return out;
}

/**
 * A vocabulary of `size` tokens. At HealthGPT's size (40206, PHI3_MINI's) the chat and image
 * tokens sit at HealthGPT's ids (healthgptAddedTokens), so image generation runs on it; smaller
 * vocabularies end with the chat tokens alone.
 */
export function syntheticSpmVocab(size: number): SpmVocab {
  const pieces: string[] = ['<unk>', '<s>', '</s>'];
  const types: number[] = [TokenType.UNKNOWN, TokenType.CONTROL, TokenType.CONTROL];
  for (let b = 0; b < 256; b++) {
    pieces.push(`<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`);
    types.push(TokenType.BYTE);
  }
  const words = new Set<string>(['▁']);
  for (const c of 'abcdefghijklmnopqrstuvwxyz0123456789.,?!:;-()') words.add(c);
  for (const w of WORDS) for (let i = 1; i <= w.length; i++) words.add(`▁${w.slice(0, i)}`); // SPM merges build a word through its prefixes
  const normal = [...words];
  const added: Array<[string, number]> = size === HEALTHGPT_VOCAB_SIZE ? healthgptAddedTokens() : CHAT_TOKENS.map((t) => [t, TokenType.CONTROL]);
  const room = size - pieces.length - added.length;
  if (room < normal.length) throw new Error(`a synthetic vocabulary needs at least ${pieces.length + added.length + normal.length} tokens`);
  normal.forEach((p, _i) => {
    pieces.push(p);
    types.push(TokenType.NORMAL);
  });
  for (let i = 0; pieces.length < size - added.length; i++) {
    pieces.push(`▁w${i}`); // filler up to the model's vocabulary size
    types.push(TokenType.NORMAL);
  }
  for (const [t, type] of added) {
    pieces.push(t);
    types.push(type);
  }
  // longer pieces score higher, so merges prefer whole words
  const scores = pieces.map((p, i) => (types[i] === TokenType.NORMAL ? p.length - i / size : 0));
  const id = (t: string) => pieces.indexOf(t);
  return { pieces, scores, types, bosId: 1, eosId: id('<|endoftext|>'), unknownId: 0, eotId: id('<|end|>'), addBos: false, addEos: false };
}
