/**
 * safetensors reader: an 8-byte little-endian header length, a JSON header naming each tensor's
 * dtype, shape and [begin, end) byte range in the data that follows. Every claim is checked
 * against the file before anything is read (header length against the file size and a cap, ranges
 * inside the data, byte counts matching shape x dtype); tensors are read lazily by offset.
 * Sharded checkpoints: model.safetensors.index.json maps each tensor to its shard file.
 */
import { open, readFile, stat } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { DTYPE_SIZE, convertFail, decodeF32, numel, readExact, type DType, type LazyTensor } from './tensor.js';

/** A header longer than this is refused (real ones are a few hundred KB). */
export const MAX_HEADER_BYTES = 100 * 1024 * 1024;

export interface SafetensorsFile {
  path: string;
  metadata: Record<string, string>;
  tensors: LazyTensor[];
  close(): Promise<void>;
}

interface HeaderEntry {
  dtype?: unknown;
  shape?: unknown;
  data_offsets?: unknown;
}

/** Opens one .safetensors file; the handle stays open for the lazy reads until close(). */
export async function openSafetensors(path: string): Promise<SafetensorsFile> {
  let fh: FileHandle;
  try {
    fh = await open(path, 'r');
  } catch (err) {
    return convertFail(`${path}: cannot open (${(err as Error).message})`);
  }
  try {
    const size = (await fh.stat()).size;
    if (size < 8) convertFail(`${path}: ${size} bytes, too short for a safetensors header`);
    const head = await readExact(fh, 0, 8, path);
    const n = new DataView(head.buffer, head.byteOffset, 8).getBigUint64(0, true);
    if (n > BigInt(size - 8)) convertFail(`${path}: header claims ${n} bytes, the file has ${size - 8} after the length (truncated or not safetensors)`);
    if (n > BigInt(MAX_HEADER_BYTES)) convertFail(`${path}: header of ${n} bytes is over the ${MAX_HEADER_BYTES}-byte limit`);
    const headerLen = Number(n);
    const text = Buffer.from(await readExact(fh, 8, headerLen, path)).toString('utf8');
    let header: Record<string, unknown>;
    try {
      header = JSON.parse(text) as Record<string, unknown>;
    } catch (err) {
      return convertFail(`${path}: header is not valid JSON (${(err as Error).message})`);
    }
    if (!header || typeof header !== 'object' || Array.isArray(header)) convertFail(`${path}: header is not a JSON object`);
    const dataStart = 8 + headerLen;
    const dataLen = size - dataStart;
    const metadata: Record<string, string> = {};
    const tensors: LazyTensor[] = [];
    for (const [name, raw] of Object.entries(header)) {
      if (name === '__metadata__') {
        if (raw && typeof raw === 'object') for (const [k, v] of Object.entries(raw)) if (typeof v === 'string') metadata[k] = v;
        continue;
      }
      const e = raw as HeaderEntry;
      const what = `${path}: tensor '${name}'`;
      if (!e || typeof e !== 'object') convertFail(`${what}: entry is not an object`);
      const dtype = e.dtype;
      if (typeof dtype !== 'string' || !(dtype in DTYPE_SIZE)) convertFail(`${what}: dtype ${JSON.stringify(dtype)} is not supported (F64, F32, F16, BF16, integer types)`);
      const shape = e.shape;
      if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && d >= 0)) convertFail(`${what}: shape ${JSON.stringify(shape)} is not a list of non-negative integers`);
      const offs = e.data_offsets;
      if (!Array.isArray(offs) || offs.length !== 2 || !offs.every((o) => Number.isSafeInteger(o) && o >= 0)) convertFail(`${what}: data_offsets ${JSON.stringify(offs)} is not [begin, end]`);
      const [begin, end] = offs as [number, number];
      if (end < begin) convertFail(`${what}: data_offsets [${begin}, ${end}] end before they begin`);
      if (end > dataLen) convertFail(`${what}: data_offsets [${begin}, ${end}] run past the ${dataLen} bytes of data (truncated file?)`);
      const count = numel(shape as number[]);
      const bytes = count * DTYPE_SIZE[dtype as DType];
      if (end - begin !== bytes) convertFail(`${what}: ${end - begin} bytes for ${dtype} [${(shape as number[]).join(', ')}], which needs ${bytes}`);
      const position = dataStart + begin;
      tensors.push({
        name,
        dtype: dtype as DType,
        shape: shape as number[],
        file: path,
        readF32: async () => decodeF32(await readExact(fh, position, bytes, what), dtype as DType, count),
      });
    }
    return { path, metadata, tensors, close: () => fh.close() };
  } catch (err) {
    await fh.close().catch(() => undefined);
    throw err;
  }
}

export interface SafetensorsSet {
  tensors: LazyTensor[];
  files: string[];
  close(): Promise<void>;
}

/** Opens several shards as one set; a tensor name in two shards is refused. */
async function openSet(paths: string[], expect?: Map<string, string>): Promise<SafetensorsSet> {
  const opened: SafetensorsFile[] = [];
  const close = async (): Promise<void> => {
    for (const f of opened) await f.close().catch(() => undefined);
  };
  try {
    const seen = new Map<string, string>();
    const tensors: LazyTensor[] = [];
    for (const p of paths) {
      const f = await openSafetensors(p);
      opened.push(f);
      for (const t of f.tensors) {
        const prev = seen.get(t.name);
        if (prev) convertFail(`tensor '${t.name}' is in both ${prev} and ${p}`);
        seen.set(t.name, p);
        const listed = expect?.get(t.name);
        if (expect && listed === undefined) continue; // not in the index: the index is what the model is
        if (listed !== undefined && listed !== basename(p)) continue;
        tensors.push(t);
      }
    }
    if (expect) {
      for (const [name, file] of expect) if (!seen.has(name)) convertFail(`tensor '${name}' is listed in the index under ${file} but that shard does not hold it`);
    }
    return { tensors, files: paths, close };
  } catch (err) {
    await close();
    throw err;
  }
}

/** Reads model.safetensors.index.json and opens its shards (plain file names in the same folder). */
export async function openSafetensorsIndex(indexPath: string): Promise<SafetensorsSet> {
  let json: { weight_map?: unknown };
  try {
    json = JSON.parse(await readFile(indexPath, 'utf8')) as { weight_map?: unknown };
  } catch (err) {
    return convertFail(`${indexPath}: cannot read the index (${(err as Error).message})`);
  }
  const map = json?.weight_map;
  if (!map || typeof map !== 'object' || Array.isArray(map)) convertFail(`${indexPath}: no weight_map object`);
  const expect = new Map<string, string>();
  const files: string[] = [];
  for (const [name, file] of Object.entries(map)) {
    if (typeof file !== 'string' || file.length === 0 || file !== basename(file) || file === '..' || file === '.' || file.includes('\\'))
      convertFail(`${indexPath}: tensor '${name}' maps to ${JSON.stringify(file)}, not a file name in the same folder`);
    expect.set(name, file);
    if (!files.includes(file)) files.push(file);
  }
  const dir = dirname(indexPath);
  for (const f of files) {
    const s = await stat(join(dir, f)).catch(() => undefined);
    if (!s?.isFile()) convertFail(`${indexPath}: shard ${f} is missing`);
  }
  return openSet(
    files.map((f) => join(dir, f)),
    expect,
  );
}
