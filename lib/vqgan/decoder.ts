/**
 * The VQGAN of HealthGPT's image generation (taming GumbelVQ f8, 8192 codes) from a GGUF
 * file (native/models/vqgan.h documents the layout): 1024 code indices (the generated
 * <idx_k> tokens, k = index, row-major over the 32 x 32 latent) to a 256 x 256 RGB image,
 * and an image back to its indices. Work runs off the JS thread.
 */
import { HealthGPTError, wrapNative } from '../errors.js';
import { Mutex } from '../model/queue.js';
import { gpuId, MAX_THREADS, native, validateGpu, type GpuOption, type NativeVqgan, type NativeVqganInfo } from '../native.js';

/** The VQGAN's sizes and where it runs. */
export type VqganInfo = NativeVqganInfo;

export interface DecodedImage {
  /** height * width * 3 bytes, row-major RGB (taming's custom_to_pil: clamp, (x + 1) / 2 * 255, truncated) */
  rgb: Uint8Array;
  width: number;
  height: number;
  /** the decoder's output before the clamp: 3 * height * width floats, channel-major, about [-1, 1] */
  chw: Float32Array;
}

/** An image to encode: row-major RGB bytes (as decode() returns them), or CHW floats in [-1, 1]. */
export type VqganInput = { rgb: Uint8Array; width: number; height: number } | Float32Array;

export interface VqganLoadOptions {
  /** default: one per core */
  threads?: number;
  /** 'auto' runs on the CPU for now (`info.backend` says why); 'cuda' fails: the VQGAN has no CUDA implementation yet. Default false. */
  gpu?: GpuOption;
}

export class Vqgan {
  readonly path: string;
  readonly info: VqganInfo;
  private handle: NativeVqgan | undefined;

  private constructor(path: string, handle: NativeVqgan) {
    this.path = path;
    this.handle = handle;
    this.info = handle.info();
  }

  static async load(path: string, options: VqganLoadOptions = {}): Promise<Vqgan> {
    if (typeof path !== 'string' || path === '') throw new HealthGPTError('ERR_INVALID_ARG', 'path must be a non-empty string');
    const t = options.threads;
    if (t !== undefined && (!Number.isInteger(t) || t < 0 || t > MAX_THREADS)) throw new HealthGPTError('ERR_INVALID_ARG', `threads must be an integer in 0..${MAX_THREADS}, got ${String(t)}`);
    validateGpu(options.gpu);
    try {
      return new Vqgan(path, await native().Vqgan.load(path, { threads: t, gpu: gpuId(options.gpu) }));
    } catch (err) {
      throw wrapNative(err);
    }
  }

  /** one job at a time: the rest wait here, not on a thread of libuv's pool */
  private readonly lock = new Mutex();

  private live(): NativeVqgan {
    if (!this.handle) throw new HealthGPTError('ERR_DISPOSED', 'the VQGAN has been disposed');
    return this.handle;
  }

  /** latent^2 code indices (integers in [0, nEmbed)) to an image. */
  async decode(indices: Int32Array | ArrayLike<number>): Promise<DecodedImage> {
    this.live();
    const { latent, nEmbed, resolution } = this.info;
    if (indices.length !== latent * latent) throw new HealthGPTError('ERR_INVALID_ARG', `indices has ${indices.length} values, expected ${latent * latent} (${latent} x ${latent})`);
    let idx: Int32Array;
    if (indices instanceof Int32Array) {
      idx = indices;
    } else {
      idx = new Int32Array(indices.length);
      for (let i = 0; i < indices.length; i++) {
        const v = indices[i];
        if (!Number.isInteger(v) || v < 0 || v >= nEmbed) throw new HealthGPTError('ERR_INVALID_ARG', `indices[${i}] = ${String(v)} is not a code index in [0, ${nEmbed})`);
        idx[i] = v;
      }
    }
    try {
      const out = await this.lock.run(async () => this.live().decode(idx));
      return { rgb: out.rgb, chw: out.chw, width: resolution, height: resolution };
    } catch (err) {
      throw wrapNative(err, 'vqgan decode');
    }
  }

  /** An image of resolution x resolution pixels to its latent^2 code indices (argmax, deterministic). */
  async encode(image: VqganInput): Promise<Int32Array> {
    this.live();
    const { resolution, inChannels } = this.info;
    let chw: Float32Array;
    if (image instanceof Float32Array) {
      chw = image;
    } else {
      const { rgb, width, height } = image;
      if (width !== resolution || height !== resolution) throw new HealthGPTError('ERR_INVALID_ARG', `image is ${width}x${height}, expected ${resolution}x${resolution} (resize it first)`);
      if (!(rgb instanceof Uint8Array) || rgb.length !== width * height * inChannels) throw new HealthGPTError('ERR_INVALID_ARG', `rgb must be a Uint8Array of ${width * height * inChannels} bytes`);
      // taming's preprocessing: x / 127.5 - 1, channel-major
      const n = width * height;
      chw = new Float32Array(n * inChannels);
      for (let p = 0; p < n; p++) for (let c = 0; c < inChannels; c++) chw[c * n + p] = rgb[p * inChannels + c] / 127.5 - 1;
    }
    try {
      return await this.lock.run(async () => this.live().encode(chw));
    } catch (err) {
      throw wrapNative(err, 'vqgan encode');
    }
  }

  /** Frees the weights off the JS thread (once a running call finishes). A call in flight rejects and later calls throw ERR_DISPOSED. */
  dispose(): void {
    this.handle?.dispose();
    this.handle = undefined;
  }
}
