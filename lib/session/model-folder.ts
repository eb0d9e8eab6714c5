/**
 * One name for every part of a HealthGPT: what `-m` and `HealthGPT.load(name)` accept.
 *   - a folder that `healthgpt convert` / `healthgpt pull` wrote: its healthgpt.json says which
 *     file is the language model, the vision tower, each plugin and the VQGAN;
 *   - `m3` / `l14`: the folder `healthgpt pull` converted that release into
 *     (<cache>/models/<name>, the cache being $HEALTHGPT_CACHE or ~/.cache/healthgpt);
 *   - a language-model GGUF: the other parts must then be named one by one.
 * Parts named separately override the folder's. A part the caller needs and the folder lacks is
 * an error saying which part, and how to get it.
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { MANIFEST_NAME, type HealthGPTManifest } from '../convert/healthgpt.js';
import { HealthGPTError } from '../errors.js';
import { defaultCacheDir, isReleaseName } from '../pull/pull.js';
import { VQGAN_SOURCE } from '../pull/releases.js';

export interface ModelParts {
  model: string;
  vision?: string;
  plugins: { comprehension?: string; generation?: string };
  vqgan?: string;
}

export type ModelPart = 'vision' | 'comprehension' | 'generation' | 'vqgan';

/** How a caller names each part separately (CLI flags or library options), for messages. */
export type PartNames = Record<ModelPart, string>;
export const CLI_PART_NAMES: PartNames = { vision: '--vision', comprehension: '--plugin-com', generation: '--plugin-gen', vqgan: '--vqgan' };
export const LIBRARY_PART_NAMES: PartNames = { vision: 'vision', comprehension: 'plugins.comprehension', generation: 'plugins.generation', vqgan: 'vqgan' };

const bad = (message: string): HealthGPTError => new HealthGPTError('ERR_INVALID_FILE', message);

/** The files a converted folder's healthgpt.json names, checked to exist. */
export function readModelFolder(dir: string): ModelParts {
  const path = join(dir, MANIFEST_NAME);
  if (!existsSync(path)) throw bad(`${dir}: no ${MANIFEST_NAME} (not a folder written by healthgpt convert or healthgpt pull)`);
  let m: HealthGPTManifest;
  try {
    m = JSON.parse(readFileSync(path, 'utf8')) as HealthGPTManifest;
  } catch (err) {
    throw bad(`${path}: ${(err as Error).message}`);
  }
  if (m?.format !== 'healthgpt-model' || m.version !== 1 || !Array.isArray(m.files)) throw bad(`${path}: not a healthgpt-model manifest of version 1`);
  const parts: Partial<ModelParts> & { plugins: ModelParts['plugins'] } = { plugins: {} };
  for (const f of m.files) {
    if (typeof f?.file !== 'string' || f.file.includes('/') || f.file.includes('\\') || f.file.startsWith('.'))
      throw bad(`${path}: file entry ${JSON.stringify(f?.file)} is not a file name in the folder`);
    const file = join(dir, f.file);
    if (!existsSync(file)) throw bad(`${path} lists ${f.file} (${f.role}), which the folder does not have`);
    if (f.role === 'language-model') parts.model = file;
    else if (f.role === 'vision') parts.vision = file;
    else if (f.role === 'image-decoder') parts.vqgan = file;
    else if (f.role === 'plugin' && (f.plugin === 'comprehension' || f.plugin === 'generation')) parts.plugins[f.plugin] = file;
    // other plugins (a name of the user's own) are not HealthGPT's two: left to explicit options
  }
  if (!parts.model) throw bad(`${path}: no language model listed (convert with --llm into this folder)`);
  return parts as ModelParts;
}

/**
 * What `name` names: a converted folder, `m3` / `l14` in the cache, or a language-model file.
 * `where` says, for messages, which folder the parts came from (undefined for a file).
 */
export function resolveModelName(name: string, cacheDir = defaultCacheDir()): { parts: ModelParts; where?: string } {
  if (existsSync(name)) {
    if (statSync(name).isDirectory()) return { parts: readModelFolder(name), where: name };
    return { parts: { model: name, plugins: {} } };
  }
  if (isReleaseName(name)) {
    const dir = join(cacheDir, 'models', name);
    if (!existsSync(join(dir, MANIFEST_NAME))) throw new HealthGPTError('ERR_INVALID_ARG', `${name}: not in the cache (${dir}); download and convert it with: healthgpt pull ${name}`);
    return { parts: readModelFolder(dir), where: `${name} (${dir})` };
  }
  throw new HealthGPTError('ERR_INVALID_ARG', `model ${JSON.stringify(name)}: no such file or folder (give a GGUF, a folder from healthgpt convert, or m3 / l14 after healthgpt pull)`);
}

/** Why a part is missing, and how to get it. */
function missing(part: ModelPart, where: string | undefined, names: PartNames): HealthGPTError {
  const give = `give ${names[part]}`;
  if (where === undefined) {
    const what = { vision: 'the CLIP vision tower GGUF', comprehension: 'the comprehension plugin GGUF', generation: 'the generation plugin GGUF', vqgan: 'the VQGAN GGUF' }[part];
    return new HealthGPTError('ERR_INVALID_ARG', `${names[part]} is needed: ${what} (or name a converted folder, or m3 / l14, as the model)`);
  }
  const how = {
    vision: `convert one with healthgpt convert --vision clip-vit-large-patch14-336/, or ${give} vision.gguf`,
    comprehension: `convert com_hlora_weights.bin with healthgpt convert --plugins, or ${give} comprehension.gguf`,
    generation: `HealthGPT-M3's gen_hlora_weights.bin has one (HealthGPT-L14 releases none): convert it with healthgpt convert --plugins, or ${give} generation.gguf`,
    vqgan: `the VQGAN is not on the Hugging Face Hub: download last.ckpt and model.yaml from ${VQGAN_SOURCE}, then healthgpt pull m3 --vqgan last.ckpt (or healthgpt convert --vqgan last.ckpt), or ${give} vqgan.gguf`,
  }[part];
  const label = { vision: 'vision tower (vision.gguf)', comprehension: 'comprehension plugin (comprehension.gguf)', generation: 'generation plugin (generation.gguf)', vqgan: 'VQGAN (vqgan.gguf)' }[
    part
  ];
  return new HealthGPTError('ERR_INVALID_ARG', `${where} has no ${label}: ${how}`);
}

/**
 * The parts a command needs: `name`'s, each replaced by the one given separately (`given`), and
 * every part in `needs` present.
 */
export function modelParts(name: string, given: Partial<Omit<ModelParts, 'model'>>, needs: readonly ModelPart[], names: PartNames, cacheDir?: string): ModelParts {
  const { parts, where } = resolveModelName(name, cacheDir);
  const out: ModelParts = {
    model: parts.model,
    vision: given.vision ?? parts.vision,
    plugins: { ...parts.plugins, ...Object.fromEntries(Object.entries(given.plugins ?? {}).filter(([, v]) => v !== undefined)) },
    vqgan: given.vqgan ?? parts.vqgan,
  };
  const has: Record<ModelPart, boolean> = { vision: !!out.vision, comprehension: !!out.plugins.comprehension, generation: !!out.plugins.generation, vqgan: !!out.vqgan };
  for (const p of needs) if (!has[p]) throw missing(p, where, names);
  return out;
}

interface LoadLike {
  model: string;
  vision?: string;
  plugins?: { comprehension?: string; generation?: string };
  vqgan?: string;
}

/**
 * HealthGPT.load's argument with a folder or release name expanded into its files (every part
 * the folder has; the options' own files win). A GGUF path, or anything else, is left as it is.
 */
export function expandLoadOptions<T extends LoadLike>(o: string | T, cacheDir?: string): T {
  const opts = (typeof o === 'string' ? { model: o } : o) as T;
  if (typeof opts !== 'object' || opts === null || typeof opts.model !== 'string') return opts;
  const isFolder = existsSync(opts.model) ? statSync(opts.model).isDirectory() : isReleaseName(opts.model);
  if (!isFolder) return opts;
  const given = { vision: opts.vision, plugins: typeof opts.plugins === 'object' && opts.plugins !== null ? opts.plugins : undefined, vqgan: opts.vqgan };
  const parts = modelParts(opts.model, given, ['vision'], LIBRARY_PART_NAMES, cacheDir);
  if (!parts.plugins.comprehension && !parts.plugins.generation) throw missing('comprehension', resolveModelName(opts.model, cacheDir).where, LIBRARY_PART_NAMES);
  const out: T = { ...opts, model: parts.model, vision: parts.vision, plugins: parts.plugins };
  if (parts.vqgan !== undefined) out.vqgan = parts.vqgan;
  return out;
}
