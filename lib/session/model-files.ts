/**
 * A HealthGPT model given as a folder or as files: a folder that `healthgpt convert` or
 * `healthgpt pull` wrote is read through its manifest (healthgpt.json); otherwise each GGUF
 * says what it is by general.architecture (clip, hlora with hlora.plugin, vqgan; anything
 * else is the language model).
 */
import { readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { MANIFEST_NAME, type HealthGPTManifest } from '../convert/healthgpt.js';
import { HealthGPTError } from '../errors.js';
import { GGUFFile } from '../gguf/file.js';
import type { HealthGPTLoadOptions } from './healthgpt.js';

export type ModelFiles = Pick<HealthGPTLoadOptions, 'model' | 'vision' | 'plugins' | 'vqgan'> & {
  /** the language model's general.name, when it has one */
  name?: string;
};

const invalid = (message: string) => new HealthGPTError('ERR_INVALID_ARG', message);

async function fromManifest(dir: string): Promise<string[] | undefined> {
  let text: string;
  try {
    text = await readFile(join(dir, MANIFEST_NAME), 'utf8');
  } catch {
    return undefined;
  }
  const m = JSON.parse(text) as HealthGPTManifest;
  if (m.format !== 'healthgpt-model' || !Array.isArray(m.files)) throw invalid(`${join(dir, MANIFEST_NAME)} is not a HealthGPT model manifest`);
  return m.files.map((f) => join(dir, f.file));
}

/** The files of `paths` (folders expanded), sorted into the session's parts. */
export async function resolveModelFiles(paths: readonly string[]): Promise<ModelFiles> {
  const files: string[] = [];
  for (const p of paths) {
    const s = await stat(p).catch(() => undefined);
    if (!s) throw invalid(`${p}: no such file or folder`);
    if (!s.isDirectory()) {
      files.push(p);
      continue;
    }
    const listed = (await fromManifest(p)) ?? (await readdir(p)).filter((f) => f.endsWith('.gguf')).sort().map((f) => join(p, f));
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
