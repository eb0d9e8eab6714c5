/**
 * Incremental detokenization for generation: ids go in one at a time, and only complete UTF-8
 * text comes out. Bytes of a character split across tokens (e.g. an emoji as four <0xXX> byte
 * tokens) are held back until the character is complete; only bytes that can never form a
 * character become U+FFFD. flush() emits what is left (an unfinished character as U+FFFD).
 *
 * Pieces are llama.cpp's token_to_piece() (no clean_up_tokenization_spaces: that pass needs the
 * whole text). The leading space of the first piece is kept unless stripLeadingSpace is set
 * (generated text usually continues a prompt, where that space is real).
 */
import { lstripSpaces, tokenPiece } from './detokenize.js';
import type { Vocab } from './vocab.js';

export interface StreamingDecoderOptions {
  /** Render control/unknown tokens as their text. Default false. */
  special?: boolean;
  /** Strip one leading space from the first token's piece. Default false. */
  stripLeadingSpace?: boolean;
}

export class StreamingDecoder {
  private decoder = new TextDecoder('utf-8', { ignoreBOM: true });
  private first = true;

  constructor(
    private readonly vocab: Vocab,
    private readonly options: StreamingDecoderOptions = {},
  ) {}

  /** Adds one token; returns the text it completes (possibly empty). */
  push(id: number): string {
    let piece = tokenPiece(this.vocab, id, this.options.special ?? false);
    if (this.first) {
      if (this.options.stripLeadingSpace) piece = lstripSpaces(piece, 1);
      this.first = false;
    }
    return piece.length === 0 ? '' : this.decoder.decode(piece, { stream: true });
  }

  /** Adds several tokens; returns the completed text. */
  pushAll(ids: Iterable<number>): string {
    let s = '';
    for (const id of ids) s += this.push(id);
    return s;
  }

  /** Ends the stream: returns held-back bytes (an incomplete character as U+FFFD) and resets. */
  flush(): string {
    const s = this.decoder.decode();
    this.reset();
    return s;
  }

  reset(): void {
    this.decoder = new TextDecoder('utf-8', { ignoreBOM: true });
    this.first = true;
  }
}
