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
  const room = size - pieces.length - CHAT_TOKENS.length;
  if (room < normal.length) throw new Error(`a synthetic vocabulary needs at least ${pieces.length + CHAT_TOKENS.length + normal.length} tokens`);
  normal.forEach((p, i) => {
    pieces.push(p);
    types.push(TokenType.NORMAL);
  });
  for (let i = 0; pieces.length < size - CHAT_TOKENS.length; i++) {
    pieces.push(`▁w${i}`); // filler up to the model's vocabulary size
    types.push(TokenType.NORMAL);
  }
  for (const t of CHAT_TOKENS) {
    pieces.push(t);
    types.push(TokenType.CONTROL);
  }
  // longer pieces score higher, so merges prefer whole words
  const scores = pieces.map((p, i) => (types[i] === TokenType.NORMAL ? p.length - i / size : 0));
  const id = (t: string) => pieces.indexOf(t);
  return { pieces, scores, types, bosId: 1, eosId: id('<|endoftext|>'), unknownId: 0, eotId: id('<|end|>'), addBos: false, addEos: false };
}
