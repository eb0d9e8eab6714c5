/**
 * RLE Lossless (PS3.5 Annex G). A frame is a 64-byte header (segment count, then 15 offsets) and
 * one PackBits segment per byte of each sample: sample 0's most significant bytes first. Decoded to
 * the native layout: little endian, pixel-interleaved (the segments are planes, so Planar
 * Configuration does not apply).
 */
import { HealthGPTError } from '../errors.js';

function fail(name: string, msg: string): never {
  throw new HealthGPTError('ERR_DICOM', `${name}: RLE frame ${msg}`);
}

/** PackBits (G.3.1) into `out`, every `stride`-th byte from `at`; returns the bytes written. */
function unpackSegment(seg: Uint8Array, out: Uint8Array, at: number, stride: number, count: number): number {
  let i = 0;
  let n = 0;
  while (i < seg.length && n < count) {
    const h = seg[i++];
    if (h < 128) {
      // h + 1 literal bytes
      const end = Math.min(i + h + 1, seg.length);
      for (; i < end && n < count; i++, n++) out[at + n * stride] = seg[i];
    } else if (h > 128) {
      // the next byte 257 - h times
      if (i >= seg.length) break;
      const b = seg[i++];
      for (let r = 257 - h; r > 0 && n < count; r--, n++) out[at + n * stride] = b;
    } // 128: no operation
  }
  return n;
}

export function decodeRle(data: Uint8Array, pixels: number, samplesPerPixel: number, bitsAllocated: number, name: string): Uint8Array {
  if (data.length < 64) fail(name, `is ${data.length} bytes, shorter than its 64-byte header`);
  const view = new DataView(data.buffer, data.byteOffset, data.length);
  const segments = view.getUint32(0, true);
  const bytesPer = bitsAllocated / 8;
  const want = samplesPerPixel * bytesPer;
  if (segments !== want) fail(name, `has ${segments} segments; ${samplesPerPixel} sample(s) of ${bitsAllocated} bits need ${want}`);
  const offsets: number[] = [];
  for (let s = 0; s < segments; s++) offsets.push(view.getUint32(4 + 4 * s, true));
  offsets.push(data.length);
  const out = new Uint8Array(pixels * want);
  for (let s = 0; s < segments; s++) {
    const [a, b] = [offsets[s], offsets[s + 1]];
    if (a < 64 || b < a || b > data.length) fail(name, `segment ${s} has offsets ${a}..${b} outside the ${data.length}-byte frame`);
    // segment s holds byte (bytesPer - 1 - s % bytesPer) of sample floor(s / bytesPer), little endian out
    const sample = Math.floor(s / bytesPer);
    const byte = bytesPer - 1 - (s % bytesPer);
    const got = unpackSegment(data.subarray(a, b), out, sample * bytesPer + byte, want, pixels);
    if (got < pixels) fail(name, `segment ${s} decodes to ${got} bytes, ${pixels} expected (truncated or corrupt)`);
  }
  return out;
}
