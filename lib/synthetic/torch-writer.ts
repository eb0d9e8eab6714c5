/**
 * A torch.save writer for the synthetic release (lib/synthetic/release.ts): the zip layout torch
 * writes since 1.6 (<archive>/data.pkl, <archive>/byteorder, <archive>/data/<key> per storage,
 * <archive>/version; entries stored, CRC-32 filled in) and the protocol-2 pickle subset it emits
 * for a dict of tensors: OrderedDict via REDUCE, tensors as torch._utils._rebuild_tensor_v2 over
 * a persistent ('storage', torch.FloatStorage, key, 'cpu', numel) id, plain dicts, strings, ints
 * and floats. What our reader (lib/convert/torch.ts) and torch.load(weights_only=True) accept;
 * nothing more. One storage per tensor, contiguous, float32.
 */
import { writeFile } from 'node:fs/promises';

/** A float32 tensor to save. */
export class TorchTensor {
  /**
   * `dtype` 'bf16' stores the values rounded to bfloat16 (nearest, ties to even) in a
   * BFloat16Storage, as HealthGPT's released .bin files hold their tensors.
   */
  constructor(
    readonly shape: number[],
    readonly data: Float32Array,
    readonly dtype: 'f32' | 'bf16' = 'f32',
  ) {
    if (shape.reduce((a, b) => a * b, 1) !== data.length) throw new Error(`tensor of shape [${shape.join(', ')}] with ${data.length} values`);
  }
}

/** float32 -> bfloat16 bits, round to nearest even (torch's .to(torch.bfloat16)); NaN stays NaN. */
export function toBf16(v: Float32Array): Uint16Array {
  const u = new Uint32Array(v.buffer, v.byteOffset, v.length);
  const out = new Uint16Array(v.length);
  for (let i = 0; i < v.length; i++) {
    const x = u[i]!;
    if ((x & 0x7fffffff) > 0x7f800000) out[i] = (x >>> 16) | 0x40;
    else out[i] = (x + 0x7fff + ((x >>> 16) & 1)) >>> 16;
  }
  return out;
}

/** A Python value this writer pickles: an ordered dict of anything (OrderedDict when `ordered`). */
export type TorchValue = TorchTensor | string | number | boolean | null | TorchDict;
export class TorchDict {
  constructor(
    readonly entries: Array<[string, TorchValue]>,
    readonly ordered = false,
  ) {}
}

class Pickler {
  private readonly out: number[] = [];
  readonly storages: Array<Float32Array | Uint16Array> = [];
  private byte(...b: number[]): void {
    for (const x of b) this.out.push(x);
  }
  private u32(n: number): void {
    this.byte(n & 0xff, (n >>> 8) & 0xff, (n >>> 16) & 0xff, (n >>> 24) & 0xff);
  }
  private str(s: string): void {
    const b = Buffer.from(s, 'utf8');
    this.byte(0x58); // BINUNICODE
    this.u32(b.length);
    for (const x of b) this.out.push(x);
  }
  private global(module: string, name: string): void {
    this.byte(0x63); // GLOBAL
    for (const x of Buffer.from(`${module}\n${name}\n`, 'latin1')) this.out.push(x);
  }
  private int(n: number): void {
    if (!Number.isSafeInteger(n)) throw new Error(`pickle: ${n} is not an integer`);
    if (n >= 0 && n < 256)
      this.byte(0x4b, n); // BININT1
    else if (n >= 0 && n < 65536)
      this.byte(0x4d, n & 0xff, n >> 8); // BININT2
    else if (n >= -(2 ** 31) && n < 2 ** 31) {
      this.byte(0x4a); // BININT
      this.u32(n >>> 0);
    } else throw new Error(`pickle: ${n} is past int32 (not needed here)`);
  }
  private tuple(items: Array<() => void>): void {
    if (items.length === 0) {
      this.byte(0x29); // EMPTY_TUPLE
      return;
    }
    if (items.length <= 3) {
      items.forEach((f) => f());
      this.byte([0x85, 0x86, 0x87][items.length - 1]!); // TUPLE1..3
      return;
    }
    this.byte(0x28); // MARK
    items.forEach((f) => f());
    this.byte(0x74); // TUPLE
  }
  value(v: TorchValue): void {
    if (v === null) this.byte(0x4e);
    else if (v === true) this.byte(0x88);
    else if (v === false) this.byte(0x89);
    else if (typeof v === 'string') this.str(v);
    else if (typeof v === 'number') {
      if (Number.isInteger(v)) this.int(v);
      else {
        const b = Buffer.alloc(8);
        b.writeDoubleBE(v);
        this.byte(0x47, ...b); // BINFLOAT
      }
    } else if (v instanceof TorchTensor) this.tensor(v);
    else this.dict(v);
  }
  private dict(d: TorchDict): void {
    if (d.ordered) {
      this.global('collections', 'OrderedDict');
      this.byte(0x29, 0x52); // EMPTY_TUPLE, REDUCE
    } else this.byte(0x7d); // EMPTY_DICT
    if (d.entries.length === 0) return;
    this.byte(0x28); // MARK
    for (const [k, v] of d.entries) {
      this.str(k);
      this.value(v);
    }
    this.byte(0x75); // SETITEMS
  }
  private tensor(t: TorchTensor): void {
    const key = String(this.storages.length);
    this.storages.push(t.dtype === 'bf16' ? toBf16(t.data) : t.data);
    const stride: number[] = [];
    let s = 1;
    for (let i = t.shape.length - 1; i >= 0; i--) {
      stride[i] = s;
      s *= t.shape[i]!;
    }
    this.global('torch._utils', '_rebuild_tensor_v2');
    this.byte(0x28); // MARK: the arguments
    this.tuple([
      () => this.str('storage'),
      () => this.global('torch', t.dtype === 'bf16' ? 'BFloat16Storage' : 'FloatStorage'),
      () => this.str(key),
      () => this.str('cpu'),
      () => this.int(t.data.length),
    ]);
    this.byte(0x51); // BINPERSID
    this.int(0); // storage offset
    this.tuple(t.shape.map((d) => () => this.int(d)));
    this.tuple(stride.map((d) => () => this.int(d)));
    this.byte(0x89); // requires_grad False
    this.global('collections', 'OrderedDict');
    this.byte(0x29, 0x52); // backward hooks: OrderedDict()
    this.byte(0x74, 0x52); // TUPLE, REDUCE
  }
  bytes(root: TorchValue): Uint8Array {
    this.byte(0x80, 2); // PROTO 2
    this.value(root);
    this.byte(0x2e); // STOP
    return Uint8Array.from(this.out);
  }
}

const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

export function crc32(b: Uint8Array): number {
  let c = 0xffffffff;
  for (let i = 0; i < b.length; i++) c = CRC_TABLE[(c ^ b[i]!) & 0xff]! ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

/** A zip of stored entries (no compression, no zip64: the synthetic files are small). */
function zipStored(entries: Array<[string, Uint8Array]>): Buffer {
  const parts: Buffer[] = [];
  const central: Buffer[] = [];
  let off = 0;
  for (const [name, data] of entries) {
    const n = Buffer.from(name, 'utf8');
    const crc = crc32(data);
    // pad the local header's extra field so the data starts 64-aligned, as torch aligns storages
    const pad = (64 - ((off + 30 + n.length + 4) % 64)) % 64;
    const extra = Buffer.alloc(4 + pad);
    extra.writeUInt16LE(0xcafe, 0); // a private extra-field id, as torch's writer uses
    extra.writeUInt16LE(pad, 2);
    const local = Buffer.alloc(30);
    local.writeUInt32LE(0x04034b50, 0);
    local.writeUInt16LE(20, 4); // version needed
    local.writeUInt16LE(0, 6); // flags
    local.writeUInt16LE(0, 8); // stored
    local.writeUInt32LE(0, 10); // time, date
    local.writeUInt32LE(crc, 14);
    local.writeUInt32LE(data.length, 18);
    local.writeUInt32LE(data.length, 22);
    local.writeUInt16LE(n.length, 26);
    local.writeUInt16LE(extra.length, 28);
    const c = Buffer.alloc(46);
    c.writeUInt32LE(0x02014b50, 0);
    c.writeUInt16LE(20, 4);
    c.writeUInt16LE(20, 6);
    c.writeUInt16LE(0, 8);
    c.writeUInt16LE(0, 10);
    c.writeUInt32LE(0, 12);
    c.writeUInt32LE(crc, 16);
    c.writeUInt32LE(data.length, 20);
    c.writeUInt32LE(data.length, 24);
    c.writeUInt16LE(n.length, 28);
    c.writeUInt32LE(off, 42); // local header offset (extra, comment, disk, attributes zero)
    central.push(c, n);
    parts.push(local, n, extra, Buffer.from(data.buffer, data.byteOffset, data.byteLength));
    off += 30 + n.length + extra.length + data.length;
  }
  const cd = Buffer.concat(central);
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0);
  end.writeUInt16LE(entries.length, 8);
  end.writeUInt16LE(entries.length, 10);
  end.writeUInt32LE(cd.length, 12);
  end.writeUInt32LE(off, 16);
  return Buffer.concat([...parts, cd, end]);
}

/** torch.save(root, path) for the values above. */
export async function writeTorchSave(path: string, root: TorchValue, archive = 'archive'): Promise<void> {
  const p = new Pickler();
  const pkl = p.bytes(root);
  const entries: Array<[string, Uint8Array]> = [
    [`${archive}/data.pkl`, pkl],
    [`${archive}/byteorder`, Buffer.from('little')],
    ...p.storages.map((s, i): [string, Uint8Array] => [`${archive}/data/${i}`, new Uint8Array(s.buffer, s.byteOffset, s.byteLength)]),
    [`${archive}/version`, Buffer.from('3\n')],
  ];
  await writeFile(path, zipStored(entries));
}
