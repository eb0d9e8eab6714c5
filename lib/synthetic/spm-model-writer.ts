/**
 * Writes a SentencePiece tokenizer.model (the ModelProto protobuf) from a vocabulary, for the
 * synthetic release's language-model folder: pieces (text, score, type), the trainer spec's
 * model type (2, BPE, as Llama / Phi-3's), byte_fallback and special ids, and the normalizer's
 * add_dummy_prefix. The fields lib/convert/sentencepiece.ts reads, nothing else.
 */
import { writeFile } from 'node:fs/promises';
import type { SpmVocab } from '../tokenizer/vocab-gguf.js';

class Proto {
  private readonly out: number[] = [];
  varint(v: number): this {
    let x = v;
    if (x < 0) throw new Error('negative varint');
    while (x >= 0x80) {
      this.out.push((x & 0x7f) | 0x80);
      x = Math.floor(x / 128);
    }
    this.out.push(x);
    return this;
  }
  tag(field: number, wire: number): this {
    return this.varint(field * 8 + wire);
  }
  bytes(field: number, b: Uint8Array): this {
    this.tag(field, 2).varint(b.length);
    for (const x of b) this.out.push(x);
    return this;
  }
  float(field: number, v: number): this {
    const b = Buffer.alloc(4);
    b.writeFloatLE(v);
    this.tag(field, 5);
    for (const x of b) this.out.push(x);
    return this;
  }
  int(field: number, v: number): this {
    return this.tag(field, 0).varint(v);
  }
  done(): Uint8Array {
    return Uint8Array.from(this.out);
  }
}

export async function writeSentencePieceModel(path: string, v: SpmVocab): Promise<void> {
  const top = new Proto();
  v.pieces.forEach((p, i) => {
    const piece = new Proto()
      .bytes(1, Buffer.from(p, 'utf8'))
      .float(2, v.scores[i] ?? 0)
      .int(3, v.types[i] ?? 1)
      .done();
    top.bytes(1, piece);
  });
  const trainer = new Proto()
    .int(3, 2)
    .int(35, 1)
    .int(40, v.unknownId ?? 0)
    .int(41, v.bosId ?? 1)
    .int(42, 2)
    .done();
  top.bytes(2, trainer);
  top.bytes(3, new Proto().int(3, 1).done());
  await writeFile(path, top.done());
}
