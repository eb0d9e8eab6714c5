/**
 * Encapsulated (compressed) Pixel Data, PS3.5 A.4: an item holding the Basic Offset Table, then
 * one item per fragment, then a Sequence Delimitation Item; always little endian. A frame is one or
 * more fragments, found through the Extended Offset Table (7FE0,0001/0002), else the Basic Offset
 * Table, else one fragment per frame, else by where each codestream starts.
 */
import { HealthGPTError } from '../errors.js';

export interface Fragment {
  /** byte offset of the item tag, from the first byte after the Basic Offset Table item */
  at: number;
  /** the fragment's value in the file */
  data: Uint8Array;
}

export interface Encapsulated {
  basicOffsets: number[];
  fragments: Fragment[];
}

export interface ExtendedOffsets {
  offsets: number[];
  lengths: number[];
}

const ITEM = 0xe000;
const SEQUENCE_END = 0xe0dd;

function fail(name: string, msg: string): never {
  throw new HealthGPTError('ERR_DICOM', `${name}: encapsulated Pixel Data ${msg}`);
}

/** Reads the items of encapsulated Pixel Data whose value starts at `start` of `bytes`. */
export function readFragments(bytes: Uint8Array, start: number, name: string): Encapsulated {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.length);
  let pos = start;
  const item = (what: string): { tag: number; length: number } | undefined => {
    if (pos + 8 > bytes.length) return undefined;
    const group = view.getUint16(pos, true);
    const element = view.getUint16(pos + 2, true);
    if (group !== 0xfffe || (element !== ITEM && element !== SEQUENCE_END)) {
      fail(name, `has (${group.toString(16).toUpperCase().padStart(4, '0')},${element.toString(16).toUpperCase().padStart(4, '0')}) at byte ${pos} where ${what} should be (an item, FFFE,E000)`);
    }
    return { tag: element, length: view.getUint32(pos + 4, true) };
  };
  const bot = item('the Basic Offset Table');
  if (!bot || bot.tag !== ITEM) fail(name, 'has no Basic Offset Table item (truncated file?)');
  if (bot.length % 4 !== 0 || pos + 8 + bot.length > bytes.length) fail(name, `has a Basic Offset Table of ${bot.length} bytes: not a multiple of 4 or beyond the end of the file`);
  const basicOffsets: number[] = [];
  for (let i = 0; i < bot.length; i += 4) basicOffsets.push(view.getUint32(pos + 8 + i, true));
  pos += 8 + bot.length;
  const first = pos;
  const fragments: Fragment[] = [];
  for (;;) {
    const it = item(`fragment ${fragments.length}`);
    // a missing Sequence Delimitation Item at the very end is tolerated, as other readers do
    if (!it || it.tag === SEQUENCE_END) break;
    const left = bytes.length - (pos + 8);
    if (it.length > left) fail(name, `fragment ${fragments.length} at byte ${pos} claims ${it.length} bytes but only ${left} are left in the file (truncated or corrupt)`);
    fragments.push({ at: pos - first, data: bytes.subarray(pos + 8, pos + 8 + it.length) });
    pos += 8 + it.length;
  }
  if (fragments.length === 0) fail(name, 'has no fragments: no compressed frame');
  return { basicOffsets, fragments };
}

function concat(parts: Uint8Array[]): Uint8Array {
  if (parts.length === 1) return parts[0];
  const out = new Uint8Array(parts.reduce((s, p) => s + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

/** index of the fragment whose item starts at `offset`, or a clear error */
function fragmentAt(enc: Encapsulated, offset: number, table: string, name: string): number {
  const k = enc.fragments.findIndex((f) => f.at === offset);
  if (k < 0) fail(name, `has a ${table} offset ${offset} that is not the start of a fragment`);
  return k;
}

/** codestream start: JPEG / JPEG-LS SOI (FFD8), JPEG 2000 SOC (FF4F) */
const startsCodestream = (d: Uint8Array) => d.length >= 2 && d[0] === 0xff && (d[1] === 0xd8 || d[1] === 0x4f);

/** The bytes of frame `frame` of `frames` (fragments joined). */
export function frameData(enc: Encapsulated, frames: number, frame: number, name: string, extended?: ExtendedOffsets): Uint8Array {
  const { fragments } = enc;
  if (frames > fragments.length) fail(name, `has ${fragments.length} fragment(s), fewer than the ${frames} frames of Number of Frames (0028,0008) (truncated file?)`);
  if (extended) {
    const { offsets, lengths } = extended;
    if (offsets.length !== frames || lengths.length !== frames) fail(name, `has an Extended Offset Table of ${offsets.length} offsets and ${lengths.length} lengths for ${frames} frames`);
    let k = fragmentAt(enc, offsets[frame], 'Extended Offset Table', name);
    const parts: Uint8Array[] = [];
    let need = lengths[frame];
    while (need > 0 && k < fragments.length) {
      const d = fragments[k++].data;
      parts.push(d.subarray(0, Math.min(need, d.length)));
      need -= d.length;
    }
    if (need > 0) fail(name, `frame ${frame} of the Extended Offset Table is ${lengths[frame]} bytes, more than its fragments hold`);
    return concat(parts);
  }
  const bot = enc.basicOffsets;
  if (bot.length > 0) {
    if (bot.length !== frames) fail(name, `has a Basic Offset Table of ${bot.length} entries for ${frames} frames`);
    const k0 = fragmentAt(enc, bot[frame], 'Basic Offset Table', name);
    const k1 = frame + 1 < frames ? fragmentAt(enc, bot[frame + 1], 'Basic Offset Table', name) : fragments.length;
    if (k1 <= k0) fail(name, `has Basic Offset Table entries out of order at frame ${frame}`);
    return concat(fragments.slice(k0, k1).map((f) => f.data));
  }
  if (frames === fragments.length) return fragments[frame].data;
  if (frames === 1) return concat(fragments.map((f) => f.data));
  // several frames, more fragments, no table: a frame starts where a codestream starts
  const starts = fragments.flatMap((f, i) => (startsCodestream(f.data) ? [i] : []));
  if (starts.length !== frames || starts[0] !== 0)
    fail(name, `has ${fragments.length} fragments for ${frames} frames and no offset table; ${starts.length} of them start a codestream, so the frames cannot be told apart`);
  return concat(fragments.slice(starts[frame], starts[frame + 1] ?? fragments.length).map((f) => f.data));
}
