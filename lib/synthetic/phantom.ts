/**
 * The demo's example image: the modified Shepp-Logan head phantom (Toft's variant), the
 * standard synthetic CT slice of tomography papers, drawn here so no medical image has to be
 * shipped. Ten ellipses, each adding its intensity inside; the result is grey RGB.
 */
import type { RgbImage } from '../image/image.js';

// intensity, semi-axes a and b, centre x0 and y0, rotation in degrees (the unit square is -1..1)
const ELLIPSES: readonly (readonly [number, number, number, number, number, number])[] = [
  [1.0, 0.69, 0.92, 0, 0, 0],
  [-0.8, 0.6624, 0.874, 0, -0.0184, 0],
  [-0.2, 0.11, 0.31, 0.22, 0, -18],
  [-0.2, 0.16, 0.41, -0.22, 0, 18],
  [0.1, 0.21, 0.25, 0, 0.35, 0],
  [0.1, 0.046, 0.046, 0, 0.1, 0],
  [0.1, 0.046, 0.046, 0, -0.1, 0],
  [0.1, 0.046, 0.023, -0.08, -0.605, 0],
  [0.1, 0.023, 0.023, 0, -0.606, 0],
  [0.1, 0.023, 0.046, 0.06, -0.605, 0],
];

export function sheppLogan(size = 256): RgbImage {
  const data = new Uint8Array(size * size * 3);
  for (let row = 0; row < size; row++) {
    // image rows run top to bottom, y up
    const y = 1 - (2 * row + 1) / size;
    for (let col = 0; col < size; col++) {
      const x = (2 * col + 1) / size - 1;
      let v = 0;
      for (const [rho, a, b, x0, y0, deg] of ELLIPSES) {
        const t = (deg * Math.PI) / 180;
        const dx = x - x0,
          dy = y - y0;
        const u = dx * Math.cos(t) + dy * Math.sin(t);
        const w = -dx * Math.sin(t) + dy * Math.cos(t);
        if ((u * u) / (a * a) + (w * w) / (b * b) <= 1) v += rho;
      }
      const g = Math.round(Math.min(1, Math.max(0, v)) * 255);
      data.fill(g, (row * size + col) * 3, (row * size + col) * 3 + 3);
    }
  }
  return { width: size, height: size, data };
}
