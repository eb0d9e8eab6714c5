/**
 * The vision tower's input, as HealthGPT prepares it for comprehension and generation alike
 * (llava/demo com_infer.py and gen_infer.py): expand2square with the CLIP mean colour, then
 * CLIPImageProcessor (shortest edge 336 bicubic, centre crop 336, x / 255, CLIP mean/std,
 * channels first). After the padding the image is square, so the resize gives size x size and
 * the centre crop keeps everything; without padding (pad: false) both matter.
 */
import { HealthGPTError } from '../errors.js';
import { checkRgbImage, type RgbImage } from './image.js';
import { imageRows, resample, type RowSource } from './resample.js';

export const CLIP_MEAN = [0.48145466, 0.4578275, 0.40821073] as const;
export const CLIP_STD = [0.26862954, 0.26130258, 0.27577711] as const;
/** openai/clip-vit-large-patch14-336 */
export const CLIP_IMAGE_SIZE = 336;
/**
 * expand2square's fill: HealthGPT writes tuple(int(x * 255) for x in image_mean), and int()
 * truncates, so (122, 116, 104); rounding would have given (123, 117, 104).
 */
export const PAD_BACKGROUND: readonly [number, number, number] = [Math.trunc(CLIP_MEAN[0] * 255), Math.trunc(CLIP_MEAN[1] * 255), Math.trunc(CLIP_MEAN[2] * 255)];
/** the VQGAN's image side (f8, 32 x 32 latent) */
export const VQGAN_IMAGE_SIZE = 256;

export interface PreprocessOptions {
  /** output side in pixels; default 336 (smaller for tiny test towers) */
  size?: number;
  /** pad to a square with the mean colour first, as HealthGPT does; default true */
  pad?: boolean;
}

const MAX_SIZE = 4096;

function validateSize(size: unknown, name: string): number {
  if (!Number.isInteger(size) || (size as number) < 1 || (size as number) > MAX_SIZE) {
    throw new HealthGPTError('ERR_INVALID_ARG', `${name} must be an integer from 1 to ${MAX_SIZE}, got ${String(size)}`);
  }
  return size as number;
}

function validatePreprocess(o: PreprocessOptions): { size: number; pad: boolean } {
  if (o === null || typeof o !== 'object') throw new HealthGPTError('ERR_INVALID_ARG', `options must be an object, got ${String(o)}`);
  const size = validateSize(o.size ?? CLIP_IMAGE_SIZE, 'size');
  if (o.pad !== undefined && typeof o.pad !== 'boolean') throw new HealthGPTError('ERR_INVALID_ARG', `pad must be a boolean, got ${String(o.pad)}`);
  return { size, pad: o.pad ?? true };
}

/** The image centred on a side x side square of `fill` (expand2square), without building the square. */
function squareRows(img: RgbImage, fill: readonly number[]): RowSource {
  const { width: w, height: h, data } = img;
  const side = Math.max(w, h);
  const top = (side - h) >> 1;
  return {
    width: side,
    height: side,
    left: (side - w) >> 1,
    content: w,
    fill,
    row: (y) => (y < top || y >= top + h ? undefined : data.subarray((y - top) * w * 3, (y - top + 1) * w * 3)),
  };
}

/** Rows [top, top + size) and columns [left, left + size) of `img`. */
function crop(img: RgbImage, left: number, top: number, size: number): RgbImage {
  if (left === 0 && top === 0 && img.width === size && img.height === size) return img;
  const out = new Uint8Array(size * size * 3);
  for (let y = 0; y < size; y++) {
    const s = ((top + y) * img.width + left) * 3;
    out.set(img.data.subarray(s, s + size * 3), y * size * 3);
  }
  return { width: size, height: size, data: out };
}

/** The 8-bit size x size image the tower sees, before normalisation. */
export function resizeForClip(img: RgbImage, options: PreprocessOptions = {}): RgbImage {
  checkRgbImage(img);
  const { size, pad } = validatePreprocess(options);
  if (pad) {
    const rows = squareRows(img, PAD_BACKGROUND);
    return resample(rows, size, size, 'bicubic');
  }
  // transformers' get_resize_output_image_size(default_to_square=False), then center_crop
  const { width: w, height: h } = img;
  const long = Math.trunc((size * Math.max(w, h)) / Math.min(w, h));
  const [nw, nh] = w <= h ? [size, long] : [long, size];
  const resized = resample(imageRows(img), nw, nh, 'bicubic');
  return crop(resized, (nw - size) >> 1, (nh - size) >> 1, size);
}

/** norm[c * 256 + u]: u / 255 in float64 to float32, then (x - mean) / std in float32, as numpy does. */
const NORM = (() => {
  const t = new Float32Array(3 * 256);
  for (let c = 0; c < 3; c++) {
    const m = Math.fround(CLIP_MEAN[c]);
    const s = Math.fround(CLIP_STD[c]);
    for (let u = 0; u < 256; u++) t[c * 256 + u] = Math.fround(Math.fround(Math.fround(u * (1 / 255)) - m) / s);
  }
  return t;
})();

/** 8-bit RGB (interleaved) to normalised channels-first floats. */
export function normalizeForClip(img: RgbImage): Float32Array {
  checkRgbImage(img);
  const n = img.width * img.height;
  const out = new Float32Array(3 * n);
  const d = img.data;
  for (let i = 0; i < n; i++) {
    out[i] = NORM[d[i * 3]];
    out[n + i] = NORM[256 + d[i * 3 + 1]];
    out[2 * n + i] = NORM[512 + d[i * 3 + 2]];
  }
  return out;
}

/** pixel_values for the vision tower: Float32Array of 3 x size x size, channels first. */
export function preprocessImage(img: RgbImage, options: PreprocessOptions = {}): Float32Array {
  return normalizeForClip(resizeForClip(img, options));
}

/**
 * The VQGAN encoder's input, as HealthGPT's taming idx2img.img2idx makes it for data preparation
 * and round trips: resize to size x size with Lanczos (no padding: the aspect ratio is not kept),
 * x / 255, then 2x - 1; 3 x size x size floats in [-1, 1], channels first.
 */
export function vqganInput(img: RgbImage, size: number = VQGAN_IMAGE_SIZE): Float32Array {
  checkRgbImage(img);
  validateSize(size, 'size');
  const r = resample(imageRows(img), size, size, 'lanczos');
  const n = size * size;
  const out = new Float32Array(3 * n);
  for (let i = 0; i < n; i++) {
    for (let c = 0; c < 3; c++) out[c * n + i] = Math.fround(Math.fround(2 * Math.fround(r.data[i * 3 + c] / 255)) - 1);
  }
  return out;
}
