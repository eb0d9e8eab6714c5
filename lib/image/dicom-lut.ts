/**
 * Lookup tables of PS3.3: Modality LUT (C.11.1), VOI LUT (C.11.2) and Palette Color LUTs
 * (C.7.6.3.1.5). A descriptor is [entries (0 means 65536), first stored value mapped, bits per
 * entry]; values below the first map to the first entry, values past the last to the last.
 */
import { HealthGPTError } from '../errors.js';

export interface Lut {
  first: number;
  bits: number;
  table: Uint16Array;
}

/**
 * Builds a LUT from its descriptor and data. 16-bit entries are words in the dataset's byte order;
 * 8-bit entries are bytes when the data is one byte per entry, else the low byte of each word.
 */
export function readLut(descriptor: number[], data: Uint8Array, littleEndian: boolean, bitRange: [number, number], what: string, name: string): Lut {
  const fail = (msg: string): never => {
    throw new HealthGPTError('ERR_DICOM', `${name}: ${what} ${msg}`);
  };
  if (descriptor.length !== 3 || !descriptor.every(Number.isInteger)) fail(`LUT Descriptor must be 3 integers, got ${JSON.stringify(descriptor)}`);
  const [n, first, bits] = descriptor;
  const entries = n === 0 ? 65536 : n;
  if (entries < 1 || entries > 65536) fail(`LUT Descriptor has ${n} entries (1..65535, or 0 for 65536)`);
  if (bits < bitRange[0] || bits > bitRange[1]) fail(`LUT Descriptor says ${bits} bits per entry; ${bitRange[0]}..${bitRange[1]} are allowed`);
  if (first < -32768 || first > 65535) fail(`LUT Descriptor's first mapped value ${first} is out of range`);
  const packed = bits === 8 && data.length >= entries && data.length < entries * 2;
  const need = packed ? entries : entries * 2;
  if (data.length < need) fail(`LUT Data has ${data.length} bytes; the descriptor's ${entries} entries of ${bits} bits need ${need}`);
  const table = new Uint16Array(entries);
  const view = new DataView(data.buffer, data.byteOffset, data.length);
  for (let i = 0; i < entries; i++) {
    const v = packed ? data[i] : view.getUint16(i * 2, littleEndian);
    table[i] = bits === 8 ? v & 0xff : v;
  }
  return { first, bits, table };
}

export function lookup(lut: Lut, v: number): number {
  const i = Math.floor(v) - lut.first;
  return lut.table[i <= 0 ? 0 : i >= lut.table.length ? lut.table.length - 1 : i];
}
