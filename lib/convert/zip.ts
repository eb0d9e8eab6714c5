/**
 * A reader for the zip archives torch.save writes: stored (uncompressed) entries, found through
 * the central directory (zip64 records when the archive or an entry passes 4 GiB). Entries are
 * not extracted, only located: the caller reads an entry's bytes by offset. An entry whose name
 * could escape its folder (.., an absolute path, a backslash, a drive letter) refuses the whole
 * archive; so do duplicate names and extents outside the file.
 */
import type { FileHandle } from 'node:fs/promises';
import { convertFail, readExact } from './tensor.js';

export interface ZipEntry {
  name: string;
  /** 0 stored, 8 deflated, ... */
  method: number;
  size: number;
  /** where the entry's bytes begin, past its local header */
  dataOffset: number;
}

const EOCD_SIG = 0x06054b50;
const ZIP64_LOCATOR_SIG = 0x07064b50;
const ZIP64_EOCD_SIG = 0x06064b50;
const CENTRAL_SIG = 0x02014b50;
const LOCAL_SIG = 0x04034b50;
const MAX_ENTRIES = 1_000_000;

export function isZipMagic(head: Uint8Array): boolean {
  return head.length >= 4 && head[0] === 0x50 && head[1] === 0x4b && head[2] === 0x03 && head[3] === 0x04;
}

/** Why a name is unsafe, or undefined when it stays inside the archive's folder. */
export function unsafeEntryName(name: string): string | undefined {
  if (name.length === 0) return 'an empty name';
  if (name.includes('\0')) return 'a NUL character';
  if (name.includes('\\')) return 'a backslash';
  if (name.startsWith('/')) return 'an absolute path';
  if (/^[A-Za-z]:/.test(name)) return 'a drive letter';
  if (name.split('/').some((p) => p === '..')) return 'a ".." component';
  return undefined;
}

function u64(dv: DataView, at: number, what: string): number {
  const v = dv.getBigUint64(at, true);
  if (v > BigInt(Number.MAX_SAFE_INTEGER)) convertFail(`${what}: a 64-bit field holds ${v}, past what this reader handles`);
  return Number(v);
}

/** Reads the central directory of the zip at `fh` (`size` bytes); `path` names it in errors. */
export async function readZipDirectory(fh: FileHandle, size: number, path: string): Promise<Map<string, ZipEntry>> {
  // the end-of-central-directory record: 22 bytes plus a comment of up to 65535
  const tailLen = Math.min(size, 22 + 65535);
  const tail = await readExact(fh, size - tailLen, tailLen, path);
  const tv = new DataView(tail.buffer, tail.byteOffset, tail.byteLength);
  let eocd = -1;
  for (let i = tailLen - 22; i >= 0; i--) {
    if (tv.getUint32(i, true) === EOCD_SIG) {
      eocd = i;
      break;
    }
  }
  if (eocd < 0) convertFail(`${path}: no zip end-of-central-directory record (truncated or not a zip)`);
  let count = tv.getUint16(eocd + 10, true);
  let cdSize = tv.getUint32(eocd + 12, true);
  let cdOffset = tv.getUint32(eocd + 16, true);
  const eocdPos = size - tailLen + eocd;
  if (count === 0xffff || cdSize === 0xffffffff || cdOffset === 0xffffffff) {
    // zip64: a locator right before the EOCD points at the zip64 EOCD record
    if (eocdPos < 20) convertFail(`${path}: zip64 fields without a zip64 locator`);
    const loc = await readExact(fh, eocdPos - 20, 20, path);
    const lv = new DataView(loc.buffer, loc.byteOffset, 20);
    if (lv.getUint32(0, true) !== ZIP64_LOCATOR_SIG) convertFail(`${path}: zip64 fields without a zip64 locator`);
    const recPos = u64(lv, 8, path);
    if (recPos + 56 > size) convertFail(`${path}: zip64 end record at ${recPos} is outside the file`);
    const rec = await readExact(fh, recPos, 56, path);
    const rv = new DataView(rec.buffer, rec.byteOffset, 56);
    if (rv.getUint32(0, true) !== ZIP64_EOCD_SIG) convertFail(`${path}: bad zip64 end record signature`);
    count = u64(rv, 32, path);
    cdSize = u64(rv, 40, path);
    cdOffset = u64(rv, 48, path);
  }
  if (count > MAX_ENTRIES) convertFail(`${path}: ${count} zip entries, over the ${MAX_ENTRIES} limit`);
  if (cdOffset + cdSize > size) convertFail(`${path}: central directory [${cdOffset}, ${cdOffset + cdSize}) runs past the ${size}-byte file`);
  const cd = await readExact(fh, cdOffset, cdSize, path);
  const cv = new DataView(cd.buffer, cd.byteOffset, cd.byteLength);

  const entries = new Map<string, ZipEntry>();
  let at = 0;
  for (let i = 0; i < count; i++) {
    if (at + 46 > cdSize || cv.getUint32(at, true) !== CENTRAL_SIG) convertFail(`${path}: central directory entry ${i} is malformed`);
    const method = cv.getUint16(at + 10, true);
    let csize = cv.getUint32(at + 20, true);
    let usize = cv.getUint32(at + 24, true);
    const nameLen = cv.getUint16(at + 28, true);
    const extraLen = cv.getUint16(at + 30, true);
    const commentLen = cv.getUint16(at + 32, true);
    let localOffset = cv.getUint32(at + 42, true);
    if (at + 46 + nameLen + extraLen + commentLen > cdSize) convertFail(`${path}: central directory entry ${i} runs past the directory`);
    const name = Buffer.from(cd.subarray(at + 46, at + 46 + nameLen)).toString('utf8');
    // zip64 extended information: the 64-bit values, in order, of the fields that are 0xffffffff
    let e = at + 46 + nameLen;
    const extraEnd = e + extraLen;
    while (e + 4 <= extraEnd) {
      const id = cv.getUint16(e, true);
      const len = cv.getUint16(e + 2, true);
      if (e + 4 + len > extraEnd) convertFail(`${path}: entry '${name}': extra field runs past its entry`);
      if (id === 0x0001) {
        let p = e + 4;
        const take = (): number => {
          if (p + 8 > e + 4 + len) convertFail(`${path}: entry '${name}': zip64 extra field too short`);
          const v = u64(cv, p, `${path}: entry '${name}'`);
          p += 8;
          return v;
        };
        if (usize === 0xffffffff) usize = take();
        if (csize === 0xffffffff) csize = take();
        if (localOffset === 0xffffffff) localOffset = take();
      }
      e += 4 + len;
    }
    at = extraEnd + commentLen;

    const bad = unsafeEntryName(name);
    if (bad) convertFail(`${path}: zip entry '${name}' has ${bad}: it could escape its folder, refused`);
    if (entries.has(name)) convertFail(`${path}: zip entry '${name}' appears twice`);
    if (localOffset + 30 > size) convertFail(`${path}: zip entry '${name}': local header outside the file`);
    const lh = await readExact(fh, localOffset, 30, path);
    const lv = new DataView(lh.buffer, lh.byteOffset, 30);
    if (lv.getUint32(0, true) !== LOCAL_SIG) convertFail(`${path}: zip entry '${name}': bad local header signature`);
    const dataOffset = localOffset + 30 + lv.getUint16(26, true) + lv.getUint16(28, true);
    if (dataOffset + csize > size) convertFail(`${path}: zip entry '${name}' [${dataOffset}, ${dataOffset + csize}) runs past the ${size}-byte file (truncated?)`);
    if (method === 0 && csize !== usize) convertFail(`${path}: stored zip entry '${name}' has sizes ${csize} and ${usize}`);
    entries.set(name, { name, method, size: method === 0 ? usize : csize, dataOffset });
  }
  return entries;
}

/** The bytes of a stored entry (small ones: the pickle, version files). */
export async function readZipEntry(fh: FileHandle, entry: ZipEntry, path: string): Promise<Uint8Array> {
  if (entry.method !== 0) convertFail(`${path}: zip entry '${entry.name}' is compressed (method ${entry.method}); torch.save writes stored entries only`);
  return readExact(fh, entry.dataOffset, entry.size, `${path}: ${entry.name}`);
}
