/**
 * Uncompressed pixel data (PS3.5 8.1 and 8.2) to samples: Bits Allocated 1 (bits packed LSB
 * first, frames not byte aligned), 8, 16 and 32 (and 32/64-bit float pixel data), either byte
 * order, either planar configuration, YBR_FULL_422's shared chroma; then stored values (masked to
 * Bits Stored at High Bit, sign-extended) and the colour conversions of PS3.3 C.7.6.3.1.2.
 */

export type Samples = Uint8Array | Uint16Array | Int16Array | Uint32Array | Float32Array | Float64Array;

export interface NativeLayout {
  /** samples in the frame: pixels x samples per pixel (pixels x 2 for YBR_FULL_422) */
  count: number;
  bitsAllocated: number;
  littleEndian: boolean;
  float: boolean;
}

/** Reads `count` samples starting at bit `bitOffset` of `src` into a fresh container. */
export function nativeSamples(src: Uint8Array, bitOffset: number, l: NativeLayout): Samples {
  const { count } = l;
  if (l.bitsAllocated === 1) {
    const out = new Uint8Array(count);
    for (let i = 0; i < count; i++) {
      const b = bitOffset + i;
      out[i] = (src[b >> 3] >> (b & 7)) & 1;
    }
    return out;
  }
  const at = bitOffset / 8;
  if (l.bitsAllocated === 8) return src.slice(at, at + count);
  const bytes = l.bitsAllocated / 8;
  const view = new DataView(src.buffer, src.byteOffset + at, count * bytes);
  const le = l.littleEndian;
  if (l.float) {
    const out = bytes === 4 ? new Float32Array(count) : new Float64Array(count);
    for (let i = 0; i < count; i++) out[i] = bytes === 4 ? view.getFloat32(i * 4, le) : view.getFloat64(i * 8, le);
    return out;
  }
  if (bytes === 2) {
    const out = new Uint16Array(count);
    for (let i = 0; i < count; i++) out[i] = view.getUint16(i * 2, le);
    return out;
  }
  const out = new Uint32Array(count);
  for (let i = 0; i < count; i++) out[i] = view.getUint32(i * 4, le);
  return out;
}

/** Stored values of integer samples: the Bits Stored bits ending at High Bit, sign-extended if signed. */
export function storedValues(s: Samples, bitsStored: number, shift: number, signed: boolean): Float64Array {
  const out = new Float64Array(s.length);
  if (s instanceof Float32Array || s instanceof Float64Array) {
    out.set(s);
    return out;
  }
  const range = 2 ** bitsStored;
  for (let i = 0; i < s.length; i++) {
    // >>> 0 keeps the 16-bit pattern of a signed decoder output and 32-bit values unsigned
    let v = (Math.floor((s[i] >>> 0) / 2 ** shift) % range) >>> 0;
    if (signed && v >= range / 2) v -= range;
    out[i] = v;
  }
  return out;
}

/** Planar configuration 1 (all of sample 0, then 1, then 2) to pixel-interleaved. */
export function interleavePlanes<T extends Samples>(s: T, pixels: number, spp: number): T {
  const out = new (s.constructor as new (n: number) => T)(s.length);
  for (let c = 0; c < spp; c++) for (let i = 0; i < pixels; i++) out[i * spp + c] = s[c * pixels + i];
  return out;
}

/** YBR_FULL_422: Y Y Cb Cr for each pair of pixels of a row, to Y Cb Cr per pixel (PS3.3 C.7.6.3.1.2). */
export function expandYbr422<T extends Samples>(s: T, pixels: number): T {
  const out = new (s.constructor as new (n: number) => T)(pixels * 3);
  for (let p = 0; p < pixels; p += 2) {
    const i = p * 2;
    const [cb, cr] = [s[i + 2], s[i + 3]];
    out.set([s[i], cb, cr, s[i + 1], cb, cr], p * 3);
  }
  return out;
}

// PS3.3 C.7.6.3.1.2 (JFIF's full-range YCbCr), the coefficients pydicom uses
const CR_R = 1.402;
const CB_G = (-0.114 * 1.772) / 0.587;
const CR_G = (-0.299 * 1.402) / 0.587;
const CB_B = 1.772;

/** YBR_FULL to RGB in place, rounded half up and clipped. */
export function ybrFullToRgb(d: Uint8Array): void {
  const c8 = (v: number) => Math.min(255, Math.max(0, Math.floor(v + 0.5)));
  for (let i = 0; i < d.length; i += 3) {
    const y = d[i];
    const cb = d[i + 1] - 128;
    const cr = d[i + 2] - 128;
    d[i] = c8(y + CR_R * cr);
    d[i + 1] = c8(y + CB_G * cb + CR_G * cr);
    d[i + 2] = c8(y + CB_B * cb);
  }
}
