/**
 * The answer's text as HealthGPT prints it: com_infer.py decodes the generated ids with the slow
 * Hugging Face tokenizer, `tokenizer.decode(ids, skip_special_tokens=True)`, so
 * - special and added tokens (HealthGPT's <start_index>, <idx_k>, <end_index>, <pixel_newline>,
 *   <s>, <unk>, <|endoftext|>, the chat template's <|end|> ...) are not text;
 * - SentencePiece: the first kept token loses the '▁' the tokenizer put before the text
 *   (LlamaTokenizer, legacy=False); byte-level BPE (Phi-4) keeps every space.
 * Checked against transformers 4.41 (HealthGPT's pin): tools/reference/make_decode_reference.py.
 * (That decode keeps Phi-3's chat tokens that are not in its special-token list as text,
 * ' <|end|>' at the end, which com_infer.py cuts off with [:-8]; the engine never prints them.)
 */
import type { Tokenizer } from '../tokenizer/tokenizer.js';
import type { StreamingDecoder } from '../tokenizer/stream.js';
import { TokenAttr } from '../tokenizer/types.js';

const NOT_TEXT = TokenAttr.CONTROL | TokenAttr.UNKNOWN | TokenAttr.USER_DEFINED;

/** Streams the answer's text token by token (complete UTF-8 characters only). */
export class AnswerText {
  private decoder: StreamingDecoder | undefined;

  constructor(private readonly tokenizer: Tokenizer) {}

  /** Adds one generated id; returns the text it completes (possibly empty). */
  push(id: number): string {
    const v = this.tokenizer.vocab;
    if ((v.attrs[id] ?? 0) & NOT_TEXT) return '';
    this.decoder ??= this.tokenizer.streamDecoder({ stripLeadingSpace: v.model === 'llama' && (v.tokens[id]?.startsWith('\u2581') ?? false) });
    return this.decoder.push(id);
  }

  /** The text of held-back bytes at the end (an unfinished character as U+FFFD). */
  flush(): string {
    const s = this.decoder?.flush() ?? '';
    this.decoder = undefined;
    return s;
  }
}

/** decode(ids, skip_special_tokens=True) of a whole answer. */
export function answerText(tokenizer: Tokenizer, ids: Iterable<number>): string {
  const a = new AnswerText(tokenizer);
  let s = '';
  for (const id of ids) s += a.push(id);
  return s + a.flush();
}
