/**
 * A small LRU of projected image features, keyed by the pixel tensor's content hash and the
 * tap/projector they came from: a second question about the same image re-runs neither the
 * vision tower nor its projector (and, since the features are then the same values, the
 * language model's prefix reuse skips the image's prefill too).
 */
import { createHash } from 'node:crypto';

export function pixelHash(pixels: Float32Array): string {
  return createHash('sha256')
    .update(new Uint8Array(pixels.buffer, pixels.byteOffset, pixels.byteLength))
    .digest('hex');
}

export class FeatureCache {
  private readonly entries = new Map<string, Float32Array>();
  constructor(readonly capacity: number) {}

  get(key: string): Float32Array | undefined {
    const v = this.entries.get(key);
    if (v !== undefined) {
      // most recently used last
      this.entries.delete(key);
      this.entries.set(key, v);
    }
    return v;
  }

  set(key: string, value: Float32Array): void {
    if (this.capacity === 0) return;
    this.entries.delete(key);
    this.entries.set(key, value);
    while (this.entries.size > this.capacity) this.entries.delete(this.entries.keys().next().value as string);
  }

  get size(): number {
    return this.entries.size;
  }

  clear(): void {
    this.entries.clear();
  }
}
