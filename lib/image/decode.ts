/**
 * Any supported image file or buffer to 8-bit RGB: DICOM through lib/image/dicom.ts, everything
 * else through sharp (libvips: PNG, JPEG, WebP, TIFF). The header is read before any pixel so
 * that a file claiming 40000 x 40000 pixels is refused without decoding it.
 *
 * Like PIL's convert('RGB') in the reference: alpha is dropped (not composited), grey is copied to
 * the three channels, EXIF orientation is not applied, the first page of a multi-page file is
 * read. 16-bit samples become 8-bit with round(v / 257) (PIL would clip them at 255), or through
 * the caller's window.
 */
import { readFile, stat } from 'node:fs/promises';
import type { Metadata, OutputInfo } from 'sharp';
import { HealthGPTError } from '../errors.js';
import { decodeDicom, isDicom, validateWindow, windowTo8, type DicomInfo, type VoiWindow } from './dicom.js';
import { isDicomdir, pickFromDicomdir, pickFromFolder, readHead } from './dicom-series.js';
import type { RgbImage } from './image.js';
import { sharp } from './lazy.js';

export type ImageInput = string | Uint8Array;
export type ImageFormat = 'png' | 'jpeg' | 'webp' | 'tiff' | 'dicom';

export interface ImageDecodeOptions {
  /** refuse images with more pixels than this (memory bound); default 50e6 */
  maxPixels?: number;
  /** refuse DICOM files larger than this many bytes (they are read whole); default 512 MiB */
  maxFileBytes?: number;
  /**
   * VOI window, LINEAR: on the rescaled values of a greyscale DICOM, on the raw samples of other
   * images; default: the DICOM file's window, else min..max; other images are not windowed
   */
  window?: VoiWindow;
  /** frame of a multi-frame DICOM; default 0 */
  frame?: number;
}

export interface DecodedImage extends RgbImage {
  format: ImageFormat;
  /** bits per sample of the source */
  bitDepth: number;
  dicom?: DicomInfo;
}

export const DEFAULT_MAX_PIXELS = 50_000_000;
export const DEFAULT_MAX_FILE_BYTES = 512 * 1024 * 1024;
const SHARP_FORMATS = new Set(['png', 'jpeg', 'webp', 'tiff']);

interface Limits {
  maxPixels: number;
  maxFileBytes: number;
  window?: VoiWindow;
  frame?: number;
}

function validateDecode(o: ImageDecodeOptions): Limits {
  if (o === null || typeof o !== 'object') throw new HealthGPTError('ERR_INVALID_ARG', `options must be an object, got ${String(o)}`);
  for (const k of ['maxPixels', 'maxFileBytes'] as const) {
    const v = o[k];
    if (v !== undefined && (!Number.isSafeInteger(v) || v < 1)) throw new HealthGPTError('ERR_INVALID_ARG', `${k} must be a positive integer, got ${String(v)}`);
  }
  if (o.frame !== undefined && (!Number.isInteger(o.frame) || o.frame < 0)) throw new HealthGPTError('ERR_INVALID_ARG', `frame must be a non-negative integer, got ${String(o.frame)}`);
  return {
    maxPixels: o.maxPixels ?? DEFAULT_MAX_PIXELS,
    maxFileBytes: o.maxFileBytes ?? DEFAULT_MAX_FILE_BYTES,
    window: validateWindow(o.window),
    frame: o.frame,
  };
}

function readError(path: string, err: unknown): HealthGPTError {
  const e = err as NodeJS.ErrnoException;
  const why = e?.code === 'ENOENT' ? 'no such file' : e?.code === 'EISDIR' ? 'it is a directory' : e?.code === 'EACCES' ? 'permission denied' : String(e?.message ?? err);
  return new HealthGPTError('ERR_IMAGE_READ', `cannot read image file ${path}: ${why}`, { cause: err });
}

/** Samples (1 or 3 channels, 8 or 16 bits) to RGB bytes. */
function toRgb(samples: Uint8Array | Uint16Array, channels: number, n: number, bits: number, window?: VoiWindow): Uint8Array {
  let eight: Uint8Array;
  if (window) eight = windowTo8(Float64Array.from(samples), window, 'LINEAR');
  else if (bits === 16) {
    eight = new Uint8Array(samples.length);
    for (let i = 0; i < samples.length; i++) eight[i] = Math.floor(samples[i] / 257 + 0.5);
  } else eight = samples as Uint8Array;
  if (channels === 3) return eight === samples ? Uint8Array.from(eight) : eight;
  const out = new Uint8Array(n * 3);
  for (let i = 0; i < n; i++) out[i * 3] = out[i * 3 + 1] = out[i * 3 + 2] = eight[i];
  return out;
}

async function decodeWithSharp(input: string | Buffer, name: string, limits: Limits): Promise<DecodedImage> {
  let meta: Metadata;
  try {
    // header only; no pixel limit here so that the size can be reported below
    meta = await sharp()(input, { limitInputPixels: false }).metadata();
  } catch (err) {
    const msg = (err as Error).message ?? String(err);
    const hint = /unsupported image format/.test(msg) ? 'not an image in a supported format (PNG, JPEG, WebP, TIFF, DICOM)' : `not a readable image (${msg})`;
    throw new HealthGPTError('ERR_IMAGE_DECODE', `${name}: ${hint}`, { cause: err });
  }
  const format = meta.format as string;
  if (!SHARP_FORMATS.has(format)) throw new HealthGPTError('ERR_IMAGE_FORMAT', `${name}: ${format} images are not supported (PNG, JPEG, WebP, TIFF, DICOM are)`);
  const w = meta.width ?? 0;
  const h = meta.height ?? 0;
  if (w < 1 || h < 1) throw new HealthGPTError('ERR_IMAGE_DECODE', `${name}: the image is ${w}x${h} pixels`);
  if (w * h > limits.maxPixels) throw new HealthGPTError('ERR_IMAGE_TOO_LARGE', `${name}: ${w}x${h} is ${w * h} pixels, more than maxPixels = ${limits.maxPixels}`);
  const depth = meta.depth;
  if (depth !== 'uchar' && depth !== 'ushort') throw new HealthGPTError('ERR_IMAGE_FORMAT', `${name}: ${depth} samples are not supported (8- and 16-bit integer samples are)`);

  let data: Buffer;
  let info: OutputInfo;
  try {
    let pipeline = sharp()(input, { limitInputPixels: limits.maxPixels, failOn: 'error' }).removeAlpha();
    // left alone, sharp converts 16-bit samples to sRGB's 8-bit range (v >> 8) even in a ushort buffer
    if (depth === 'ushort') pipeline = pipeline.toColourspace((meta.channels ?? 1) <= 2 ? 'grey16' : 'rgb16');
    ({ data, info } = await pipeline.raw({ depth }).toBuffer({ resolveWithObject: true }));
  } catch (err) {
    throw new HealthGPTError('ERR_IMAGE_DECODE', `${name}: the ${format} data cannot be decoded (${(err as Error).message ?? String(err)}; truncated or corrupt?)`, { cause: err });
  }
  const n = info.width * info.height;
  const ch = info.channels;
  if (ch !== 1 && ch !== 3) throw new HealthGPTError('ERR_IMAGE_FORMAT', `${name}: ${ch} colour channels after dropping alpha (CMYK?) are not supported`);
  const bits = depth === 'ushort' ? 16 : 8;
  const samples = bits === 16 ? new Uint16Array(n * ch) : new Uint8Array(data.buffer, data.byteOffset, n * ch);
  if (bits === 16) {
    const view = new DataView(data.buffer, data.byteOffset, data.length);
    for (let i = 0; i < n * ch; i++) (samples as Uint16Array)[i] = view.getUint16(i * 2, true);
  }
  return { width: info.width, height: info.height, data: toRgb(samples, ch, n, bits, limits.window), format: format as ImageFormat, bitDepth: bits };
}

async function dicomImage(bytes: Uint8Array, name: string, limits: Limits): Promise<DecodedImage> {
  const { image, info } = await decodeDicom(bytes, name, { window: limits.window, frame: limits.frame, maxPixels: limits.maxPixels, maxInflatedBytes: limits.maxFileBytes });
  return { ...image, format: 'dicom', bitDepth: info.bitsAllocated, dicom: info };
}

async function readDicomFile(path: string, limits: Limits): Promise<Uint8Array> {
  try {
    const { size } = await stat(path);
    if (size > limits.maxFileBytes) throw new HealthGPTError('ERR_IMAGE_TOO_LARGE', `${path}: ${size} bytes, more than maxFileBytes = ${limits.maxFileBytes}`);
    return await readFile(path);
  } catch (err) {
    throw err instanceof HealthGPTError ? err : readError(path, err);
  }
}

/**
 * Decodes an image file (path) or its bytes to 8-bit RGB. A path may also be a folder of DICOM
 * files or a DICOMDIR holding one image (several are listed in the error). Errors are
 * HealthGPTErrors: ERR_IMAGE_READ, ERR_IMAGE_DECODE, ERR_IMAGE_FORMAT, ERR_IMAGE_TOO_LARGE,
 * ERR_DICOM, ERR_DICOM_UNSUPPORTED, ERR_DICOM_NO_PIXELS, ERR_DICOM_AMBIGUOUS,
 * ERR_INVALID_ARG.
 */
export async function decodeImage(input: ImageInput, options: ImageDecodeOptions = {}): Promise<DecodedImage> {
  const limits = validateDecode(options);
  if (typeof input === 'string') {
    let head: Uint8Array;
    try {
      if ((await stat(input)).isDirectory()) input = await pickFromFolder(input);
      head = await readHead(input, 132);
    } catch (err) {
      throw err instanceof HealthGPTError ? err : readError(input, err);
    }
    if (isDicom(head)) {
      let bytes = await readDicomFile(input, limits);
      if (isDicomdir(bytes)) {
        input = await pickFromDicomdir(bytes, input);
        bytes = await readDicomFile(input, limits);
      }
      return dicomImage(bytes, input, limits);
    }
    if (limits.frame !== undefined) throw new HealthGPTError('ERR_INVALID_ARG', `frame applies to DICOM files only; ${input} is not one`);
    return decodeWithSharp(input, input, limits);
  }
  if (!(input instanceof Uint8Array)) throw new HealthGPTError('ERR_INVALID_ARG', `image must be a file path or a Uint8Array/Buffer of file bytes, got ${Object.prototype.toString.call(input)}`);
  if (input.length === 0) throw new HealthGPTError('ERR_IMAGE_DECODE', 'image buffer: it is empty (0 bytes)');
  if (isDicom(input)) return dicomImage(input, 'image buffer (DICOM)', limits);
  if (limits.frame !== undefined) throw new HealthGPTError('ERR_INVALID_ARG', 'frame applies to DICOM files only; the image buffer is not one');
  return decodeWithSharp(Buffer.from(input.buffer, input.byteOffset, input.length), 'image buffer', limits);
}
