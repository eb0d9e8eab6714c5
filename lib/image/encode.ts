/**
 * Images out, for the generation half: the VQGAN decoder's float output to 8-bit RGB the way
 * HealthGPT's idx2img does it, and RGB bytes to PNG with sharp.
 */
import { writeFile } from 'node:fs/promises';
import { HealthGPTError } from '../errors.js';
import { checkRgbImage, type RgbImage } from './image.js';
import { sharp } from './lazy.js';

/**
 * Decoder output (3 x height x width floats, channels first, nominally in [-1, 1]) to RGB bytes:
 * clamp to [-1, 1], (x + 1) / 2, * 255, truncated, each step in float32 as taming's custom_to_pil.
 */
export function decoderOutputToImage(chw: Float32Array, width: number, height: number): RgbImage {
  if (!(chw instanceof Float32Array)) throw new HealthGPTError('ERR_INVALID_ARG', `decoder output must be a Float32Array, got ${Object.prototype.toString.call(chw)}`);
  for (const [k, v] of [
    ['width', width],
    ['height', height],
  ] as const) {
    if (!Number.isInteger(v) || v <= 0) throw new HealthGPTError('ERR_INVALID_ARG', `${k} must be a positive integer, got ${String(v)}`);
  }
  const n = width * height;
  if (chw.length !== 3 * n) throw new HealthGPTError('ERR_INVALID_ARG', `decoder output has ${chw.length} values; 3 x ${height} x ${width} needs ${3 * n}`);
  const data = new Uint8Array(3 * n);
  for (let c = 0; c < 3; c++) {
    for (let i = 0; i < n; i++) {
      let x = chw[c * n + i];
      // NaN would be undefined behaviour in the reference's astype; black is the sane answer
      if (!(x >= -1)) x = -1;
      else if (x > 1) x = 1;
      data[i * 3 + c] = Math.trunc(Math.fround(255 * Math.fround(Math.fround(x + 1) / 2)));
    }
  }
  return { width, height, data };
}

/** RGB bytes to a PNG file's bytes (lossless). */
export async function encodePng(img: RgbImage): Promise<Buffer> {
  checkRgbImage(img);
  try {
    return await sharp()(img.data, { raw: { width: img.width, height: img.height, channels: 3 } })
      .png()
      .toBuffer();
  } catch (err) {
    throw new HealthGPTError('ERR_IMAGE_WRITE', `cannot encode ${img.width}x${img.height} PNG: ${(err as Error).message ?? String(err)}`, { cause: err });
  }
}

/** Writes RGB bytes to `path` as PNG. */
export async function writePng(path: string, img: RgbImage): Promise<void> {
  if (typeof path !== 'string' || path === '') throw new HealthGPTError('ERR_INVALID_ARG', `path must be a non-empty string, got ${String(path)}`);
  const png = await encodePng(img);
  try {
    await writeFile(path, png);
  } catch (err) {
    throw new HealthGPTError('ERR_IMAGE_WRITE', `cannot write ${path}: ${(err as Error).message ?? String(err)}`, { cause: err });
  }
}
