/**
 * The CLIP vision tower and its mlp2x_gelu projectors (native/models/clip.cpp), loaded from a
 * GGUF in llama.cpp's mmproj layout. Pixels go in already preprocessed (3 x S x S floats,
 * channels first, normalised with the tower's imageMean / imageStd); features come out as
 * nPatches rows of nEmbd floats (576 x 1024 for ViT-L/14-336), the class position dropped.
 *
 * Hierarchical perception: the comprehension tap is hidden state -2 (abstract features), the
 * generation tap hidden state 1 (concrete features); the tower runs only up to the tap.
 * Work runs off the JS thread; two calls on one tower queue in order (a JS-side lock).
 */
import { HealthGPTError, wrapNative } from '../errors.js';
import { Mutex } from '../model/queue.js';
import { gpuId, MAX_THREADS, native, validateGpu, type GpuOption, type NativeClip, type NativeClipInfo } from '../native.js';

export type VisionTap = 'comprehension' | 'generation';

/** The tower's sizes and taps, its projectors' widths and where it runs. */
export type VisionTowerInfo = NativeClipInfo;

export interface VisionLoadOptions {
  /** worker threads of the tower's pool; default one per core */
  threads?: number;
  /** 'auto' runs on the CPU for now (`info.backend` says why); 'cuda' fails: CLIP has no CUDA implementation yet. Default false. */
  gpu?: GpuOption;
}

export interface EncodeOptions {
  tap?: VisionTap;
  /** a hidden state by index (0 .. nLayer) instead of a tap, for inspection and tests */
  hiddenState?: number;
}

const TAPS: Record<VisionTap, number> = { comprehension: 0, generation: 1 };

function tapOf(tap: unknown, what: string): number {
  if (tap === undefined) return TAPS.comprehension;
  if (tap !== 'comprehension' && tap !== 'generation') throw new HealthGPTError('ERR_INVALID_ARG', `${what} must be 'comprehension' or 'generation', got ${JSON.stringify(tap)}`);
  return TAPS[tap];
}

export class VisionTower {
  readonly path: string;
  private handle: NativeClip | undefined;
  private sizes: VisionTowerInfo;

  private constructor(path: string, handle: NativeClip) {
    this.path = path;
    this.handle = handle;
    this.sizes = handle.info();
  }

  /** sizes fixed at load (the projectors' widths change with loadProjector), and where the tower runs */
  get info(): VisionTowerInfo {
    return this.sizes;
  }

  static async load(path: string, options: VisionLoadOptions = {}): Promise<VisionTower> {
    if (typeof path !== 'string' || path === '') throw new HealthGPTError('ERR_INVALID_ARG', 'path must be a non-empty string');
    const threads = options.threads;
    if (threads !== undefined && (!Number.isInteger(threads) || threads < 0 || threads > MAX_THREADS))
      throw new HealthGPTError('ERR_INVALID_ARG', `threads must be an integer in 0..${MAX_THREADS}, got ${threads}`);
    validateGpu(options.gpu);
    try {
      return new VisionTower(path, await native().Clip.load(path, { threads, gpu: gpuId(options.gpu) }));
    } catch (err) {
      throw wrapNative(err, 'VisionTower.load');
    }
  }

  /** one job at a time: the rest wait here, not on a thread of libuv's pool */
  private readonly lock = new Mutex();

  private live(): NativeClip {
    if (!this.handle) throw new HealthGPTError('ERR_DISPOSED', 'the vision tower has been disposed');
    return this.handle;
  }

  private checkPixels(pixels: Float32Array): void {
    if (!(pixels instanceof Float32Array)) throw new HealthGPTError('ERR_INVALID_ARG', 'pixels must be a Float32Array');
    const want = 3 * this.info.imageSize * this.info.imageSize;
    if (pixels.length !== want) throw new HealthGPTError('ERR_INVALID_ARG', `pixels has ${pixels.length} values, expected 3 x ${this.info.imageSize} x ${this.info.imageSize} = ${want}`);
  }

  /** An error when the tower has no such projector (a plugin's counts after loadProjector). */
  private needProjector(which: number, projector: VisionTap): void {
    const dim = which === 0 ? this.info.comprehensionProjectorDim : this.info.generationProjectorDim;
    if (dim === 0) throw new HealthGPTError('ERR_INVALID_ARG', `${this.path} has no ${projector} projector`);
  }

  /** Features of one image at a tap: nPatches x nEmbd floats, row by row. */
  async encode(pixels: Float32Array, options: EncodeOptions = {}): Promise<Float32Array> {
    this.live();
    this.checkPixels(pixels);
    const tap = tapOf(options.tap, 'tap');
    const hs = options.hiddenState;
    if (hs !== undefined && (!Number.isInteger(hs) || hs < 0 || hs > this.info.nLayer))
      throw new HealthGPTError('ERR_INVALID_ARG', `hiddenState must be an integer in 0..${this.info.nLayer}, got ${hs}`);
    try {
      return await this.lock.run(async () => this.live().encode(pixels, tap, hs));
    } catch (err) {
      throw wrapNative(err, 'encode');
    }
  }

  /** The plugin's projector (mlp2x_gelu) on rows of nEmbd floats: rows x projectorDim floats. */
  async project(features: Float32Array, projector: VisionTap = 'comprehension'): Promise<Float32Array> {
    this.live();
    const which = tapOf(projector, 'projector');
    if (!(features instanceof Float32Array)) throw new HealthGPTError('ERR_INVALID_ARG', 'features must be a Float32Array');
    this.needProjector(which, projector);
    if (features.length === 0 || features.length % this.info.nEmbd !== 0)
      throw new HealthGPTError('ERR_INVALID_ARG', `features has ${features.length} values, not a whole number of rows of ${this.info.nEmbd}`);
    try {
      return await this.lock.run(async () => this.live().project(which, features));
    } catch (err) {
      throw wrapNative(err, 'project');
    }
  }

  /**
   * An image through the tower at a tap and that tap's projector, in one call: nPatches x the
   * projector's width floats, the same numbers as project(encode(pixels, {tap}), tap). With the
   * tower on a GPU the features stay there; only the projected rows come back.
   */
  async encodeProject(pixels: Float32Array, tap: VisionTap = 'comprehension'): Promise<Float32Array> {
    this.live();
    this.checkPixels(pixels);
    const which = tapOf(tap, 'tap');
    this.needProjector(which, tap);
    try {
      return await this.lock.run(async () => this.live().encodeProject(pixels, which, which));
    } catch (err) {
      throw wrapNative(err, 'encodeProject');
    }
  }

  /**
   * Replaces a projector with the one an H-LoRA plugin file carries (mm.0 / mm.2: HealthGPT's
   * plugins bring the projector they were trained with); project() then runs it. Returns
   * false, changing nothing, when the file has none.
   */
  async loadProjector(path: string, projector: VisionTap = 'comprehension'): Promise<boolean> {
    this.live();
    const which = tapOf(projector, 'projector');
    if (typeof path !== 'string' || path === '') throw new HealthGPTError('ERR_INVALID_ARG', 'path must be a non-empty string');
    try {
      const { loaded, dim } = await this.lock.run(async () => this.live().loadProjector(which, path));
      this.sizes = { ...this.sizes, [which === 0 ? 'comprehensionProjectorDim' : 'generationProjectorDim']: dim };
      return loaded;
    } catch (err) {
      throw wrapNative(err, 'loadProjector');
    }
  }

  /** Frees the tower (weights mapping, threads) off the JS thread. A call in flight rejects and later calls throw ERR_DISPOSED. */
  dispose(): void {
    this.handle?.dispose();
    this.handle = undefined;
  }
}
