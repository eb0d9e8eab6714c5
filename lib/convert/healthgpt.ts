/**
 * `healthgpt convert --llm DIR --vision DIR --plugins com.bin,gen.bin,fusion.bin --vqgan last.ckpt
 * -o OUTDIR`: the released HealthGPT files to the engine's files, with a manifest:
 *
 *   OUTDIR/model.gguf          the phi3 language model (convert --llm)            role language-model
 *   OUTDIR/vision.gguf         the CLIP tower in mmproj layout, with the projectors  role vision
 *   OUTDIR/comprehension.gguf  the comprehension H-LoRA plugin                     role plugin
 *   OUTDIR/generation.gguf     the generation H-LoRA plugin                        role plugin
 *   OUTDIR/vqgan.gguf          the VQGAN                                           role image-decoder
 *   OUTDIR/healthgpt.json      this list: file, role, plugin name, sources, sizes
 *
 * Each part is optional (what was asked for is written). Plugin files are told apart by name:
 * `name=path`, else a base name containing com / gen / fusion (com_hlora_weights.bin,
 * gen_hlora_weights.bin, fusion_layer_weights.bin); a fusion file's projector is shared by both
 * plugins (each plugin's own file wins). Resized embeddings / head (the image tokens' rows): the
 * first embed_tokens + lm_head pair in fusion, comprehension, generation order whose row count
 * differs from config.json's vocab_size replaces the language model's; a plugin's own file's
 * pair also becomes that plugin's rows from --plugin-first-row. With --vision, the plugins' projectors
 * go into vision.gguf (mm.* comprehension, mm.gen.* generation) and not into the plugin files;
 * without it they stay in the plugin files.
 * Everything is written into a staging folder inside OUTDIR and moved into place only when
 * every part succeeded: a failure (or Ctrl-C) leaves OUTDIR as it was.
 */
import { existsSync, statSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { basename, join, resolve } from 'node:path';
import { abortError } from '../model/model.js';
import type { QuantizeTarget } from '../quantize/plan.js';
import { convertClip, type ProjectorTensors } from './clip.js';
import { convertHLoraPlugin, openPluginProjector, openResizedRows, RELEASE_PLUGIN_DEFAULTS, RELEASE_PLUGIN_DEFAULTS_PHI4 } from './hlora.js';
import { convertLanguageModel } from './llm.js';
import { convertFail } from './tensor.js';
import { convertVqgan, vqganCodebookSize } from './vqgan.js';

export interface PluginSpec {
  rank?: number;
  alpha?: number;
  experts?: number;
}

export interface ConvertHealthGPTOptions {
  llm?: string;
  vision?: string;
  /** plugin files: 'path' or 'name=path' */
  plugins?: string[];
  vqgan?: string;
  vqganConfig?: string;
  /** without a model.yaml: the image size to infer the VQGAN's hyper-parameters for (default 256) */
  vqganResolution?: number;
  type?: QuantizeTarget;
  healthgptTokens?: boolean;
  /**
   * with healthgptTokens: how many <idx_k> tokens to append; default the codebook size of the
   * VQGAN converted alongside (--vqgan), else 8192 (the release's)
   */
  codebookSize?: number;
  /** first trained row of embed_tokens / lm_head in the plugin files */
  pluginFirstRow?: number;
  /**
   * the language model's embeddings / head: 'fusion' (default) the trained rows of the fusion
   * file (else of a plugin file) as app.py and gen_infer.py load them; 'base' the base model's
   * rows resized as utils.py does (the 8195 new rows = the mean of the old), as com_infer.py
   * runs comprehension without a fusion file
   */
  embeddings?: 'fusion' | 'base';
  /** rank / alpha / experts per plugin name (default: RELEASE_PLUGIN_DEFAULTS) */
  pluginSpecs?: Record<string, PluginSpec>;
  threads?: number;
  signal?: AbortSignal;
  /** a part starts ('model', 'vision', 'comprehension', ...) with its tensor count unknown; then ticks */
  onTensor?: (part: string, name: string, done: number, total: number) => void;
}

export interface ManifestEntry {
  file: string;
  role: 'language-model' | 'vision' | 'plugin' | 'image-decoder';
  plugin?: string;
  sources: string[];
  bytes: number;
}

export interface HealthGPTManifest {
  format: 'healthgpt-model';
  version: 1;
  type: string;
  files: ManifestEntry[];
  notes: string[];
}

export const MANIFEST_NAME = 'healthgpt.json';

/** Sorts plugin arguments into comprehension / generation / shared (fusion) files. */
export function classifyPluginFiles(args: string[]): { plugins: Map<string, string>; shared: string[] } {
  const plugins = new Map<string, string>();
  const shared: string[] = [];
  for (const a of args) {
    const eq = /^([a-z][a-z0-9_-]*)=(.+)$/i.exec(a);
    let name: string;
    let path: string;
    if (eq) [name, path] = [eq[1]!.toLowerCase(), eq[2]!];
    else {
      path = a;
      const b = basename(a).toLowerCase();
      if (b.includes('fusion')) name = 'fusion';
      else if (b.startsWith('com') || b.includes('comprehension')) name = 'comprehension';
      else if (b.startsWith('gen') || b.includes('generation')) name = 'generation';
      else return convertFail(`--plugins: cannot tell which plugin '${a}' is (name it com*, gen* or fusion*, or write comprehension=${a})`);
    }
    if (!existsSync(path)) convertFail(`--plugins: ${path}: no such file`);
    if (name === 'fusion') shared.push(path);
    else if (plugins.has(name)) convertFail(`--plugins: two files for plugin '${name}' (${plugins.get(name)} and ${path})`);
    else plugins.set(name, path);
  }
  return { plugins, shared };
}

async function configVocabSize(dir: string): Promise<number | undefined> {
  try {
    const v = (JSON.parse(await readFile(join(dir, 'config.json'), 'utf8')) as { vocab_size?: unknown }).vocab_size;
    return typeof v === 'number' ? v : undefined;
  } catch {
    return undefined; // convertLanguageModel reports the config's problem by name
  }
}

const floatType = (t: QuantizeTarget): 'f32' | 'f16' | 'bf16' => (t === 'f32' || t === 'bf16' ? t : 'f16');

export async function convertHealthGPT(outDir: string, o: ConvertHealthGPTOptions): Promise<HealthGPTManifest> {
  if (!o.llm && !o.vision && !o.plugins?.length && !o.vqgan) convertFail('convert: nothing to convert (give --llm, --vision, --plugins and/or --vqgan)');
  const type = o.type ?? 'f16';
  const { plugins, shared } = classifyPluginFiles(o.plugins ?? []);
  if (shared.length && plugins.size === 0) convertFail(`--plugins: ${shared.join(', ')} is shared by plugins, but no plugin file was given`);
  const specs = new Map<string, Required<PluginSpec>>();
  for (const name of plugins.keys()) {
    const defaults = /phi-?4/i.test(basename(plugins.get(name)!)) ? RELEASE_PLUGIN_DEFAULTS_PHI4 : RELEASE_PLUGIN_DEFAULTS;
    const s = { ...(defaults[name] ?? {}), ...(o.pluginSpecs?.[name] ?? {}) } as Required<PluginSpec>;
    if (s.rank === undefined || s.alpha === undefined || s.experts === undefined) convertFail(`plugin '${name}': give its rank, alpha and expert count (no release default for that name)`);
    specs.set(name, s);
  }
  const out = resolve(outDir);
  if (existsSync(out) && !statSync(out).isDirectory()) convertFail(`-o ${outDir}: not a folder (several files are written; give a folder)`);
  const created = !existsSync(out);
  await mkdir(out, { recursive: true });
  const stage = await mkdtemp(join(out, '.convert-'));
  const files: ManifestEntry[] = [];
  let ok = false;
  const notes: string[] = [];
  const checkAbort = (): void => {
    if (o.signal?.aborted) throw abortError(o.signal);
  };
  try {
    if (o.llm) {
      checkAbort();
      // resized embeddings / head: the first pair in fusion, comprehension, generation order,
      // used when its row count differs from config.json's vocab_size (the image tokens added)
      const order = [...shared, ...['comprehension', 'generation'].map((n) => plugins.get(n)).filter((f): f is string => f !== undefined)];
      const codebookSize = o.codebookSize ?? (o.healthgptTokens && o.vqgan ? await vqganCodebookSize(o.vqgan, o.vqganConfig) : undefined);
      if (o.embeddings !== undefined && o.embeddings !== 'fusion' && o.embeddings !== 'base') convertFail(`embeddings must be 'fusion' or 'base', got ${String(o.embeddings)}`);
      const rows = await openResizedRows(o.embeddings === 'base' ? [] : order);
      try {
        const vocabSize = await configVocabSize(o.llm);
        const resized = rows.embed && rows.head && rows.embed.shape[0] !== vocabSize ? { embed: rows.embed, head: rows.head } : undefined;
        const r = await convertLanguageModel(o.llm, join(stage, 'model.gguf'), {
          type,
          threads: o.threads,
          signal: o.signal,
          healthgptTokens: o.healthgptTokens,
          codebookSize,
          resized,
          onTensor: (e, done, total) => o.onTensor?.('model', e.name, done, total),
        });
        files.push({ file: 'model.gguf', role: 'language-model', sources: resized ? [o.llm, resized.embed.file] : [o.llm], bytes: 0 });
        if (resized) notes.push(`model: embeddings and head resized to ${resized.embed.shape[0]} rows from ${resized.embed.file}`);
        else if (r.resizedWithMean)
          notes.push(`model: embeddings and head resized to ${r.vocabSize} rows as HealthGPT's utils.py does (the ${r.resizedWithMean} new rows = the mean of the base model's)`);
      } finally {
        await rows.close();
      }
    }
    const projectorsToVision = o.vision !== undefined;
    for (const [name, file] of plugins) {
      checkAbort();
      const s = specs.get(name)!;
      const r = await convertHLoraPlugin([file, ...shared], join(stage, `${name}.gguf`), {
        name,
        ...s,
        type: floatType(type),
        firstRow: o.pluginFirstRow,
        keepProjector: !projectorsToVision,
        signal: o.signal,
        onTensor: (t, done, total) => o.onTensor?.(name, t, done, total),
      });
      files.push({ file: `${name}.gguf`, role: 'plugin', plugin: name, sources: [file, ...shared], bytes: 0 });
      notes.push(`${name}: ${r.layers} layers, ${r.form} adapters, rank ${s.rank}, alpha ${s.alpha}, ${s.experts} experts${r.rows ? ', own embedding/head rows' : ''}`);
    }
    if (o.vision) {
      checkAbort();
      const opened: Array<{ close(): Promise<void> }> = [];
      try {
        const proj: Partial<Record<'comprehension' | 'generation', ProjectorTensors>> = {};
        for (const name of ['comprehension', 'generation'] as const) {
          const file = plugins.get(name);
          if (!file) continue;
          const p = await openPluginProjector([file, ...shared]);
          opened.push(p);
          if (p.tensors) proj[name] = p.tensors;
        }
        const r = await convertClip(o.vision, join(stage, 'vision.gguf'), {
          // quantized requests: q8_0 matrices, as llama.cpp quantizes an mmproj
          type: type === 'f32' || type === 'f16' || type === 'bf16' ? type : 'q8_0',
          ...proj,
          signal: o.signal,
          onTensor: (t, done, total) => o.onTensor?.('vision', t, done, total),
        });
        files.push({ file: 'vision.gguf', role: 'vision', sources: [o.vision, ...plugins.values(), ...shared], bytes: 0 });
        notes.push(`vision: ${r.blockCount} of ${r.hparams.layers} layers kept (feature layer ${r.featureLayer}, generation layer 1), projectors: ${r.projectors.join(', ') || 'none'}`);
      } finally {
        for (const p of opened) await p.close();
      }
    }
    if (o.vqgan) {
      checkAbort();
      const r = await convertVqgan(o.vqgan, join(stage, 'vqgan.gguf'), {
        config: o.vqganConfig,
        resolution: o.vqganResolution,
        type: type === 'f32' ? 'f32' : 'f16',
        signal: o.signal,
        onTensor: (t, done, total) => o.onTensor?.('vqgan', t, done, total),
      });
      files.push({ file: 'vqgan.gguf', role: 'image-decoder', sources: [o.vqgan], bytes: 0 });
      notes.push(
        `vqgan: ${r.tensors} tensors kept, ${r.skipped.length} training-only skipped (loss.*)${r.inferred ? `; no model.yaml: hyper-parameters inferred from the shapes for ${r.hparams.resolution} px` : ''}`,
      );
    }
    checkAbort();
    for (const f of files) f.bytes = (await stat(join(stage, f.file))).size;
    const manifest: HealthGPTManifest = { format: 'healthgpt-model', version: 1, type, files, notes };
    await writeFile(join(stage, MANIFEST_NAME), JSON.stringify(manifest, null, 1) + '\n');
    for (const f of [...files.map((x) => x.file), MANIFEST_NAME]) await rename(join(stage, f), join(out, f));
    ok = true;
    return manifest;
  } finally {
    await rm(stage, { recursive: true, force: true });
    if (created && !ok) await rm(out, { recursive: true, force: true }).catch(() => undefined);
  }
}
