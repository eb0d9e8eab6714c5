/**
 * PyTorch checkpoints (.bin, .pt, .pth, Lightning .ckpt) as torch.save writes them since 1.6:
 * a zip holding <folder>/data.pkl (the object, pickled) and <folder>/data/<key> (each storage's
 * raw little-endian bytes). The pickle is read by our own unpickler (pickle.ts: allow-listed
 * globals only, nothing executed); each tensor becomes a lazy view (storage, offset, size,
 * stride) read from the zip by offset when asked. A Lightning checkpoint's tensors are those of
 * its 'state_dict'. The legacy (pre-1.6, non-zip) format is refused with how to re-save it.
 */
import { open } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import { isTensorRef, PyTuple, STORAGE_DTYPES, unpickle, type TorchStorageRef, type TorchTensorRef } from './pickle.js';
import { DTYPE_SIZE, convertFail, decodeF32, numel, readExact, type LazyTensor } from './tensor.js';
import { isZipMagic, readZipDirectory, readZipEntry, type ZipEntry } from './zip.js';

/** The pickle of a checkpoint is refused past this size (real ones are a few MB). */
const MAX_PICKLE_BYTES = 256 * 1024 * 1024;

export interface TorchCheckpoint {
  path: string;
  /** the unpickled top-level object (Maps, arrays, PyTuple, TorchTensorRef ...) */
  root: unknown;
  /** the tensors of the state dict, in file order */
  tensors: LazyTensor[];
  /** top-level entries of a Lightning checkpoint other than state_dict (epoch, global_step ...) */
  extra: Map<string, unknown>;
  close(): Promise<void>;
}

function legacyMessage(path: string): string {
  return (
    `${path}: legacy (pre-1.6, non-zip) torch serialization is not supported; ` +
    're-save it with torch.save(torch.load(f), f2) from PyTorch 1.6 or newer (_use_new_zipfile_serialization=True, the default)'
  );
}

/** Contiguous strides of a shape. */
function contiguousStrides(size: readonly number[]): number[] {
  const st = new Array<number>(size.length);
  let s = 1;
  for (let i = size.length - 1; i >= 0; i--) {
    st[i] = s;
    s *= size[i]!;
  }
  return st;
}

function lazyTensor(name: string, t: TorchTensorRef, entry: ZipEntry, fh: FileHandle, path: string): LazyTensor {
  const el = DTYPE_SIZE[t.storage.dtype];
  if (entry.method !== 0) convertFail(`${path}: storage '${entry.name}' of tensor '${name}' is compressed; torch.save writes stored entries only`);
  if (entry.size < t.storage.numel * el) convertFail(`${path}: storage '${entry.name}' holds ${entry.size} bytes, ${t.storage.numel} ${t.storage.dtype} elements need ${t.storage.numel * el}`);
  const count = numel(t.size);
  const what = `${path}: tensor '${name}'`;
  const contiguous = t.size.every((d, i) => d === 1 || t.stride[i] === contiguousStrides(t.size)[i]);
  return {
    name,
    dtype: t.storage.dtype,
    shape: t.size,
    file: path,
    readF32: async () => {
      if (count === 0) return new Float32Array(0);
      if (contiguous) return decodeF32(await readExact(fh, entry.dataOffset + t.offset * el, count * el, what), t.storage.dtype, count);
      // a strided view: read the span it touches, decode, gather
      const span = 1 + t.size.reduce((acc, d, i) => acc + (d - 1) * t.stride[i]!, 0);
      const all = decodeF32(await readExact(fh, entry.dataOffset + t.offset * el, span * el, what), t.storage.dtype, span);
      const out = new Float32Array(count);
      const idx = new Array<number>(t.size.length).fill(0);
      for (let k = 0; k < count; k++) {
        let at = 0;
        for (let i = 0; i < idx.length; i++) at += idx[i]! * t.stride[i]!;
        out[k] = all[at]!;
        for (let i = idx.length - 1; i >= 0; i--) {
          if (++idx[i]! < t.size[i]!) break;
          idx[i] = 0;
        }
      }
      return out;
    },
  };
}

/** Nested dicts deeper than this are refused (a state dict is flat; a crafted pickle need not be). */
const MAX_NESTING = 32;

/** Flattens nested dicts of tensors into dotted names (how a state dict names them). */
function collectTensors(obj: Map<unknown, unknown>, prefix: string, out: Array<[string, TorchTensorRef]>, path: string, depth = 0): void {
  if (depth > MAX_NESTING) convertFail(`${path}: dicts nested more than ${MAX_NESTING} deep at '${prefix}'`);
  for (const [k, v] of obj) {
    if (typeof k !== 'string') continue;
    const name = prefix ? `${prefix}.${k}` : k;
    if (isTensorRef(v)) out.push([name, v]);
    else if (v instanceof Map) collectTensors(v, name, out, path, depth + 1);
  }
}

/** Opens a torch.save zip checkpoint. */
export async function openTorchCheckpoint(path: string): Promise<TorchCheckpoint> {
  let fh: FileHandle;
  try {
    fh = await open(path, 'r');
  } catch (err) {
    return convertFail(`${path}: cannot open (${(err as Error).message})`);
  }
  try {
    const size = (await fh.stat()).size;
    const head = await readExact(fh, 0, Math.min(size, 16), path);
    if (!isZipMagic(head)) {
      // legacy torch files start with a pickle (0x80 0x02) holding the magic number; old tar ones with a tar header
      if (head[0] === 0x80 || (size >= 262 && Buffer.from(await readExact(fh, 257, 5, path)).toString('latin1') === 'ustar')) convertFail(legacyMessage(path));
      convertFail(`${path}: not a PyTorch checkpoint (no zip signature)`);
    }
    const entries = await readZipDirectory(fh, size, path);
    const pkls = [...entries.keys()].filter((n) => /^[^/]+\/data\.pkl$/.test(n));
    if (pkls.length !== 1) convertFail(`${path}: expected one <folder>/data.pkl in the zip, found ${pkls.length}`);
    const folder = pkls[0]!.slice(0, -'/data.pkl'.length);
    const byteorder = entries.get(`${folder}/byteorder`);
    if (byteorder) {
      const order = Buffer.from(await readZipEntry(fh, byteorder, path))
        .toString('latin1')
        .trim();
      if (order !== 'little') convertFail(`${path}: saved ${order}-endian; only little-endian checkpoints are read`);
    }
    const pklEntry = entries.get(pkls[0]!)!;
    if (pklEntry.size > MAX_PICKLE_BYTES) convertFail(`${path}: data.pkl of ${pklEntry.size} bytes is over the ${MAX_PICKLE_BYTES}-byte limit`);
    const storages = new Map<string, TorchStorageRef>();
    const root = unpickle(await readZipEntry(fh, pklEntry, path), {
      what: `${path}: ${pkls[0]}`,
      persistentLoad: (pid) => {
        // ('storage', <torch.XStorage>, key, location, numel)
        const items = pid instanceof PyTuple ? pid.items : undefined;
        const cls = items?.[1] as { module?: string; name?: string } | undefined;
        if (!items || items.length < 5 || items[0] !== 'storage' || cls?.module !== 'torch' || typeof cls.name !== 'string' || !Object.hasOwn(STORAGE_DTYPES, cls.name))
          convertFail(`${path}: persistent id is not a torch storage reference`);
        const [, , key, , n] = items!;
        if (typeof key !== 'string' || !/^[A-Za-z0-9_]+$/.test(key)) convertFail(`${path}: storage key ${JSON.stringify(key)} is not a plain name`);
        if (typeof n !== 'number' || !Number.isSafeInteger(n) || n < 0) convertFail(`${path}: storage ${String(key)} has a bad length`);
        const dtype = STORAGE_DTYPES[cls!.name!]!;
        const prev = storages.get(key as string);
        if (prev && (prev.dtype !== dtype || prev.numel !== n)) convertFail(`${path}: storage ${String(key)} is described two ways`);
        const ref = prev ?? { key: key as string, dtype, numel: n as number };
        storages.set(key as string, ref);
        return ref;
      },
    });

    const extra = new Map<string, unknown>();
    let dict: Map<unknown, unknown> | undefined;
    if (root instanceof Map) {
      const sd = root.get('state_dict');
      if (sd instanceof Map) {
        dict = sd;
        for (const [k, v] of root) if (k !== 'state_dict' && typeof k === 'string') extra.set(k, v);
      } else dict = root;
    }
    if (!dict) convertFail(`${path}: the checkpoint holds no dict of tensors`);
    const found: Array<[string, TorchTensorRef]> = [];
    collectTensors(dict!, '', found, path);
    const tensors = found.map(([name, t]) => {
      const entry = entries.get(`${folder}/data/${t.storage.key}`);
      if (!entry) convertFail(`${path}: tensor '${name}': storage ${folder}/data/${t.storage.key} is missing from the zip`);
      return lazyTensor(name, t, entry!, fh, path);
    });
    return { path, root, tensors, extra, close: () => fh.close() };
  } catch (err) {
    await fh.close().catch(() => undefined);
    throw err;
  }
}
