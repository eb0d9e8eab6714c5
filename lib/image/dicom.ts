/**
 * DICOM Part 10 files to 8-bit RGB, with dicom-parser. Only uncompressed pixel data (implicit or
 * explicit VR little endian); compressed transfer syntaxes are refused by name.
 *
 * Greyscale (MONOCHROME1/2, 8 or 16 bits allocated, signed or not): stored value (masked to
 * BitsStored at HighBit, sign-extended) -> RescaleSlope / RescaleIntercept -> VOI window mapped
 * to 0..255 (PS3.3 C.11.2.1.2: LINEAR, LINEAR_EXACT or SIGMOID), rounded half up. The window is
 * the caller's if given, else the file's first WindowCenter / WindowWidth, else the frame's own
 * min..max. MONOCHROME1 is inverted so that higher is brighter. RGB (8-bit, either planar
 * configuration) passes through; YBR_FULL is converted to RGB (PS3.3 C.7.6.3.1.2). Multi-frame files: frame 0 unless the caller asks for another.
 */
import type { DataSet } from 'dicom-parser';
import { HealthGPTError } from '../errors.js';
import type { RgbImage } from './image.js';
import { dicomParser } from './lazy.js';

export interface VoiWindow {
  center: number;
  width: number;
}

export interface DicomOptions {
  /** VOI window on the rescaled (modality) values; default: the file's, else min..max */
  window?: VoiWindow;
  /** frame of a multi-frame file; default 0 */
  frame?: number;
  /** refuse frames with more pixels than this */
  maxPixels: number;
}

/** what the pixel data of a file is, besides the pixels */
export interface DicomInfo {
  transferSyntax: string;
  photometric: string;
  frames: number;
  bitsAllocated: number;
  window?: VoiWindow;
}

const UNCOMPRESSED = new Map([
  ['1.2.840.10008.1.2', 'Implicit VR Little Endian'],
  ['1.2.840.10008.1.2.1', 'Explicit VR Little Endian'],
]);

const KNOWN_REFUSED: Record<string, string> = {
  '1.2.840.10008.1.2.2': 'Explicit VR Big Endian (retired)',
  '1.2.840.10008.1.2.1.99': 'Deflated Explicit VR Little Endian',
  '1.2.840.10008.1.2.4.50': 'JPEG Baseline',
  '1.2.840.10008.1.2.4.51': 'JPEG Extended',
  '1.2.840.10008.1.2.4.57': 'JPEG Lossless',
  '1.2.840.10008.1.2.4.70': 'JPEG Lossless SV1',
  '1.2.840.10008.1.2.4.80': 'JPEG-LS Lossless',
  '1.2.840.10008.1.2.4.81': 'JPEG-LS Near-Lossless',
  '1.2.840.10008.1.2.4.90': 'JPEG 2000 Lossless',
  '1.2.840.10008.1.2.4.91': 'JPEG 2000',
  '1.2.840.10008.1.2.5': 'RLE Lossless',
};

/** DICOM Part 10: a 128-byte preamble, then "DICM". */
export function isDicom(head: Uint8Array): boolean {
  return head.length >= 132 && head[128] === 0x44 && head[129] === 0x49 && head[130] === 0x43 && head[131] === 0x4d;
}

function fail(code: string, name: string, msg: string): never {
  throw new HealthGPTError(code, `${name}: ${msg}`);
}

export function validateWindow(w: unknown, name = 'window'): VoiWindow | undefined {
  if (w === undefined) return undefined;
  const o = w as VoiWindow;
  if (o === null || typeof o !== 'object' || !Number.isFinite(o.center) || !Number.isFinite(o.width) || o.width <= 0) {
    throw new HealthGPTError('ERR_INVALID_OPTION', `${name} must be { center, width } with finite numbers and width > 0, got ${JSON.stringify(w)}`);
  }
  return { center: o.center, width: o.width };
}

/** Maps values to 0..255 through a VOI LUT function of PS3.3 C.11.2.1.2 / C.11.2.1.3. */
export function windowTo8(values: Float64Array, win: VoiWindow, fn: string): Uint8Array {
  const out = new Uint8Array(values.length);
  let { center: c, width: w } = win;
  if (fn === 'SIGMOID') {
    for (let i = 0; i < values.length; i++) out[i] = Math.floor(255 / (1 + Math.exp((-4 * (values[i] - c)) / w)) + 0.5);
    return out;
  }
  if (fn === 'LINEAR') {
    c -= 0.5;
    w -= 1;
  }
  const lo = c - w / 2;
  const hi = c + w / 2;
  for (let i = 0; i < values.length; i++) {
    const x = values[i];
    // a width of exactly 1 under LINEAR leaves w = 0: a step at the centre
    out[i] = x <= lo ? 0 : x > hi ? 255 : Math.floor(((x - c) / w + 0.5) * 255 + 0.5);
  }
  return out;
}

function minMaxTo8(values: Float64Array): Uint8Array {
  let lo = Infinity;
  let hi = -Infinity;
  for (const v of values) {
    if (v < lo) lo = v;
    if (v > hi) hi = v;
  }
  const out = new Uint8Array(values.length);
  if (hi > lo) for (let i = 0; i < values.length; i++) out[i] = Math.floor(((values[i] - lo) / (hi - lo)) * 255 + 0.5);
  return out;
}

// PS3.3 C.7.6.3.1.2 (JFIF's full-range YCbCr), the coefficients pydicom uses
const CR_R = 1.402;
const CB_G = (-0.114 * 1.772) / 0.587;
const CR_G = (-0.299 * 1.402) / 0.587;
const CB_B = 1.772;

/** YBR_FULL to RGB in place, rounded half up and clipped. */
function ybrFullToRgb(d: Uint8Array): void {
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

/** Decodes one frame of a DICOM Part 10 file held in `bytes`; `name` names it in errors. */
export function decodeDicom(bytes: Uint8Array, name: string, options: DicomOptions): { image: RgbImage; info: DicomInfo } {
  let ds: DataSet;
  try {
    ds = dicomParser().parseDicom(bytes);
  } catch (err) {
    // dicom-parser throws strings, or objects carrying `exception`
    const e = err as { exception?: unknown; message?: unknown };
    const msg = typeof err === 'string' ? err : typeof e?.exception === 'string' ? e.exception : typeof e?.message === 'string' ? e.message : String(err);
    fail('ERR_DICOM', name, `not a readable DICOM file (${msg}; truncated or corrupt?)`);
  }
  const ts = (ds.string('x00020010') ?? '').replace(/\0/g, '').trim();
  if (!UNCOMPRESSED.has(ts)) {
    const what = KNOWN_REFUSED[ts] ?? (ts ? 'unknown' : 'missing');
    fail('ERR_DICOM_UNSUPPORTED', name, `transfer syntax ${ts || '(none)'} (${what}) is not supported; only uncompressed little-endian pixel data (${[...UNCOMPRESSED.keys()].join(', ')}) is read, convert the file first (e.g. dcmdjpeg / gdcmconv --raw)`);
  }
  const pixels = ds.elements.x7fe00010;
  if (!pixels) fail('ERR_DICOM_NO_PIXELS', name, 'the file has no Pixel Data (7FE0,0010): it is not an image (a report, a structured document or a presentation state?)');
  if (pixels.encapsulatedPixelData) fail('ERR_DICOM_UNSUPPORTED', name, 'Pixel Data is encapsulated (compressed) although the transfer syntax says uncompressed');

  const rows = ds.uint16('x00280010') ?? 0;
  const cols = ds.uint16('x00280011') ?? 0;
  if (rows <= 0 || cols <= 0) fail('ERR_DICOM', name, `Rows (0028,0010) and Columns (0028,0011) must be positive, got ${rows}x${cols}`);
  if (rows * cols > options.maxPixels) {
    fail('ERR_IMAGE_TOO_LARGE', name, `${cols}x${rows} is ${rows * cols} pixels, more than maxPixels = ${options.maxPixels}`);
  }
  const spp = ds.uint16('x00280002') ?? 1;
  const photometric = (ds.string('x00280004') ?? '').trim().toUpperCase();
  const bitsAllocated = ds.uint16('x00280100') ?? 0;
  const bitsStored = ds.uint16('x00280101') ?? bitsAllocated;
  const highBit = ds.uint16('x00280102') ?? bitsStored - 1;
  const signed = (ds.uint16('x00280103') ?? 0) === 1;
  const frames = ds.intString('x00280008') ?? 1;
  if (!Number.isInteger(frames) || frames < 1) fail('ERR_DICOM', name, `Number of Frames (0028,0008) must be a positive integer, got ${String(frames)}`);
  const frame = options.frame ?? 0;
  if (frame >= frames) fail('ERR_INVALID_OPTION', name, `frame ${frame} was asked for but the file has ${frames} frame${frames === 1 ? '' : 's'} (0..${frames - 1})`);

  const info: DicomInfo = { transferSyntax: ts, photometric, frames, bitsAllocated };
  const n = rows * cols;

  if (photometric === 'RGB' || photometric === 'YBR_FULL') {
    if (spp !== 3 || bitsAllocated !== 8) fail('ERR_DICOM_UNSUPPORTED', name, `${photometric} with ${spp} samples of ${bitsAllocated} bits is not supported (3 x 8 bits is)`);
    if (options.window) fail('ERR_INVALID_OPTION', name, `window applies to greyscale (MONOCHROME1/2) images; this one is ${photometric}`);
    const frameBytes = n * 3;
    const at = pixels.dataOffset + frame * frameBytes;
    if (pixels.length < (frame + 1) * frameBytes || at + frameBytes > bytes.length) {
      fail('ERR_DICOM', name, `Pixel Data holds ${Math.min(pixels.length, bytes.length - pixels.dataOffset)} bytes, ${frames} frame(s) of ${cols}x${rows} RGB need ${frames * frameBytes} (truncated file?)`);
    }
    const src = bytes.subarray(at, at + frameBytes);
    const planar = (ds.uint16('x00280006') ?? 0) === 1;
    let data: Uint8Array;
    if (!planar) data = Uint8Array.from(src);
    else {
      data = new Uint8Array(frameBytes);
      for (let i = 0; i < n; i++) {
        data[i * 3] = src[i];
        data[i * 3 + 1] = src[n + i];
        data[i * 3 + 2] = src[2 * n + i];
      }
    }
    if (photometric === 'YBR_FULL') ybrFullToRgb(data);
    return { image: { width: cols, height: rows, data }, info };
  }

  if (photometric !== 'MONOCHROME1' && photometric !== 'MONOCHROME2') {
    fail('ERR_DICOM_UNSUPPORTED', name, `Photometric Interpretation ${photometric || '(none)'} is not supported (MONOCHROME1, MONOCHROME2, RGB and YBR_FULL are)`);
  }
  if (spp !== 1) fail('ERR_DICOM', name, `${photometric} needs Samples per Pixel 1, got ${spp}`);
  if (bitsAllocated !== 8 && bitsAllocated !== 16) fail('ERR_DICOM_UNSUPPORTED', name, `Bits Allocated ${bitsAllocated} is not supported (8 and 16 are)`);
  if (bitsStored < 1 || bitsStored > bitsAllocated || highBit < bitsStored - 1 || highBit >= bitsAllocated) {
    fail('ERR_DICOM', name, `Bits Stored ${bitsStored} / High Bit ${highBit} do not fit Bits Allocated ${bitsAllocated}`);
  }
  const bytesPer = bitsAllocated / 8;
  const frameBytes = n * bytesPer;
  const at = pixels.dataOffset + frame * frameBytes;
  if (pixels.length < (frame + 1) * frameBytes || at + frameBytes > bytes.length) {
    fail('ERR_DICOM', name, `Pixel Data holds ${Math.min(pixels.length, bytes.length - pixels.dataOffset)} bytes, frame ${frame} of ${cols}x${rows} x ${bitsAllocated} bits needs bytes up to ${(frame + 1) * frameBytes} (truncated file?)`);
  }

  const slope = ds.floatString('x00281053') ?? 1;
  const intercept = ds.floatString('x00281052') ?? 0;
  if (!Number.isFinite(slope) || !Number.isFinite(intercept)) fail('ERR_DICOM', name, `Rescale Slope / Intercept must be numbers, got ${slope} / ${intercept}`);
  const view = new DataView(bytes.buffer, bytes.byteOffset + at, frameBytes);
  const shift = highBit + 1 - bitsStored;
  const mask = bitsStored >= 32 ? 0xffffffff : (1 << bitsStored) - 1;
  const sign = 1 << (bitsStored - 1);
  const values = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const raw = bytesPer === 1 ? view.getUint8(i) : view.getUint16(i * 2, true);
    let v = (raw >> shift) & mask;
    if (signed && v & sign) v -= sign * 2;
    values[i] = v * slope + intercept;
  }

  let win = options.window;
  if (!win) {
    const c = ds.floatString('x00281050', 0);
    const w = ds.floatString('x00281051', 0);
    if (c !== undefined && w !== undefined && Number.isFinite(c) && Number.isFinite(w) && w > 0) win = { center: c, width: w };
  }
  const fn = (ds.string('x00281056') ?? 'LINEAR').trim().toUpperCase() || 'LINEAR';
  if (fn !== 'LINEAR' && fn !== 'LINEAR_EXACT' && fn !== 'SIGMOID') fail('ERR_DICOM_UNSUPPORTED', name, `VOI LUT Function ${fn} is not supported (LINEAR, LINEAR_EXACT, SIGMOID are)`);
  const gray = win ? windowTo8(values, win, fn) : minMaxTo8(values);
  if (win) info.window = win;
  const invert = photometric === 'MONOCHROME1';
  const data = new Uint8Array(n * 3);
  for (let i = 0; i < n; i++) {
    const g = invert ? 255 - gray[i] : gray[i];
    data[i * 3] = g;
    data[i * 3 + 1] = g;
    data[i * 3 + 2] = g;
  }
  return { image: { width: cols, height: rows, data }, info };
}
