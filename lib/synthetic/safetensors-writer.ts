/**
 * A safetensors writer, for the synthetic release (lib/synthetic/release.ts): u64 header length,
 * the JSON header (dtype, shape, data_offsets per tensor; __metadata__), padded with spaces to a
 * multiple of 8 as the reference writer pads it, then the tensors' little-endian bytes in order.
 */
import { writeFile } from 'node:fs/promises';

export interface SafetensorsEntry {
  name: string;
  shape: number[];
  data: Float32Array | BigInt64Array;
}

export async function writeSafetensors(path: string, tensors: SafetensorsEntry[], metadata: Record<string, string> = { format: 'pt' }): Promise<void> {
  const header: Record<string, unknown> = { __metadata__: metadata };
  let off = 0;
  for (const t of tensors) {
    const n = t.shape.reduce((a, b) => a * b, 1);
    if (n !== t.data.length) throw new Error(`safetensors: ${t.name} has ${t.data.length} values for shape [${t.shape.join(', ')}]`);
    header[t.name] = { dtype: t.data instanceof Float32Array ? 'F32' : 'I64', shape: t.shape, data_offsets: [off, off + t.data.byteLength] };
    off += t.data.byteLength;
  }
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - (Buffer.byteLength(json) % 8)) % 8);
  const head = Buffer.alloc(8);
  head.writeBigUInt64LE(BigInt(Buffer.byteLength(json)));
  const parts: Uint8Array[] = [head, Buffer.from(json, 'utf8')];
  for (const t of tensors) parts.push(new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength));
  await writeFile(path, Buffer.concat(parts));
}
