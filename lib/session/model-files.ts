/**
 * A HealthGPT model given as a folder or as files: a folder that `healthgpt convert` or
 * `healthgpt pull` wrote is read through its manifest (healthgpt.json, model-folder.ts), as is
 * `m3` / `l14` once pulled; otherwise each GGUF says what it is by general.architecture (clip,
 * hlora with hlora.plugin, vqgan; anything else is the language model).
 */
import { existsSync } from 'node:fs';
import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { MANIFEST_NAME } from '../convert/healthgpt.js';
import { HealthGPTError } from '../errors.js';
import { GGUFFile } from '../gguf/file.js';
import { isReleaseName } from '../pull/pull.js';
import type { HealthGPTLoadOptions } from './healthgpt.js';
import { readModelFolder, resolveModelName, type ModelParts } from './model-folder.js';

export type ModelFiles = Pick<HealthGPTLoadOptions, 'model' | 'vision' | 'plugins' | 'vqgan'> & {
  /** the language model's general.name, when it has one */
  name?: string;
};

const invalid = (message: string) => new HealthGPTError('ERR_INVALID_ARG', message);

/** The files a folder's parts name (every part it has). */
const partFiles = (p: ModelParts): string[] => [p.model, p.vision, p.plugins.comprehension, p.plugins.generation, p.vqgan].filter((f): f is string => f !== undefined);

/** The files of `paths` (folders expanded), sorted into the session's parts. */
export async function resolveModelFiles(paths: readonly string[]): Promise<ModelFiles> {
  const files: string[] = [];
  for (const p of paths) {
    const s = await stat(p).catch(() => undefined);
    // m3 / l14: the folder `healthgpt pull` converted into (lib/session/model-folder.ts)
    if (!s && isReleaseName(p)) {
      files.push(...partFiles(resolveModelName(p).parts));
      continue;
    }
    if (!s) throw invalid(`${p}: no such file or folder`);
    if (!s.isDirectory()) {
      files.push(p);
      continue;
    }
    const listed = existsSync(join(p, MANIFEST_NAME))
      ? partFiles(readModelFolder(p))
      : (await readdir(p))
          .filter((f) => f.endsWith('.gguf'))
          .sort()
          .map((f) => join(p, f));
    if (listed.length === 0) throw invalid(`${p}: neither a ${MANIFEST_NAME} nor any .gguf file`);
    files.push(...listed);
  }
  const out: Partial<ModelFiles> & { plugins: NonNullable<ModelFiles['plugins']> } = { plugins: {} };
  const put = (key: 'model' | 'vision' | 'vqgan', file: string) => {
    if (out[key] !== undefined) throw invalid(`two ${key === 'model' ? 'language model' : key} files: ${out[key]} and ${file}`);
    out[key] = file;
  };
  for (const file of files) {
    const g = GGUFFile.open(file);
    const meta = g.info.metadata;
    g.close();
    const arch = meta['general.architecture'];
    if (arch === 'clip') put('vision', file);
    else if (arch === 'vqgan') put('vqgan', file);
    else if (arch === 'hlora') {
      const name = meta['hlora.plugin'];
      if (name !== 'comprehension' && name !== 'generation') throw invalid(`${file}: hlora.plugin is ${JSON.stringify(name)}, expected "comprehension" or "generation"`);
      if (out.plugins[name] !== undefined) throw invalid(`two ${name} plugins: ${out.plugins[name]} and ${file}`);
      out.plugins[name] = file;
    } else {
      put('model', file);
      if (typeof meta['general.name'] === 'string') out.name = meta['general.name'];
    }
  }
  if (out.model === undefined) throw invalid(`no language model among ${files.join(', ')}`);
  if (out.vision === undefined) throw invalid(`no CLIP vision tower (general.architecture "clip") among ${files.join(', ')}`);
  if (out.plugins.comprehension === undefined && out.plugins.generation === undefined) throw invalid(`no H-LoRA plugin (general.architecture "hlora") among ${files.join(', ')}`);
  return out as ModelFiles;
}
