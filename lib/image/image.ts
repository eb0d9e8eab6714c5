/** The in-memory image every lib/image step passes on: 8-bit RGB, rows top to bottom, interleaved. */
import { HealthGPTError } from '../errors.js';

export interface RgbImage {
  width: number;
  height: number;
  /** width * height * 3 bytes: R, G, B per pixel, row-major */
  data: Uint8Array;
}

/** Throws ERR_INVALID_ARG naming `what` unless `img` is a well-formed RgbImage. */
export function checkRgbImage(img: RgbImage, what = 'image'): void {
  if (img === null || typeof img !== 'object') throw new HealthGPTError('ERR_INVALID_ARG', `${what} must be an object { width, height, data }, got ${String(img)}`);
  for (const k of ['width', 'height'] as const) {
    const v = img[k];
    if (!Number.isInteger(v) || v <= 0) throw new HealthGPTError('ERR_INVALID_ARG', `${what}.${k} must be a positive integer, got ${String(v)}`);
  }
  if (!(img.data instanceof Uint8Array)) throw new HealthGPTError('ERR_INVALID_ARG', `${what}.data must be a Uint8Array (RGB bytes), got ${Object.prototype.toString.call(img.data)}`);
  const want = img.width * img.height * 3;
  if (img.data.length !== want) throw new HealthGPTError('ERR_INVALID_ARG', `${what}.data has ${img.data.length} bytes; ${img.width}x${img.height} RGB needs ${want}`);
}
