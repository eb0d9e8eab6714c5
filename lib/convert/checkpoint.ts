/**
 * The weights of a Hugging Face model folder, whatever format they were saved in: sharded or
 * single safetensors (preferred, as transformers prefers them), else sharded or single
 * PyTorch zip pickles; or one checkpoint file given directly (.safetensors, .bin, .pt, .pth, .ckpt).
 */
import { existsSync, statSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { openSafetensors, openSafetensorsIndex } from './safetensors.js';
import { convertFail, type LazyTensor } from './tensor.js';
import { openTorchCheckpoint } from './torch.js';

export interface Checkpoint {
  /** the files read, for messages */
  files: string[];
  tensors: LazyTensor[];
  close(): Promise<void>;
}

const one = async (path: string): Promise<Checkpoint> => {
  if (path.endsWith('.safetensors')) {
    const f = await openSafetensors(path);
    return { files: [path], tensors: f.tensors, close: f.close };
  }
  const c = await openTorchCheckpoint(path);
  return { files: [path], tensors: c.tensors, close: c.close };
};

/** torch shards listed by pytorch_model.bin.index.json, opened one after the other. */
async function torchIndex(indexPath: string, dir: string): Promise<Checkpoint> {
  let map: unknown;
  try {
    map = (JSON.parse(await readFile(indexPath, 'utf8')) as { weight_map?: unknown }).weight_map;
  } catch (err) {
    return convertFail(`${indexPath}: cannot read the index (${(err as Error).message})`);
  }
  if (!map || typeof map !== 'object' || Array.isArray(map)) convertFail(`${indexPath}: no weight_map object`);
  const files = [...new Set(Object.values(map as Record<string, unknown>))];
  for (const f of files)
    if (typeof f !== 'string' || f !== basename(f) || f === '..' || f.includes('\\')) convertFail(`${indexPath}: shard ${JSON.stringify(f)} is not a file name in the same folder`);
  const opened: Checkpoint[] = [];
  const close = async (): Promise<void> => {
    for (const c of opened) await c.close().catch(() => undefined);
  };
  try {
    for (const f of files as string[]) opened.push(await one(join(dir, f)));
    return { files: opened.flatMap((c) => c.files), tensors: opened.flatMap((c) => c.tensors), close };
  } catch (err) {
    await close();
    throw err;
  }
}

/** Opens the weights of `path`: a model folder or one checkpoint file. */
export async function openCheckpoint(path: string): Promise<Checkpoint> {
  const st = existsSync(path) ? statSync(path) : undefined;
  if (!st) convertFail(`${path}: no such file or folder`);
  if (st!.isFile()) return one(path);
  const inDir = (f: string): string => join(path, f);
  if (existsSync(inDir('model.safetensors.index.json'))) {
    const s = await openSafetensorsIndex(inDir('model.safetensors.index.json'));
    return { files: s.files, tensors: s.tensors, close: s.close };
  }
  if (existsSync(inDir('model.safetensors'))) return one(inDir('model.safetensors'));
  if (existsSync(inDir('pytorch_model.bin.index.json'))) return torchIndex(inDir('pytorch_model.bin.index.json'), path);
  if (existsSync(inDir('pytorch_model.bin'))) return one(inDir('pytorch_model.bin'));
  return convertFail(`${path}: no weights found (looked for model.safetensors.index.json, model.safetensors, pytorch_model.bin.index.json, pytorch_model.bin)`);
}
