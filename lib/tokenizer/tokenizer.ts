/**
 * The tokenizer facade: Tokenizer.fromGGUF(info) picks SentencePiece ("llama", Phi-3) or
 * byte-level BPE ("gpt2", Phi-4) from tokenizer.ggml.model and reproduces llama.cpp's
 * llama_tokenize()/llama_detokenize() ids and text.
 *
 * Special tokens and the SentencePiece space prefix (what llama.cpp does, and the option for
 * Hugging Face's slow tokenizer, which HealthGPT was trained with):
 *
 * - With `special: false` (default) control tokens in the text are plain text; user-defined
 *   tokens (type 4) are still split out, as llama.cpp and HF do.
 * - llama.cpp ('llama.cpp' prefix style, the default) tokenizes each text fragment between special
 *   tokens on its own and puts '▁' in front of the first fragment AND of every fragment that
 *   follows a special token ("<|user|>hi" -> <|user|> "▁hi"); a leading BOS does not count as a
 *   preceding special token for this, the start of text already does.
 * - HF slow LlamaTokenizer (legacy=false, Phi-3's config) puts '▁' only in front of the whole text:
 *   "hi<|end|>there" -> "▁hi" <|end|> "there", and "<|user|>hi" -> "▁" <|user|> "hi" (the lone
 *   "▁" is dropped only before a token in HF's all_special_tokens, e.g. <s>). Ask for it with
 *   prefixStyle: 'hf-slow' (details in SpacePrefixStyle).
 * - Whitespace right after a special token is dropped when the token has RSTRIP; llama.cpp sets
 *   RSTRIP on Phi-3's added tokens only when general.name contains "phi-3"/"phi3" (see
 *   TokenizerOptions.phi3Rstrip); HF's Phi-3 tokenizer_config has rstrip on them too.
 */
import { HealthGPTError } from '../errors.js';
import { BpeSession } from './bpe.js';
import { detokenize, detokenizeBytes, tokenPiece } from './detokenize.js';
import { isCSpace, isPythonSpace, partitionSpecial } from './partition.js';
import { spmTokenize } from './spm.js';
import { StreamingDecoder, type StreamingDecoderOptions } from './stream.js';
import { TokenAttr, type DecodeOptions, type EncodeOptions, type TokenizerOptions } from './types.js';
import { wellFormed } from './unicode.js';
import { Vocab } from './vocab.js';

/** A token, or text to encode (`atStart`: it begins the input). */
type Piece = { token: number } | { text: string; atStart: boolean };

/**
 * Hugging Face's slow tokenizer's loop over the added tokens (PreTrainedTokenizer.tokenize),
 * used when a token has single_word: for each token in turn, with `left` / `right` its
 * neighbours as they stand before its own changes: rstrip strips the right neighbour's leading
 * whitespace, lstrip the left's trailing (str.isspace); then single_word glues the token onto a
 * non-empty left neighbour not ending in " " (or takes on a non-empty right one not starting
 * with " "), and the glued string is encoded as text. Empty pieces are dropped after.
 * (None of Phi-3's, Phi-4's or HealthGPT's tokens has single_word; this is for other files.)
 */
function slowAddedTokenRules(v: Vocab, pieces: Piece[]): Piece[] {
  const str = (p: Piece): string => ('token' in p ? v.tokens[p.token]! : p.text);
  const lstrip = (t: string): string => {
    let i = 0;
    while (i < t.length && isPythonSpace(t.charCodeAt(i))) i++;
    return t.slice(i);
  };
  const rstrip = (t: string): string => {
    let i = t.length;
    while (i > 0 && isPythonSpace(t.charCodeAt(i - 1))) i--;
    return t.slice(0, i);
  };
  const out = pieces.slice();
  // a stripped piece stays a token when it was one (stripping a token's text changes nothing)
  const set = (i: number, text: string): void => {
    const p = out[i]!;
    if (!('token' in p) || text !== str(p)) out[i] = { text, atStart: 'token' in p ? i === 0 : p.atStart };
  };
  for (let i = 0; i < out.length; i++) {
    const p = out[i]!;
    if (!('token' in p)) continue;
    const attr = v.attrs[p.token]!;
    const left = i > 0 ? str(out[i - 1]!) : '';
    const right = i + 1 < out.length ? str(out[i + 1]!) : '';
    if (attr & TokenAttr.RSTRIP && right) set(i + 1, lstrip(right));
    if (attr & TokenAttr.LSTRIP && left) set(i - 1, rstrip(left));
    if (!(attr & TokenAttr.SINGLE_WORD)) continue;
    if (left && !left.endsWith(' ')) {
      out[i - 1] = { text: str(out[i - 1]!) + str(p), atStart: i - 1 === 0 };
      out[i] = { text: '', atStart: false };
    } else if (right && !right.startsWith(' ')) {
      out[i] = { text: str(p) + str(out[i + 1]!), atStart: i === 0 };
      out[i + 1] = { text: '', atStart: false };
    }
  }
  // a piece whose text is exactly an added token is that token again (the slow tokenizer looks
  // every piece up in its added tokens)
  return out.flatMap((p): Piece[] => {
    if ('token' in p) return [p];
    if (p.text === '') return [];
    const id = v.tokenToId.get(p.text);
    return id !== undefined && v.hasAttr(id, TokenAttr.CONTROL | TokenAttr.USER_DEFINED) ? [{ token: id }] : [p];
  });
}

export class Tokenizer {
  readonly vocab: Vocab;
  private readonly bpe: BpeSession | undefined;

  private constructor(vocab: Vocab) {
    this.vocab = vocab;
    this.bpe = vocab.model === 'gpt2' ? new BpeSession(vocab) : undefined;
  }

  /**
   * Builds the tokenizer a GGUF file describes (GGUFFile.open(path).info, or anything with its
   * metadata). Throws HealthGPTError code ERR_TOKENIZER for a missing or unsupported
   * tokenizer.ggml.model or pre-tokenizer, or a malformed vocabulary.
   */
  static fromGGUF(info: { metadata: Record<string, unknown> }, options: TokenizerOptions = {}): Tokenizer {
    if (!info || typeof info !== 'object' || !info.metadata || typeof info.metadata !== 'object') {
      throw new HealthGPTError('ERR_TOKENIZER', 'GGUF metadata is missing');
    }
    return new Tokenizer(Vocab.fromMetadata(info.metadata, options));
  }

  /** Same as fromGGUF, from the metadata record itself. */
  static fromMetadata(metadata: Record<string, unknown>, options: TokenizerOptions = {}): Tokenizer {
    return Tokenizer.fromGGUF({ metadata }, options);
  }

  get model(): 'llama' | 'gpt2' {
    return this.vocab.model;
  }
  get size(): number {
    return this.vocab.size;
  }
  get bosId(): number | null {
    return this.vocab.bosId;
  }
  get eosId(): number | null {
    return this.vocab.eosId;
  }
  get eotId(): number | null {
    return this.vocab.eotId;
  }
  get addBos(): boolean {
    return this.vocab.addBos;
  }

  /**
   * The ids the model's own generation config ends generation at (generation_config.json's
   * eos_token_id, recorded by the converter), or null for a file without them.
   */
  get eosTokenIds(): readonly number[] | null {
    return this.vocab.eosTokenIds;
  }

  /** True for tokens that end generation (EOS, EOT, <|end|>, <|endoftext|>, <|im_end|>, ...). */
  isEog(id: number): boolean {
    return this.vocab.eogIds.has(id);
  }

  isControl(id: number): boolean {
    return (this.vocab.attrs[id]! & TokenAttr.CONTROL) !== 0;
  }

  /** The id of an exact vocabulary entry (e.g. "<|end|>"), or undefined. */
  tokenId(text: string): number | undefined {
    return this.vocab.tokenToId.get(text);
  }

  /** The raw vocabulary text of a token. */
  tokenText(id: number): string {
    const t = this.vocab.tokens[id];
    if (t === undefined) throw new HealthGPTError('ERR_TOKENIZER', `token id ${id} is out of range (vocabulary of ${this.size})`);
    return t;
  }

  /** Text to token ids, as llama_tokenize(text, add_special, parse_special). */
  encode(text: string, options: EncodeOptions = {}): number[] {
    if (typeof text !== 'string') throw new HealthGPTError('ERR_TOKENIZER', 'encode() needs a string');
    const v = this.vocab;
    const addSpecial = options.addSpecial ?? true;
    const hfSlow = options.prefixStyle === 'hf-slow';
    if (options.prefixStyle !== undefined && options.prefixStyle !== 'llama.cpp' && !hfSlow) {
      throw new HealthGPTError('ERR_TOKENIZER', `unknown prefixStyle '${String(options.prefixStyle)}'`);
    }
    let raw = wellFormed(text);
    if (hfSlow && v.model === 'llama') raw = raw.replaceAll('\u2581', ' ');
    const singleWord = hfSlow && v.hasSingleWord;
    // (with a single_word token the slow tokenizer's own loop strips, and its order matters)
    let frags: Piece[] = partitionSpecial(v, raw, options.special ?? false, hfSlow ? isPythonSpace : isCSpace, !singleWord).map((f) =>
      'token' in f ? f : { text: raw.slice(f.start, f.end), atStart: f.start === 0 },
    );
    if (singleWord) frags = slowAddedTokenRules(v, frags);
    const out: number[] = [];
    if (addSpecial && v.addBos) out.push(v.bosId!);
    if (v.model === 'llama') {
      let prevSpecial = true;
      const first = frags[0];
      if (hfSlow && v.addSpacePrefix && first && 'token' in first) {
        // HF tokenized "▁" + text: the leading "▁" chunk before the special token stays a token
        // unless the special token is in all_special_tokens.
        const keep = options.hfAllSpecialIds ?? [v.bosId, v.eosId, v.unkId, v.padId].filter((x): x is number => x !== null);
        if (!keep.includes(first.token)) spmTokenize(v, '\u2581', out);
      }
      for (const f of frags) {
        if ('token' in f) {
          out.push(f.token);
          prevSpecial = true;
          continue;
        }
        const prefix = v.addSpacePrefix && (hfSlow ? f.atStart : prevSpecial);
        const piece = (prefix ? ' ' : '') + f.text;
        spmTokenize(v, piece.replaceAll(' ', '\u2581'), out);
        prevSpecial = false;
      }
    } else {
      for (const f of frags) {
        if ('token' in f) out.push(f.token);
        else this.bpe!.tokenize(f.text, out);
      }
    }
    if (addSpecial && v.addEos) out.push(v.eosId!);
    return out;
  }

  /** Token ids to text, as llama.cpp's detokenize (see DecodeOptions). */
  decode(ids: ArrayLike<number>, options: DecodeOptions = {}): string {
    return detokenize(this.vocab, ids, options);
  }

  /** Token ids to raw bytes (no UTF-8 decoding). */
  decodeBytes(ids: ArrayLike<number>, options: DecodeOptions = {}): Uint8Array {
    return detokenizeBytes(this.vocab, ids, options);
  }

  /** One token's bytes (llama_token_to_piece); control tokens are empty unless `special`. */
  tokenToPiece(id: number, special = false): Uint8Array {
    return tokenPiece(this.vocab, id, special);
  }

  /** A decoder that turns ids into text one at a time, never splitting a character. */
  streamDecoder(options: StreamingDecoderOptions = {}): StreamingDecoder {
    return new StreamingDecoder(this.vocab, options);
  }
}
