/**
 * A plugin file's own projector (README "H-LoRA plugin files": mm.0.weight [vision, d],
 * mm.0.bias [d], mm.2.weight [d, n_embd], mm.2.bias [n_embd]; mlp2x_gelu = Linear, exact GELU,
 * Linear), run with the engine's matmul off the JS thread. HealthGPT's plugins carry the
 * projector they were trained with; a session uses it in place of the vision file's.
 */
import { HealthGPTError } from '../errors.js';
import { GGUFFile } from '../gguf/file.js';
import { native } from '../native.js';

interface Linear {
  type: number;
  weight: Uint8Array;
  bias: Float32Array;
  rows: number;
  k: number;
}

type Matmul = (type: number, w: Uint8Array, rows: number, k: number, x: Float32Array, n: number, threads?: number) => Promise<Float32Array>;

/** erf in double precision: Maclaurin series below 3, erfc's continued fraction above. */
export function erf(x: number): number {
  const ax = Math.abs(x);
  if (ax < 3) {
    let term = ax;
    let sum = ax;
    for (let n = 1; n < 80; n++) {
      term *= (-ax * ax) / n;
      const t = term / (2 * n + 1);
      sum += t;
      if (Math.abs(t) < 1e-17 * Math.abs(sum)) break;
    }
    return Math.sign(x) * sum * (2 / Math.sqrt(Math.PI));
  }
  if (ax > 6) return Math.sign(x);
  let f = ax;
  for (let n = 60; n >= 1; n--) f = ax + n / 2 / f;
  return Math.sign(x) * (1 - Math.exp(-ax * ax) / Math.sqrt(Math.PI) / f);
}

export class PluginProjector {
  private constructor(
    readonly path: string,
    private readonly l0: Linear,
    private readonly l2: Linear,
  ) {}

  get inputDim(): number {
    return this.l0.k;
  }

  get outputDim(): number {
    return this.l2.rows;
  }

  /** The projector of a plugin file, or undefined when it has none. */
  static async fromFile(path: string): Promise<PluginProjector | undefined> {
    const f = GGUFFile.open(path);
    try {
      if (f.tensorIndex('mm.0.weight') < 0) return undefined; // the plugin reader checks the set is whole
      const linear = async (name: string): Promise<Linear> => {
        const wi = f.tensorIndex(`${name}.weight`);
        const bi = f.tensorIndex(`${name}.bias`);
        if (wi < 0 || bi < 0) throw new HealthGPTError('ERR_INVALID_FILE', `${path}: the projector needs ${name}.weight and ${name}.bias`);
        const t = f.info.tensors[wi]!;
        const bias = await f.convertTensor(bi, 0);
        return {
          type: t.typeId,
          weight: new Uint8Array(await f.tensorData(wi)),
          bias: new Float32Array(bias.buffer.slice(bias.byteOffset, bias.byteOffset + bias.byteLength)),
          rows: t.shape[1] ?? 1,
          k: t.shape[0]!,
        };
      };
      const l0 = await linear('mm.0');
      const l2 = await linear('mm.2');
      if (l0.bias.length !== l0.rows || l2.bias.length !== l2.rows || l2.k !== l0.rows)
        throw new HealthGPTError('ERR_INVALID_FILE', `${path}: projector shapes do not chain (mm.0 ${l0.k} -> ${l0.rows}, mm.2 ${l2.k} -> ${l2.rows})`);
      return new PluginProjector(path, l0, l2);
    } finally {
      f.close();
    }
  }

  /** rows of inputDim floats -> rows of outputDim floats. */
  async project(features: Float32Array, threads = 0): Promise<Float32Array> {
    if (features.length === 0 || features.length % this.l0.k !== 0)
      throw new HealthGPTError('ERR_INVALID_ARG', `features has ${features.length} values, not a whole number of rows of ${this.l0.k} (${this.path}'s projector)`);
    const n = features.length / this.l0.k;
    const matmul = (native() as unknown as { matmul: Matmul }).matmul;
    const h = await matmul(this.l0.type, this.l0.weight, this.l0.rows, this.l0.k, features, n, threads);
    // the bias and GELU run here, in slices of rows with the event loop served between them
    // (576 x 3072 values for HealthGPT-M3: tens of milliseconds in all)
    for (let j = 0; j < n; j++) {
      for (let i = 0; i < this.l0.rows; i++) {
        const x = h[j * this.l0.rows + i]! + this.l0.bias[i]!;
        h[j * this.l0.rows + i] = 0.5 * x * (1 + erf(x / Math.SQRT2));
      }
      if (j % 32 === 31) await new Promise<void>((resolve) => setImmediate(resolve));
    }
    const y = await matmul(this.l2.type, this.l2.weight, this.l2.rows, this.l2.k, h, n, threads);
    for (let j = 0; j < n; j++) for (let i = 0; i < this.l2.rows; i++) y[j * this.l2.rows + i]! += this.l2.bias[i]!;
    return y;
  }
}
