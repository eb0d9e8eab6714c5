/**
 * Pillow's 8-bit resampler (Image.resize on an RGB image), restated so that pixel tensors equal
 * the reference processor's bit for bit: per output pixel a filter widened by the downscale
 * factor, weights normalised then rounded to 22-bit fixed point, the horizontal pass first, each
 * pass rounded and clipped to 8 bits. The released CLIPImageProcessor resizes through PIL; sharp's
 * resize (libvips) uses other weights and its pipeline always resizes before it pads, which is
 * why the resize lives here and sharp only decodes and encodes.
 *
 * Rows come from a RowSource so that padding never has to exist in memory: padded columns are
 * weighed as one colour and an all-padding row is filtered once.
 */
import type { RgbImage } from './image.js';

export type ResampleFilter = 'bicubic' | 'lanczos';

/**
 * Rows of an RGB image whose columns [left, left + content) come from `row(y)` (content * 3
 * bytes) and whose other columns are `fill`; `row(y)` returns undefined for a row that is all
 * `fill`. Padding is thereby never built: the resampler weighs it as one colour.
 */
export interface RowSource {
  width: number;
  height: number;
  left: number;
  content: number;
  fill: readonly number[];
  row(y: number): Uint8Array | undefined;
}

const PRECISION_BITS = 32 - 8 - 2;
const HALF = 1 << (PRECISION_BITS - 1);

function bicubic(x: number): number {
  const a = -0.5; // Pillow's (and Catmull-Rom's) a
  if (x < 0) x = -x;
  if (x < 1) return ((a + 2) * x - (a + 3)) * x * x + 1;
  if (x < 2) return (((x - 5) * x + 8) * x - 4) * a;
  return 0;
}

function sinc(x: number): number {
  if (x === 0) return 1;
  x *= Math.PI;
  return Math.sin(x) / x;
}

function lanczos(x: number): number {
  return x >= -3 && x < 3 ? sinc(x) * sinc(x / 3) : 0;
}

const FILTERS: Record<ResampleFilter, { fn: (x: number) => number; support: number }> = {
  bicubic: { fn: bicubic, support: 2 },
  lanczos: { fn: lanczos, support: 3 },
};

interface Coefficients {
  /** first input index and tap count per output index */
  start: Int32Array;
  count: Int32Array;
  /** taps per output index, fixed point */
  ksize: number;
  kk: Int32Array;
  /** sum of the fixed-point taps per output index */
  total: Float64Array;
}

/** Pillow's precompute_coeffs + normalize_coeffs_8bpc for one axis. */
function coefficients(inSize: number, outSize: number, filter: ResampleFilter): Coefficients {
  const { fn, support: base } = FILTERS[filter];
  const scale = inSize / outSize;
  const filterscale = Math.max(scale, 1);
  const support = base * filterscale;
  const ss = 1 / filterscale;
  const ksize = Math.ceil(support) * 2 + 1;
  const start = new Int32Array(outSize);
  const count = new Int32Array(outSize);
  const kk = new Int32Array(outSize * ksize);
  const k = new Float64Array(ksize);
  const total = new Float64Array(outSize);
  for (let xx = 0; xx < outSize; xx++) {
    const center = (xx + 0.5) * scale;
    // C's (int) cast truncates toward zero
    let xmin = Math.trunc(center - support + 0.5);
    if (xmin < 0) xmin = 0;
    let xmax = Math.trunc(center + support + 0.5);
    if (xmax > inSize) xmax = inSize;
    xmax -= xmin;
    let ww = 0;
    for (let x = 0; x < xmax; x++) {
      const w = fn((x + xmin - center + 0.5) * ss);
      k[x] = w;
      ww += w;
    }
    for (let x = 0; x < xmax; x++) {
      const w = ww !== 0 ? k[x] / ww : k[x];
      // rounded half away from zero, as Pillow does
      kk[xx * ksize + x] = w < 0 ? Math.trunc(-0.5 + w * (1 << PRECISION_BITS)) : Math.trunc(0.5 + w * (1 << PRECISION_BITS));
      total[xx] += kk[xx * ksize + x];
    }
    start[xx] = xmin;
    count[xx] = xmax;
  }
  return { start, count, ksize, kk, total };
}

function clip8(acc: number): number {
  const v = acc >> PRECISION_BITS; // acc stays inside int32, as in Pillow
  return v < 0 ? 0 : Math.min(v, 255);
}

/** One row through the horizontal filter; taps outside the content weigh `fill`. */
function horizontal(src: RowSource, row: Uint8Array | undefined, dst: Uint8Array, dstOff: number, c: Coefficients, outW: number): void {
  const { start, count, ksize, kk, total } = c;
  const lo = row ? src.left : 0;
  const hi = row ? src.left + src.content : 0;
  const [fr, fg, fb] = src.fill;
  for (let xx = 0; xx < outW; xx++) {
    const s = start[xx];
    const n = count[xx];
    const off = xx * ksize;
    let r = HALF;
    let g = HALF;
    let b = HALF;
    const a = Math.max(s, lo);
    const e = Math.min(s + n, hi);
    let inside = 0;
    for (let x = a; x < e; x++) {
      const w = kk[off + x - s];
      const p = (x - lo) * 3;
      r += row![p] * w;
      g += row![p + 1] * w;
      b += row![p + 2] * w;
      inside += w;
    }
    // integer sums: the same total as Pillow's tap-by-tap loop over the padded row
    const out = total[xx] - inside;
    const o = dstOff + xx * 3;
    dst[o] = clip8(r + fr * out);
    dst[o + 1] = clip8(g + fg * out);
    dst[o + 2] = clip8(b + fb * out);
  }
}

/** A full padded row, for when the width does not change. */
function fullRow(src: RowSource, row: Uint8Array | undefined, dst: Uint8Array, dstOff: number): void {
  for (let x = 0; x < src.width; x++) dst.set(src.fill, dstOff + x * 3);
  if (row) dst.set(row.subarray(0, src.content * 3), dstOff + src.left * 3);
}

/** Resizes the rows of `src` to outW x outH as Pillow's Image.resize(..., resample) does. */
export function resample(src: RowSource, outW: number, outH: number, filter: ResampleFilter): RgbImage {
  const inW = src.width;
  const inH = src.height;
  const stride = outW * 3;
  // Pillow skips a pass whose size does not change (it would be the identity anyway)
  const needH = outW !== inW;
  const needV = outH !== inH;
  const cx = needH ? coefficients(inW, outW, filter) : undefined;
  const cy = needV ? coefficients(inH, outH, filter) : undefined;

  // rows of the input the vertical pass reads
  const first = cy ? cy.start[0] : 0;
  const last = cy ? cy.start[outH - 1] + cy.count[outH - 1] : inH;
  const temp = new Uint8Array((last - first) * stride);
  let fillDone = -1; // offset of a finished all-fill row
  for (let y = first; y < last; y++) {
    const row = src.row(y);
    const off = (y - first) * stride;
    if (!row && fillDone >= 0) temp.copyWithin(off, fillDone, fillDone + stride);
    else if (cx) horizontal(src, row, temp, off, cx, outW);
    else fullRow(src, row, temp, off);
    if (!row) fillDone = off;
  }
  if (!cy) return { width: outW, height: outH, data: temp };

  const out = new Uint8Array(outH * stride);
  const { start, count, ksize, kk } = cy;
  for (let yy = 0; yy < outH; yy++) {
    const s = start[yy] - first;
    const n = count[yy];
    const off = yy * ksize;
    const o = yy * stride;
    for (let x = 0; x < stride; x++) {
      let acc = HALF;
      for (let i = 0; i < n; i++) acc += temp[(s + i) * stride + x] * kk[off + i];
      out[o + x] = clip8(acc);
    }
  }
  return { width: outW, height: outH, data: out };
}

/** Rows of an RgbImage. */
export function imageRows(img: RgbImage): RowSource {
  const stride = img.width * 3;
  return { width: img.width, height: img.height, left: 0, content: img.width, fill: [0, 0, 0], row: (y) => img.data.subarray(y * stride, (y + 1) * stride) };
}
