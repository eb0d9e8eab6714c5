/**
 * SentencePiece's tokenizer.model, parsed by us (a protobuf ModelProto): the pieces with their
 * scores and types, the trainer's model type, byte_fallback and special ids, and the normalizer's
 * add_dummy_prefix. Only the fields llama.cpp's "llama" vocabulary needs are decoded; the others
 * are skipped by wire type. Field numbers are those of sentencepiece_model.proto.
 */
import { HealthGPTError } from '../errors.js';

export interface SentencePieceModel {
  pieces: string[];
  scores: Float32Array;
  /** SentencePiece's piece types, the same numbers GGUF uses (1 normal, 2 unknown, 3 control, 4 user-defined, 5 unused, 6 byte) */
  types: Int32Array;
  /** 1 unigram, 2 bpe, 3 word, 4 char */
  modelType: number;
  byteFallback: boolean;
  unkId: number;
  bosId: number;
  eosId: number;
  padId: number;
  addDummyPrefix: boolean;
}

const MODEL_TYPES: Record<number, string> = { 1: 'unigram', 2: 'bpe', 3: 'word', 4: 'char' };

class Reader {
  pos: number;
  constructor(
    readonly buf: Uint8Array,
    readonly end: number,
    start: number,
    readonly fail: (m: string) => never,
  ) {
    this.pos = start;
  }
  varint(): number {
    let v = 0;
    let mul = 1;
    for (let i = 0; i < 10; i++) {
      if (this.pos >= this.end) this.fail(`truncated varint at offset ${this.pos}`);
      const b = this.buf[this.pos++]!;
      v += (b & 0x7f) * mul;
      if (!(b & 0x80)) return v;
      mul *= 128;
    }
    return this.fail(`varint too long at offset ${this.pos}`);
  }
  /** an int32 field: the low 32 bits of the varint, signed (negatives take 10 bytes) */
  int32(): number {
    let lo = 0;
    for (let i = 0; i < 10; i++) {
      if (this.pos >= this.end) this.fail(`truncated varint at offset ${this.pos}`);
      const b = this.buf[this.pos++]!;
      if (i < 5) lo |= (b & 0x7f) << (7 * i);
      if (!(b & 0x80)) return lo | 0;
    }
    return this.fail(`varint too long at offset ${this.pos}`);
  }
  /** a length-delimited field: [start, end) */
  span(): [number, number] {
    const n = this.varint();
    if (n > this.end - this.pos) this.fail(`a field of ${n} bytes at offset ${this.pos} runs past its message`);
    const s = this.pos;
    this.pos += n;
    return [s, this.pos];
  }
  fixed32(): number {
    if (this.pos + 4 > this.end) this.fail(`truncated fixed32 at offset ${this.pos}`);
    const v = new DataView(this.buf.buffer, this.buf.byteOffset + this.pos, 4).getFloat32(0, true);
    this.pos += 4;
    return v;
  }
  skip(wire: number): void {
    if (wire === 0) this.varint();
    else if (wire === 1) this.advance(8);
    else if (wire === 2) this.span();
    else if (wire === 5) this.advance(4);
    else this.fail(`unsupported protobuf wire type ${wire} at offset ${this.pos}`);
  }
  private advance(n: number): void {
    if (this.pos + n > this.end) this.fail(`truncated field at offset ${this.pos}`);
    this.pos += n;
  }
  /** calls fn(field, wire) for each field of the message until its end */
  fields(fn: (field: number, wire: number) => void): void {
    while (this.pos < this.end) {
      const key = this.varint();
      fn(Math.floor(key / 8), key & 7);
    }
  }
}

/** Parses tokenizer.model bytes; `what` names the file in errors (code ERR_TOKENIZER). */
export function parseSentencePieceModel(bytes: Uint8Array, what = 'tokenizer.model'): SentencePieceModel {
  const fail = (m: string): never => {
    throw new HealthGPTError('ERR_TOKENIZER', `${what}: ${m}`);
  };
  const pieces: string[] = [];
  const scores: number[] = [];
  const types: number[] = [];
  const m: Omit<SentencePieceModel, 'pieces' | 'scores' | 'types'> = {
    modelType: 1, // proto default: unigram
    byteFallback: false,
    unkId: 0,
    bosId: 1,
    eosId: 2,
    padId: -1,
    addDummyPrefix: true,
  };
  const top = new Reader(bytes, bytes.length, 0, fail);
  top.fields((field, wire) => {
    if (field === 1 && wire === 2) {
      const [s, e] = top.span();
      const r = new Reader(bytes, e, s, fail);
      let piece: string | undefined;
      let score = 0;
      let type = 1;
      r.fields((f, w) => {
        if (f === 1 && w === 2) {
          const [a, b] = r.span();
          piece = Buffer.from(bytes.subarray(a, b)).toString('utf8');
        } else if (f === 2 && w === 5) score = r.fixed32();
        else if (f === 3 && w === 0) type = r.varint();
        else r.skip(w);
      });
      if (piece === undefined) fail(`piece ${pieces.length} has no text`);
      if (type < 1 || type > 6) fail(`piece ${pieces.length} ('${piece}') has type ${type}, not 1..6`);
      pieces.push(piece!);
      scores.push(score);
      types.push(type);
    } else if (field === 2 && wire === 2) {
      const [s, e] = top.span();
      const r = new Reader(bytes, e, s, fail);
      r.fields((f, w) => {
        if (w !== 0) return r.skip(w);
        const v = r.int32();
        if (f === 3) m.modelType = v;
        else if (f === 35) m.byteFallback = v !== 0;
        else if (f === 40) m.unkId = v;
        else if (f === 41) m.bosId = v;
        else if (f === 42) m.eosId = v;
        else if (f === 43) m.padId = v;
      });
    } else if (field === 3 && wire === 2) {
      const [s, e] = top.span();
      const r = new Reader(bytes, e, s, fail);
      r.fields((f, w) => {
        if (f === 3 && w === 0) m.addDummyPrefix = r.varint() !== 0;
        else r.skip(w);
      });
    } else top.skip(wire);
  });
  if (pieces.length === 0) fail('no pieces (not a SentencePiece model?)');
  if (!MODEL_TYPES[m.modelType]) fail(`unknown model type ${m.modelType}`);
  return { pieces, scores: Float32Array.from(scores), types: Int32Array.from(types), ...m };
}

export function modelTypeName(t: number): string {
  return MODEL_TYPES[t] ?? `type ${t}`;
}
