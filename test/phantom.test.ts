import { describe, expect, it } from 'vitest';
import { sheppLogan } from '../lib/synthetic/phantom.js';

describe('Shepp-Logan phantom (the demo image)', () => {
  it('has the modified phantom intensities where its ellipses say', () => {
    const n = 256;
    const img = sheppLogan(n);
    expect(img.data.length).toBe(n * n * 3);
    const at = (x: number, y: number) => img.data[(Math.round(((1 - y) * n) / 2 - 0.5) * n + Math.round(((x + 1) * n) / 2 - 0.5)) * 3];
    expect(at(-0.99, 0.99)).toBe(0); // outside the head
    expect(at(0, 0.9)).toBe(255); // the skull: 1.0 alone
    expect(at(0, -0.3)).toBe(51); // brain: 1.0 - 0.8
    expect(at(0.22, 0)).toBe(0); // right ventricle: 1.0 - 0.8 - 0.2
    expect(at(0, 0.35)).toBe(76); // 1.0 - 0.8 + 0.1 = 0.3 (0.29999... in floats) * 255 = 76.49
    // grey: the three channels equal everywhere
    for (let i = 0; i < img.data.length; i += 3) if (img.data[i] !== img.data[i + 1] || img.data[i] !== img.data[i + 2]) throw new Error(`pixel ${i / 3} is not grey`);
  });
});
