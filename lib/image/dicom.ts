/**
 * DICOM Part 10 files to 8-bit RGB: dicom-parser reads the dataset, lib/image/dicom-*.ts the
 * pixels. Every transfer syntax of lib/image/dicom-syntax.ts (uncompressed in either byte order,
 * deflated, JPEG, lossless JPEG, JPEG-LS, JPEG 2000, HTJ2K, RLE); one frame at a time.
 *
 * Greyscale (MONOCHROME1/2): stored value -> Modality LUT (the Modality LUT Sequence, else Rescale
 * Slope / Intercept) -> VOI (the caller's window, else the file's VOI LUT Sequence, else its first
 * WindowCenter / WindowWidth with the VOI LUT Function of PS3.3 C.11.2.1.2, else the frame's own
 * min..max) mapped to 0..255, rounded half up; MONOCHROME1 inverted so that higher is brighter.
 * Colour: RGB passes through (16-bit samples as round(v / 257)); YBR_FULL and YBR_FULL_422 are
 * converted to RGB (PS3.3 C.7.6.3.1.2); JPEG and JPEG 2000 decoders return RGB themselves
 * (YBR_FULL_422 / YBR_ICT / YBR_RCT). PALETTE COLOR goes through its red, green and blue LUTs
 * (16-bit entries as round(v / 257)).
 */
import { inflateRawSync } from 'node:zlib';
import type { DataSet, Element } from 'dicom-parser';
import { HealthGPTError, type ErrorCode } from '../errors.js';
import { decodeCompressed, type CompressedEncoding } from './dicom-codecs.js';
import { frameData, readFragments, type ExtendedOffsets } from './dicom-encapsulated.js';
import { lookup, readLut, type Lut } from './dicom-lut.js';
import { expandYbr422, interleavePlanes, nativeSamples, storedValues, ybrFullToRgb, type Samples } from './dicom-pixels.js';
import { decodeRle } from './dicom-rle.js';
import { readSyntaxes, refusedName, transferSyntax, type TransferSyntax } from './dicom-syntax.js';
import type { RgbImage } from './image.js';
import { dicomParser } from './lazy.js';

export interface VoiWindow {
  center: number;
  width: number;
}

export interface DicomOptions {
  /** VOI window on the rescaled (modality) values; default: the file's VOI, else min..max */
  window?: VoiWindow;
  /** frame of a multi-frame file; default 0 */
  frame?: number;
  /** refuse frames with more pixels than this */
  maxPixels: number;
  /** refuse deflated datasets that inflate to more bytes than this; default 512 MiB */
  maxInflatedBytes?: number;
}

/** what the pixel data of a file is, besides the pixels */
export interface DicomInfo {
  transferSyntax: string;
  photometric: string;
  frames: number;
  bitsAllocated: number;
  /** the transfer syntax is lossy (JPEG baseline, JPEG-LS near-lossless, JPEG 2000, HTJ2K) */
  lossy: boolean;
  window?: VoiWindow;
}

/** One decoded frame before any LUT: what pydicom's pixel_array holds. */
export interface DicomFrame {
  width: number;
  height: number;
  /** after decoding: RGB where the JPEG / JPEG 2000 decoder converted the colours */
  photometric: string;
  samplesPerPixel: number;
  /** greyscale and palette: stored values; colour: samples, pixel-interleaved */
  values: Float64Array | Uint8Array | Uint16Array;
  info: DicomInfo;
}

const COLOUR = new Set(['RGB', 'YBR_FULL', 'YBR_FULL_422', 'YBR_ICT', 'YBR_RCT']);
const PHOTOMETRIC = [...COLOUR, 'MONOCHROME1', 'MONOCHROME2', 'PALETTE COLOR'];
const DEFAULT_MAX_INFLATED = 512 * 1024 * 1024;

/** DICOM Part 10: a 128-byte preamble, then "DICM". */
export function isDicom(head: Uint8Array): boolean {
  return head.length >= 132 && head[128] === 0x44 && head[129] === 0x49 && head[130] === 0x43 && head[131] === 0x4d;
}

function fail(code: ErrorCode, name: string, msg: string): never {
  throw new HealthGPTError(code, `${name}: ${msg}`);
}

export function validateWindow(w: unknown, name = 'window'): VoiWindow | undefined {
  if (w === undefined) return undefined;
  const o = w as VoiWindow;
  if (o === null || typeof o !== 'object' || !Number.isFinite(o.center) || !Number.isFinite(o.width) || o.width <= 0) {
    throw new HealthGPTError('ERR_INVALID_ARG', `${name} must be { center, width } with finite numbers and width > 0, got ${JSON.stringify(w)}`);
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

interface Parsed {
  ds: DataSet;
  /** the bytes the element offsets refer to (inflated for a deflated file) */
  bytes: Uint8Array;
  uid: string;
  ts: TransferSyntax;
  littleEndian: boolean;
  pixels?: { offset: number; length: number; encapsulated: boolean; float?: 32 | 64 };
  extended?: ExtendedOffsets;
}

function parseError(err: unknown, name: string): never {
  if (err instanceof HealthGPTError) throw err;
  // dicom-parser throws strings, or objects carrying `exception`
  const e = err as { exception?: unknown; message?: unknown };
  const msg = typeof err === 'string' ? err : typeof e?.exception === 'string' ? e.exception : typeof e?.message === 'string' ? e.message : String(err);
  fail('ERR_DICOM', name, `not a readable DICOM file (${msg}; truncated or corrupt?)`);
}

/** VRs whose explicit length field is 4 bytes after 2 reserved ones (PS3.5 7.1.2) */
const LONG_VR = new Set(['OB', 'OD', 'OF', 'OL', 'OV', 'OW', 'SQ', 'SV', 'UC', 'UN', 'UR', 'UT', 'UV']);

/**
 * The pixel group (7FE0) from `at`, explicit VR little endian. dicom-parser does not know the VR
 * OV of the Extended Offset Table, so parsing stops there and this reads the rest.
 */
function readPixelGroup(bytes: Uint8Array, at: number, name: string): Pick<Parsed, 'pixels' | 'extended'> {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.length);
  const out: Pick<Parsed, 'pixels' | 'extended'> = {};
  let offsets: number[] | undefined;
  let lengths: number[] | undefined;
  const u64s = (o: number, n: number): number[] => {
    const a: number[] = [];
    for (let i = 0; i + 8 <= n; i += 8) {
      const v = view.getBigUint64(o + i, true);
      if (v > BigInt(Number.MAX_SAFE_INTEGER)) fail('ERR_DICOM', name, `Extended Offset Table value ${v} is out of range`);
      a.push(Number(v));
    }
    return a;
  };
  while (at + 8 <= bytes.length) {
    const group = view.getUint16(at, true);
    const element = view.getUint16(at + 2, true);
    if (group !== 0x7fe0) break;
    const vr = String.fromCharCode(bytes[at + 4], bytes[at + 5]);
    const long = LONG_VR.has(vr);
    if (long && at + 12 > bytes.length) break;
    const length = long ? view.getUint32(at + 8, true) : view.getUint16(at + 6, true);
    const value = at + (long ? 12 : 8);
    if (element === 0x0010) {
      out.pixels = { offset: value, length, encapsulated: length === 0xffffffff };
      break;
    }
    if (length > bytes.length - value) fail('ERR_DICOM', name, `element (7FE0,${element.toString(16).padStart(4, '0')}) claims ${length} bytes, more than the file holds`);
    if (element === 0x0001) offsets = u64s(value, length);
    if (element === 0x0002) lengths = u64s(value, length);
    at = value + length;
  }
  if (offsets && lengths) out.extended = { offsets, lengths };
  return out;
}

/** dicom-parser up to `untilTag`, with a bounded inflater for deflated datasets */
function parseDataset(input: Uint8Array, name: string, maxInflated: number, untilTag: string): DataSet {
  return dicomParser().parseDicom(input, {
    untilTag,
    // bounded: a small deflated file must not inflate to gigabytes
    inflater: ((arr: Uint8Array, position: number) => {
      let inflated: Buffer;
      try {
        inflated = inflateRawSync(arr.subarray(position), { maxOutputLength: maxInflated });
      } catch (err) {
        const big = (err as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE';
        fail('ERR_DICOM', name, big ? `the deflated dataset inflates to more than ${maxInflated} bytes` : `the deflated dataset cannot be inflated (${(err as Error).message})`);
      }
      const full = new Uint8Array(position + inflated.length);
      full.set(arr.subarray(0, position));
      full.set(inflated, position);
      return full;
    }) as unknown as (arr: Uint8Array, position: number) => void,
  });
}

function parse(input: Uint8Array, name: string, maxInflated: number): Parsed {
  let ds: DataSet;
  try {
    ds = parseDataset(input, name, maxInflated, 'x7fe00001');
  } catch (err) {
    if (err instanceof HealthGPTError) throw err;
    // dicom-parser walks encapsulated fragments itself and fails vaguely on a bad one; stopped at
    // Pixel Data, lib/image/dicom-encapsulated.ts reads them and says what is wrong
    try {
      ds = parseDataset(input, name, maxInflated, 'x7fe00010');
    } catch {
      parseError(err, name);
    }
  }
  const uid = (ds.string('x00020010') ?? '').replace(/\0/g, '').trim();
  const ts = transferSyntax(uid);
  if (!ts) {
    fail('ERR_DICOM_UNSUPPORTED', name, `transfer syntax ${uid || '(none)'} (${refusedName(uid)}) is not supported; these are read: ${readSyntaxes().join(', ')}`);
  }
  const bytes = ds.byteArray as Uint8Array;
  const p: Parsed = { ds, bytes, uid, ts, littleEndian: ts.encoding !== 'big-endian' };
  const eot = ds.elements.x7fe00001;
  if (eot) Object.assign(p, readPixelGroup(bytes, eot.dataOffset - 8, name));
  else {
    const px: Element | undefined = ds.elements.x7fe00010;
    if (px) p.pixels = { offset: px.dataOffset, length: px.length, encapsulated: !!px.encapsulatedPixelData || px.hadUndefinedLength === true };
    else {
      const f32 = ds.elements.x7fe00008;
      const f64 = ds.elements.x7fe00009;
      const f = f32 ?? f64;
      if (f) p.pixels = { offset: f.dataOffset, length: f.length, encapsulated: false, float: f32 ? 32 : 64 };
    }
  }
  return p;
}

/** a US/SS value that may be signed (LUT descriptors' first value mapped) */
function descriptor(ds: DataSet, tag: string, signed: boolean): number[] {
  const el = ds.elements[tag];
  if (!el) return [];
  const out: number[] = [];
  for (let i = 0; i < Math.floor(el.length / 2); i++) out.push(i === 1 && signed ? ds.int16(tag, i)! : ds.uint16(tag, i)!);
  return out;
}

function lutData(p: Parsed, ds: DataSet, tag: string): Uint8Array {
  const el = ds.elements[tag];
  if (!el) return new Uint8Array(0);
  const end = Math.min(el.dataOffset + el.length, p.bytes.length);
  return p.bytes.subarray(el.dataOffset, Math.max(el.dataOffset, end));
}

function firstItem(ds: DataSet, tag: string): DataSet | undefined {
  return ds.elements[tag]?.items?.[0]?.dataSet;
}

/** Decodes one frame to what pydicom's pixel_array holds (see DicomFrame). */
export async function readDicomFrame(input: Uint8Array, name: string, options: Omit<DicomOptions, 'window'>): Promise<DicomFrame> {
  return frameOf(parse(input, name, options.maxInflatedBytes ?? DEFAULT_MAX_INFLATED), name, options);
}

async function frameOf(p: Parsed, name: string, options: Omit<DicomOptions, 'window'>): Promise<DicomFrame> {
  const { ds } = p;
  if (!p.pixels) fail('ERR_DICOM_NO_PIXELS', name, 'the file has no Pixel Data (7FE0,0010): it is not an image (a report, a structured document or a presentation state?)');
  const rows = ds.uint16('x00280010') ?? 0;
  const cols = ds.uint16('x00280011') ?? 0;
  if (rows <= 0 || cols <= 0) fail('ERR_DICOM', name, `Rows (0028,0010) and Columns (0028,0011) must be positive, got ${rows}x${cols}`);
  if (rows * cols > options.maxPixels) fail('ERR_IMAGE_TOO_LARGE', name, `${cols}x${rows} is ${rows * cols} pixels, more than maxPixels = ${options.maxPixels}`);
  const spp = ds.uint16('x00280002') ?? 1;
  const photometric = (ds.string('x00280004') ?? '').trim().toUpperCase();
  const float = p.pixels.float;
  const bitsAllocated = float ?? ds.uint16('x00280100') ?? 0;
  const bitsStored = float ?? ds.uint16('x00280101') ?? bitsAllocated;
  const highBit = float ? float - 1 : (ds.uint16('x00280102') ?? bitsStored - 1);
  const signed = (ds.uint16('x00280103') ?? 0) === 1;
  const frames = ds.intString('x00280008') ?? 1;
  if (!Number.isInteger(frames) || frames < 1) fail('ERR_DICOM', name, `Number of Frames (0028,0008) must be a positive integer, got ${String(frames)}`);
  const frame = options.frame ?? 0;
  if (frame >= frames) fail('ERR_INVALID_ARG', name, `frame ${frame} was asked for but the file has ${frames} frame${frames === 1 ? '' : 's'} (0..${frames - 1})`);
  const info: DicomInfo = { transferSyntax: p.uid, photometric, frames, bitsAllocated, lossy: p.ts.lossy };

  if (!PHOTOMETRIC.includes(photometric)) fail('ERR_DICOM_UNSUPPORTED', name, `Photometric Interpretation ${photometric || '(none)'} is not supported (${PHOTOMETRIC.join(', ')} are)`);
  const colour = COLOUR.has(photometric);
  if (spp !== (colour ? 3 : 1)) fail('ERR_DICOM', name, `${photometric} needs Samples per Pixel ${colour ? 3 : 1}, got ${spp}`);
  if (![1, 8, 16, 32].includes(bitsAllocated) && !(float === 64)) fail('ERR_DICOM_UNSUPPORTED', name, `Bits Allocated ${bitsAllocated} is not supported (1, 8, 16, 32 are)`);
  if (bitsStored < 1 || bitsStored > bitsAllocated || highBit < bitsStored - 1 || highBit >= bitsAllocated) {
    fail('ERR_DICOM', name, `Bits Stored ${bitsStored} / High Bit ${highBit} do not fit Bits Allocated ${bitsAllocated}`);
  }
  if (colour && (bitsAllocated > 16 || bitsAllocated === 1 || signed))
    fail('ERR_DICOM_UNSUPPORTED', name, `${photometric} with ${signed ? 'signed ' : ''}${bitsAllocated}-bit samples is not supported (unsigned 8 or 16 bits are)`);
  if (photometric === 'PALETTE COLOR' && bitsAllocated !== 8 && bitsAllocated !== 16)
    fail('ERR_DICOM_UNSUPPORTED', name, `PALETTE COLOR with ${bitsAllocated}-bit indices is not supported (8 or 16 are)`);
  if ((photometric === 'YBR_ICT' || photometric === 'YBR_RCT') && p.ts.encoding !== 'j2k' && p.ts.encoding !== 'htj2k') {
    fail('ERR_DICOM', name, `${photometric} is defined for JPEG 2000 only, not ${p.ts.name}`);
  }
  const planar = (ds.uint16('x00280006') ?? 0) === 1;
  const n = rows * cols;
  const shape = { rows, columns: cols, samplesPerPixel: spp, bitsAllocated };
  let samples: Samples;
  let decoded = photometric;
  const { encoding } = p.ts;

  if (p.pixels.encapsulated !== (encoding !== 'native' && encoding !== 'big-endian')) {
    fail(
      'ERR_DICOM',
      name,
      p.pixels.encapsulated
        ? `Pixel Data is encapsulated (compressed) although the transfer syntax says ${p.ts.name}`
        : `Pixel Data is not encapsulated although the transfer syntax says ${p.ts.name}`,
    );
  }
  if (encoding === 'native' || encoding === 'big-endian') {
    // YBR_FULL_422 stores two samples per pixel: Y for each, Cb and Cr shared by a pair
    const ybr422 = photometric === 'YBR_FULL_422';
    if (ybr422 && cols % 2 !== 0) fail('ERR_DICOM', name, `YBR_FULL_422 needs an even number of Columns, got ${cols}`);
    const count = ybr422 ? n * 2 : n * spp;
    const frameBits = count * bitsAllocated;
    const have = Math.max(0, Math.min(p.pixels.length, p.bytes.length - p.pixels.offset));
    const need = Math.ceil((frames * frameBits) / 8);
    if (have < need) {
      fail(
        'ERR_DICOM',
        name,
        `Pixel Data holds ${have} bytes; Number of Frames ${frames} x ${cols}x${rows}x${ybr422 ? 2 : spp} samples of ${bitsAllocated} bits needs ${need} (truncated file, or a wrong Number of Frames?)`,
      );
    }
    // 8-bit data written as OW in big endian comes byte-swapped in pairs
    let src = p.bytes.subarray(p.pixels.offset, p.pixels.offset + need);
    if (!p.littleEndian && bitsAllocated === 8 && p.ds.elements.x7fe00010?.vr === 'OW') {
      src = Uint8Array.from(src);
      for (let i = 0; i + 1 < src.length; i += 2) [src[i], src[i + 1]] = [src[i + 1], src[i]];
    }
    samples = nativeSamples(src, frame * frameBits, { count, bitsAllocated, littleEndian: p.littleEndian, float: !!float });
    if (ybr422) {
      samples = expandYbr422(samples, n);
      decoded = 'YBR_FULL';
    } else if (planar && spp === 3) samples = interleavePlanes(samples, n, spp);
  } else {
    const bits = encoding === 'rle' ? [8, 16, 32] : [8, 16];
    if (!bits.includes(bitsAllocated)) fail('ERR_DICOM_UNSUPPORTED', name, `${p.ts.name} with Bits Allocated ${bitsAllocated} is not supported (${bits.join(' or ')} are)`);
    const enc = readFragments(p.bytes, p.pixels.offset, name);
    const data = frameData(enc, frames, frame, name, p.extended);
    if (encoding === 'rle') {
      const bytes = decodeRle(data, n, spp, bitsAllocated, name);
      samples = nativeSamples(bytes, 0, { count: n * spp, bitsAllocated, littleEndian: true, float: false });
    } else {
      samples = await decodeCompressed(encoding as CompressedEncoding, data, shape, name);
      // libjpeg converts YCbCr itself; JPEG 2000 decoders undo the MCT of YBR_ICT / YBR_RCT
      if (spp === 3 && (encoding === 'jpeg' || photometric === 'YBR_ICT' || photometric === 'YBR_RCT')) decoded = 'RGB';
      if (decoded === 'YBR_FULL_422') decoded = 'YBR_FULL';
    }
  }
  if (colour) {
    const values = samples instanceof Uint8Array || samples instanceof Uint16Array ? samples : Uint16Array.from(samples);
    return { width: cols, height: rows, photometric: decoded, samplesPerPixel: 3, values, info };
  }
  // codecs return right-aligned values; uncompressed data keeps its High Bit
  const shift = encoding === 'native' || encoding === 'big-endian' ? highBit + 1 - bitsStored : 0;
  return { width: cols, height: rows, photometric, samplesPerPixel: 1, values: storedValues(samples, bitsStored, shift, signed), info };
}

function to8From16(v: number): number {
  return Math.floor(v / 257 + 0.5);
}

/** The Modality LUT of PS3.3 C.11.1: the Modality LUT Sequence, else Rescale Slope / Intercept. */
function modality(p: Parsed, values: Float64Array, signed: boolean, name: string): Float64Array {
  const item = firstItem(p.ds, 'x00283000');
  if (item) {
    const lut = readLut(descriptor(item, 'x00283002', signed), lutData(p, item, 'x00283006'), p.littleEndian, [8, 16], 'Modality LUT Sequence', name);
    return values.map((v) => lookup(lut, v));
  }
  const slope = p.ds.floatString('x00281053') ?? 1;
  const intercept = p.ds.floatString('x00281052') ?? 0;
  if (!Number.isFinite(slope) || !Number.isFinite(intercept)) fail('ERR_DICOM', name, `Rescale Slope / Intercept must be numbers, got ${slope} / ${intercept}`);
  if (slope !== 1 || intercept !== 0) for (let i = 0; i < values.length; i++) values[i] = values[i] * slope + intercept;
  return values;
}

/** The VOI LUT stage to 0..255 (see the file comment for the order of choices). */
function voiTo8(p: Parsed, values: Float64Array, info: DicomInfo, window: VoiWindow | undefined, name: string): Uint8Array {
  if (window) {
    info.window = window;
    return windowTo8(values, window, 'LINEAR');
  }
  const item = firstItem(p.ds, 'x00283010');
  if (item) {
    // the LUT's input is the Modality LUT's output, which may be signed
    const lut: Lut = readLut(descriptor(item, 'x00283002', true), lutData(p, item, 'x00283006'), p.littleEndian, [8, 16], 'VOI LUT Sequence', name);
    const top = 2 ** lut.bits - 1;
    return Uint8Array.from(values, (v) => Math.floor((lookup(lut, v) / top) * 255 + 0.5));
  }
  const c = p.ds.floatString('x00281050', 0);
  const w = p.ds.floatString('x00281051', 0);
  const fn = (p.ds.string('x00281056') ?? 'LINEAR').trim().toUpperCase() || 'LINEAR';
  if (fn !== 'LINEAR' && fn !== 'LINEAR_EXACT' && fn !== 'SIGMOID') fail('ERR_DICOM_UNSUPPORTED', name, `VOI LUT Function ${fn} is not supported (LINEAR, LINEAR_EXACT, SIGMOID are)`);
  if (c !== undefined && w !== undefined && Number.isFinite(c) && Number.isFinite(w) && w > 0) {
    info.window = { center: c, width: w };
    return windowTo8(values, info.window, fn);
  }
  return minMaxTo8(values);
}

function palette(p: Parsed, values: Float64Array, signed: boolean, name: string): Uint8Array {
  const out = new Uint8Array(values.length * 3);
  ['Red', 'Green', 'Blue'].forEach((colour, c) => {
    const el = 0x1101 + c;
    if (p.ds.elements[`x0028${(0x1221 + c).toString(16)}`] && !p.ds.elements[`x0028${(0x1201 + c).toString(16)}`]) {
      fail('ERR_DICOM_UNSUPPORTED', name, 'segmented Palette Color LUTs are not supported');
    }
    const lut = readLut(descriptor(p.ds, `x0028${el.toString(16)}`, signed), lutData(p, p.ds, `x0028${(0x1201 + c).toString(16)}`), p.littleEndian, [8, 16], `${colour} Palette Color LUT`, name);
    for (let i = 0; i < values.length; i++) {
      const v = lookup(lut, values[i]);
      out[i * 3 + c] = lut.bits === 8 ? v : to8From16(v);
    }
  });
  return out;
}

/** Decodes one frame of a DICOM Part 10 file held in `bytes`; `name` names it in errors. */
export async function decodeDicom(bytes: Uint8Array, name: string, options: DicomOptions): Promise<{ image: RgbImage; info: DicomInfo }> {
  const p = parse(bytes, name, options.maxInflatedBytes ?? DEFAULT_MAX_INFLATED);
  const f = await frameOf(p, name, options);
  const { info } = f;
  const n = f.width * f.height;
  const signed = (p.ds.uint16('x00280103') ?? 0) === 1;
  const image = (data: Uint8Array) => ({ image: { width: f.width, height: f.height, data }, info });
  if (f.samplesPerPixel === 3 || f.photometric === 'PALETTE COLOR') {
    if (options.window) fail('ERR_INVALID_ARG', name, `window applies to greyscale (MONOCHROME1/2) images; this one is ${info.photometric}`);
    if (f.photometric === 'PALETTE COLOR') return image(palette(p, f.values as Float64Array, signed, name));
    const v = f.values as Uint8Array | Uint16Array;
    if (f.photometric === 'YBR_FULL' && v instanceof Uint16Array) fail('ERR_DICOM_UNSUPPORTED', name, 'YBR_FULL with 16-bit samples is not supported');
    const data = v instanceof Uint8Array ? Uint8Array.from(v) : Uint8Array.from(v, to8From16);
    if (f.photometric === 'YBR_FULL') ybrFullToRgb(data);
    return image(data);
  }
  const gray = voiTo8(p, modality(p, f.values as Float64Array, signed, name), info, options.window, name);
  const invert = f.photometric === 'MONOCHROME1';
  const data = new Uint8Array(n * 3);
  for (let i = 0; i < n; i++) data[i * 3] = data[i * 3 + 1] = data[i * 3 + 2] = invert ? 255 - gray[i] : gray[i];
  return image(data);
}
