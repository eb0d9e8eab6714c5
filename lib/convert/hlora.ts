/**
 * `healthgpt convert --plugins com.bin,gen.bin[,fusion.bin]`: HealthGPT's released H-LoRA
 * weights (PyTorch pickles of partial state dicts of the PEFT-wrapped LLaVA-Phi model) to the
 * engine's plugin GGUF (README.md "H-LoRA plugin files"; native/models/hlora_plugin.cpp).
 *
 * The release's layout (docs/model.md, "The released files"), from HealthGPT's own loader:
 * llava/demo/utils.py load_weights calls model.load_state_dict(torch.load(file), strict=False) on
 * the PEFT-wrapped model, and llava/peft/tuners/lora.py's Linear owns lora_route (n x in), one
 * lora_A (r x in) and one lora_B (out x r), with no adapter-name level. So per adapted linear:
 *   base_model.model.model.layers.N.<linear>.lora_route.weight   R (n x in)
 *   base_model.model.model.layers.N.<linear>.lora_A.weight       A (r x in; expert j: rows j*r/n ..)
 *   base_model.model.model.layers.N.<linear>.lora_B.weight       B (out x r)
 * with <linear> one of self_attn.qkv_proj, self_attn.o_proj, mlp.gate_up_proj, mlp.down_proj,
 * and the plugin's projector base_model.model.model.mm_projector.{0,2}.{weight,bias} -> mm.*.
 * Also read, for checkpoints saved by other PEFT versions: the prefix absent, a `.default`
 * adapter level, and per-expert lora_A{j} (r/n x in, stacked in expert order into A) /
 * lora_B{j} (out x r/n, its columns concatenated into B). embed_tokens / lm_head in a plugin's
 * own file become its rows from first_row (the release keeps them in fusion_layer_weights.bin,
 * which the language model takes). Every other key is an error naming it. rank, alpha and the
 * expert count are not in the file: they come from options (the release's scripts: com r 64
 * alpha 128, gen r 256 alpha 512, 4 experts each), and the file's shapes must agree with them.
 */
import { GGMLType } from '../gguf/constants.js';
import { GGUFWriter } from '../gguf/writer.js';
import { abortError } from '../model/model.js';
import { openCheckpoint, type Checkpoint } from './checkpoint.js';
import type { ProjectorTensors } from './clip.js';
import { encodeFloat } from './vqgan.js';
import { convertFail, numel, type LazyTensor } from './tensor.js';

export interface HLoraConvertOptions {
  /** hlora.plugin, e.g. 'comprehension' */
  name: string;
  rank: number;
  alpha: number;
  experts: number;
  /** adapter and row tensor type: f32, f16 (default) or bf16 */
  type?: 'f32' | 'f16' | 'bf16';
  /** first trained row of embed_tokens / lm_head kept in the plugin (needed when they are present) */
  firstRow?: number;
  /** write the projector into the plugin file (default true; false when the vision file carries it) */
  keepProjector?: boolean;
  /** stops between two tensors (ABORT_ERR); the caller removes the partial output */
  signal?: AbortSignal;
  onTensor?: (name: string, done: number, total: number) => void;
}

/** Rank, alpha and experts of the released files, by plugin (HealthGPT-M3's scripts; docs/model.md). */
export const RELEASE_PLUGIN_DEFAULTS: Record<string, { rank: number; alpha: number; experts: number }> = {
  comprehension: { rank: 64, alpha: 128, experts: 4 },
  generation: { rank: 256, alpha: 512, experts: 4 },
};
/** HealthGPT-L14's (com_hlora_weights_phi4.bin): comprehension only. */
export const RELEASE_PLUGIN_DEFAULTS_PHI4: Record<string, { rank: number; alpha: number; experts: number }> = {
  comprehension: { rank: 32, alpha: 64, experts: 4 },
};

const LINEAR_NAMES: Record<string, string> = {
  'self_attn.qkv_proj': 'attn_qkv',
  'self_attn.o_proj': 'attn_output',
  'mlp.gate_up_proj': 'ffn_up',
  'mlp.down_proj': 'ffn_down',
};
export const HLORA_LINEARS = Object.values(LINEAR_NAMES);

const ADAPTER_KEY = /^(?:base_model\.model\.)?model\.layers\.(\d+)\.(self_attn\.qkv_proj|self_attn\.o_proj|mlp\.gate_up_proj|mlp\.down_proj)\.(lora_route|lora_A|lora_B)(\d*)(?:\.default)?\.weight$/;
const PROJECTOR_KEY = /^(?:base_model\.model\.)?model\.mm_projector\.([02])\.(weight|bias)$/;
const EMBED_KEY = /^(?:base_model\.model\.)?model\.embed_tokens\.weight$/;
const HEAD_KEY = /^(?:base_model\.model\.)?lm_head\.weight$/;

interface LinearParts {
  route?: LazyTensor;
  A?: LazyTensor;
  B?: LazyTensor;
  Aj: Map<number, LazyTensor>;
  Bj: Map<number, LazyTensor>;
}

interface Planned {
  name: string;
  dims: number[]; // ggml order
  type: 'f32' | 'f16' | 'bf16';
  read: () => Promise<Float32Array>;
}

const shapeStr = (s: readonly number[]): string => `[${s.join(', ')}]`;

function listNames(names: string[]): string {
  const shown = names.slice(0, 12).join(', ');
  return names.length > 12 ? `${shown} and ${names.length - 12} more` : shown;
}

/** Rows lo..hi-1 of a 2-D tensor (reads the whole tensor: embeddings are the largest, and one at a time). */
const rowsOf =
  (t: LazyTensor, lo: number): (() => Promise<Float32Array>) =>
  async () =>
    (await t.readF32()).slice(lo * t.shape[1]!);

export interface HLoraConvertResult {
  output: string;
  layers: number;
  nEmbd: number;
  nFf: number;
  form: 'stacked' | 'per-expert';
  projector: boolean;
  rows: boolean;
  tensors: number;
}

/**
 * Converts one plugin: `files[0]` is its own file; later files (fusion_layer_weights.bin) add
 * the projector when the first lacks one (a tensor in an earlier file wins). A later file's
 * embed_tokens / lm_head are the language model's resized vocabulary (convert --llm takes them),
 * not the plugin's rows.
 */
export async function convertHLoraPlugin(files: string[], output: string, o: HLoraConvertOptions): Promise<HLoraConvertResult> {
  for (const [k, v] of [
    ['rank', o.rank],
    ['experts', o.experts],
  ] as const)
    if (!Number.isSafeInteger(v) || v <= 0) convertFail(`plugin ${o.name}: ${k} must be a positive integer, got ${v}`);
  if (!(o.alpha > 0) || !Number.isFinite(o.alpha)) convertFail(`plugin ${o.name}: alpha must be a positive number, got ${o.alpha}`);
  if (o.rank % o.experts) convertFail(`plugin ${o.name}: rank ${o.rank} is not a multiple of ${o.experts} experts`);
  const type = o.type ?? 'f16';
  const opened: Checkpoint[] = [];
  try {
    for (const f of files) opened.push(await openCheckpoint(f));
    const linears = new Map<string, LinearParts>(); // "N.attn_qkv"
    const proj = new Map<string, LazyTensor>();
    let embed: LazyTensor | undefined;
    let head: LazyTensor | undefined;
    const unknown: string[] = [];
    const seen = new Set<string>();
    opened.forEach((c, fi) => {
      for (const t of c.tensors) {
        if (seen.has(t.name) && fi === 0) convertFail(`${t.file}: tensor '${t.name}' appears twice`);
        if (seen.has(t.name)) continue; // the plugin's own file wins over a shared one
        seen.add(t.name);
        let m = ADAPTER_KEY.exec(t.name);
        if (m) {
          if (fi > 0) convertFail(`${t.file}: adapter tensor '${t.name}' in a shared file (adapters belong in the plugin's own file)`);
          const key = `${m[1]}.${LINEAR_NAMES[m[2]!]}`;
          const p: LinearParts = linears.get(key) ?? { Aj: new Map(), Bj: new Map() };
          linears.set(key, p);
          const [kind, j] = [m[3]!, m[4]!];
          if (kind === 'lora_route') {
            if (j !== '') unknown.push(t.name);
            else p.route = t;
          } else if (j === '') p[kind === 'lora_A' ? 'A' : 'B'] = t;
          else (kind === 'lora_A' ? p.Aj : p.Bj).set(Number(j), t);
          continue;
        }
        if ((m = PROJECTOR_KEY.exec(t.name))) proj.set(`mm.${m[1]}.${m[2]}`, t);
        else if ((EMBED_KEY.test(t.name) || HEAD_KEY.test(t.name)) && fi > 0)
          continue; // a shared file's vocabulary goes to the language model
        else if (EMBED_KEY.test(t.name)) embed = t;
        else if (HEAD_KEY.test(t.name)) head = t;
        else unknown.push(`${t.name} (${t.file})`);
      }
    });
    if (unknown.length)
      convertFail(`plugin ${o.name}: ${unknown.length} key(s) that are not H-LoRA adapters, projector or embedding rows (the layouts read are in lib/convert/hlora.ts): ${listNames(unknown)}`);
    if (linears.size === 0) convertFail(`plugin ${o.name}: ${files[0]} holds no H-LoRA adapter tensors (model.layers.N.<linear>.lora_route / lora_A / lora_B)`);
    const layerIds = [...new Set([...linears.keys()].map((k) => Number(k.split('.')[0])))];
    const nLayers = Math.max(...layerIds) + 1;
    const missing: string[] = [];
    for (let i = 0; i < nLayers; i++)
      for (const [hf, l] of Object.entries(LINEAR_NAMES)) {
        const p = linears.get(`${i}.${l}`);
        const base = `model.layers.${i}.${hf}`;
        if (!p) missing.push(`${base}.lora_route/lora_A/lora_B`);
        else {
          if (!p.route) missing.push(`${base}.lora_route.weight`);
          const stacked = p.A || p.B;
          if (stacked && (p.Aj.size || p.Bj.size)) convertFail(`plugin ${o.name}: ${base} mixes stacked lora_A/lora_B with per-expert lora_A{j}/lora_B{j}`);
          if (stacked) {
            if (!p.A) missing.push(`${base}.lora_A.weight`);
            if (!p.B) missing.push(`${base}.lora_B.weight`);
          } else
            for (let j = 0; j < o.experts; j++) {
              if (!p.Aj.has(j)) missing.push(`${base}.lora_A${j}.weight`);
              if (!p.Bj.has(j)) missing.push(`${base}.lora_B${j}.weight`);
            }
          for (const [j, t] of [...p.Aj, ...p.Bj]) if (j >= o.experts) convertFail(`plugin ${o.name}: '${t.name}' is expert ${j}, but the plugin has ${o.experts} experts`);
        }
      }
    if (missing.length) convertFail(`plugin ${o.name}: ${missing.length} tensor(s) missing: ${listNames(missing)}`);
    const forms = new Set([...linears.values()].map((p) => (p.A ? 'stacked' : 'per-expert')));
    if (forms.size > 1) convertFail(`plugin ${o.name}: some linears are stacked and others per-expert`);

    const want = (t: LazyTensor, shape: number[]): void => {
      if (t.shape.length !== shape.length || t.shape.some((d, i) => d !== shape[i]))
        convertFail(
          `plugin ${o.name}: tensor '${t.name}' (${t.file}) has shape ${shapeStr(t.shape)}, expected ${shapeStr(shape)} (rank ${o.rank}, ${o.experts} experts; other sizes: --plugin-spec ${o.name}:rank:alpha:experts)`,
        );
      if (!['F32', 'F16', 'BF16'].includes(t.dtype)) convertFail(`plugin ${o.name}: tensor '${t.name}' is ${t.dtype}, not a float type`);
    };
    const r = o.rank;
    const n = o.experts;
    const inOf = (p: LinearParts): number => p.route?.shape[1] ?? 0;
    const nEmbd = inOf(linears.get('0.attn_qkv')!);
    const nFf = inOf(linears.get('0.ffn_down')!);
    const planned: Planned[] = [];
    for (let i = 0; i < nLayers; i++)
      for (const l of HLORA_LINEARS) {
        const p = linears.get(`${i}.${l}`)!;
        const inDim = l === 'ffn_down' ? nFf : nEmbd;
        want(p.route!, [n, inDim]);
        const outT = p.B ?? p.Bj.get(0)!;
        const out = outT.shape[0]!;
        if (l === 'attn_output' && out !== nEmbd) convertFail(`plugin ${o.name}: '${outT.name}' has ${out} rows; o_proj's output is ${nEmbd} wide`);
        if (l === 'ffn_down' && out !== nEmbd) convertFail(`plugin ${o.name}: '${outT.name}' has ${out} rows; down_proj's output is ${nEmbd} wide`);
        if (l === 'ffn_up' && out !== 2 * nFf) convertFail(`plugin ${o.name}: '${outT.name}' has ${out} rows; gate_up_proj's output is 2 x ${nFf}`);
        const route = p.route!;
        planned.push({ name: `blk.${i}.${l}.router`, dims: [inDim, n], type, read: () => route.readF32() });
        if (p.A) {
          const [A, B] = [p.A, p.B!];
          want(A, [r, inDim]);
          want(B, [out, r]);
          planned.push({ name: `blk.${i}.${l}.lora_A`, dims: [inDim, r], type, read: () => A.readF32() });
          planned.push({ name: `blk.${i}.${l}.lora_B`, dims: [r, out], type, read: () => B.readF32() });
        } else {
          const rj = r / n;
          for (let j = 0; j < n; j++) {
            want(p.Aj.get(j)!, [rj, inDim]);
            want(p.Bj.get(j)!, [out, rj]);
          }
          // A: the experts' row blocks one after the other; B: each row is the experts' column blocks side by side
          planned.push({
            name: `blk.${i}.${l}.lora_A`,
            dims: [inDim, r],
            type,
            read: async () => {
              const a = new Float32Array(r * inDim);
              for (let j = 0; j < n; j++) a.set(await p.Aj.get(j)!.readF32(), j * rj * inDim);
              return a;
            },
          });
          planned.push({
            name: `blk.${i}.${l}.lora_B`,
            dims: [r, out],
            type,
            read: async () => {
              const b = new Float32Array(out * r);
              for (let j = 0; j < n; j++) {
                const bj = await p.Bj.get(j)!.readF32();
                for (let row = 0; row < out; row++) b.set(bj.subarray(row * rj, (row + 1) * rj), row * r + j * rj);
              }
              return b;
            },
          });
        }
      }

    // the projector: all four or none
    if (proj.size && proj.size !== 4) convertFail(`plugin ${o.name}: projector incomplete, has ${[...proj.keys()].join(', ')}; needs mm.0.weight, mm.0.bias, mm.2.weight, mm.2.bias`);
    if (proj.size === 4 && o.keepProjector !== false) {
      const w0 = proj.get('mm.0.weight')!;
      const w2 = proj.get('mm.2.weight')!;
      if (w0.shape.length !== 2) convertFail(`plugin ${o.name}: '${w0.name}' is not a matrix`);
      const d = w0.shape[0]!;
      want(proj.get('mm.0.bias')!, [d]);
      want(w2, [nEmbd, d]);
      want(proj.get('mm.2.bias')!, [nEmbd]);
      for (const k of ['mm.0.weight', 'mm.0.bias', 'mm.2.weight', 'mm.2.bias']) {
        const t = proj.get(k)!;
        planned.push({ name: k, dims: [...t.shape].reverse(), type: t.shape.length === 1 ? 'f32' : type, read: () => t.readF32() });
      }
    }
    // trained embedding / head rows
    const rowKeys: Array<[string, number]> = [];
    for (const [t, g] of [
      [embed, 'token_embd'],
      [head, 'output'],
    ] as const) {
      if (!t) continue;
      if (t.shape.length !== 2 || t.shape[1] !== nEmbd) convertFail(`plugin ${o.name}: '${t.name}' has shape ${shapeStr(t.shape)}, expected [vocab, ${nEmbd}]`);
      const first = o.firstRow;
      if (first === undefined) convertFail(`plugin ${o.name}: '${t.name}' is present; say which row its trained rows start at (firstRow / --plugin-first-row)`);
      if (!Number.isSafeInteger(first) || first! < 0 || first! >= t.shape[0]!) convertFail(`plugin ${o.name}: first row ${first} is outside '${t.name}' (${t.shape[0]} rows)`);
      planned.push({ name: `${g}.weight`, dims: [nEmbd, t.shape[0]! - first!], type, read: rowsOf(t, first!) });
      rowKeys.push([`hlora.${g}.first_row`, first!]);
    }

    const w = new GGUFWriter();
    w.addKV('general.architecture', 'hlora');
    w.addKV('general.name', `healthgpt ${o.name} plugin`);
    w.addKV('hlora.plugin', o.name);
    w.addKV('hlora.rank', r, 'u32');
    w.addKV('hlora.alpha', o.alpha, 'f32');
    w.addKV('hlora.expert_count', n, 'u32');
    w.addKV('hlora.base.block_count', nLayers, 'u32');
    w.addKV('hlora.base.embedding_length', nEmbd, 'u32');
    w.addKV('hlora.base.feed_forward_length', nFf, 'u32');
    for (const [k, v] of rowKeys) w.addKV(k, v, 'u32');
    let done = 0;
    for (const p of planned)
      w.addTensor(p.name, p.dims, p.type === 'f32' ? GGMLType.F32 : p.type === 'f16' ? GGMLType.F16 : GGMLType.BF16, async () => {
        if (o.signal?.aborted) throw abortError(o.signal);
        const v = await p.read();
        if (v.length !== numel(p.dims)) convertFail(`plugin ${o.name}: ${p.name}: read ${v.length} values, expected ${numel(p.dims)}`);
        const bytes = encodeFloat(v, p.type);
        o.onTensor?.(p.name, ++done, planned.length);
        return bytes;
      });
    await w.write(output);
    return {
      output,
      layers: nLayers,
      nEmbd,
      nFf,
      form: [...forms][0] as 'stacked' | 'per-expert',
      projector: proj.size === 4 && o.keepProjector !== false,
      rows: rowKeys.length > 0,
      tensors: planned.length,
    };
  } finally {
    for (const c of opened) await c.close().catch(() => undefined);
  }
}

/**
 * The projector (model.mm_projector.{0,2}) a plugin's files carry, the plugin's own file first;
 * the checkpoints stay open until close() (the vision converter reads them).
 */
export async function openPluginProjector(files: string[]): Promise<{ tensors?: ProjectorTensors; close(): Promise<void> }> {
  const opened: Checkpoint[] = [];
  const close = async (): Promise<void> => {
    for (const c of opened) await c.close().catch(() => undefined);
  };
  try {
    const found = new Map<string, LazyTensor>();
    for (const f of files) {
      const c = await openCheckpoint(f);
      opened.push(c);
      for (const t of c.tensors) {
        const m = PROJECTOR_KEY.exec(t.name);
        if (m && !found.has(`mm.${m[1]}.${m[2]}`)) found.set(`mm.${m[1]}.${m[2]}`, t);
      }
    }
    if (found.size === 0) return { close };
    const keys = ['mm.0.weight', 'mm.0.bias', 'mm.2.weight', 'mm.2.bias'];
    const absent = keys.filter((k) => !found.has(k));
    if (absent.length) convertFail(`${files.join(', ')}: projector incomplete, missing ${absent.join(', ')}`);
    return { tensors: Object.fromEntries(keys.map((k) => [k, found.get(k)!])) as unknown as ProjectorTensors, close };
  } catch (err) {
    await close();
    throw err;
  }
}

/**
 * The first embed_tokens + lm_head pair in `files` (in order), for the language model's resized
 * vocabulary; both or neither must be present in a file. The checkpoints stay open until close().
 */
export async function openResizedRows(files: string[]): Promise<{ embed?: LazyTensor; head?: LazyTensor; close(): Promise<void> }> {
  const opened: Checkpoint[] = [];
  const close = async (): Promise<void> => {
    for (const c of opened) await c.close().catch(() => undefined);
  };
  try {
    for (const f of files) {
      const c = await openCheckpoint(f);
      opened.push(c);
      const embed = c.tensors.find((t) => EMBED_KEY.test(t.name));
      const head = c.tensors.find((t) => HEAD_KEY.test(t.name));
      if (!embed && !head) continue;
      if (!embed || !head) convertFail(`${f}: has ${embed ? embed.name : head!.name} without ${embed ? 'lm_head.weight' : 'model.embed_tokens.weight'} (a resized vocabulary needs both)`);
      return { embed, head, close };
    }
    return { close };
  } catch (err) {
    await close();
    throw err;
  }
}
