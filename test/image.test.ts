// lib/image: pixel tensors against transformers' CLIPImageProcessor (after HealthGPT's
// expand2square), DICOM against numpy/pydicom, bad files refused, PNG out.
// Golden vectors: tools/reference/make_image_reference.py.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync, crc32, deflateSync } from 'node:zlib';
import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { HealthGPTError } from '../lib/errors.js';
import { decodeImage } from '../lib/image/decode.js';
import { decoderOutputToImage, encodePng, writePng } from '../lib/image/encode.js';
import { loadPixelValues } from '../lib/image/index.js';
import { CLIP_IMAGE_SIZE, PAD_BACKGROUND, preprocessImage, resizeForClip, vqganInput } from '../lib/image/preprocess.js';
import { maxDiff, rejects, root, tempDir } from './helpers.js';

const dir = join(root, 'test', 'fixtures', 'image');
const fx = (f: string) => join(dir, f);
const cases = JSON.parse(readFileSync(fx('cases.json'), 'utf8'));
const gz = (f: string) => gunzipSync(readFileSync(fx(f)));
const norm = new Float32Array(new Uint8Array(readFileSync(fx('norm.f32'))).buffer);

/** the reference tensor: norm[c][u] of the stored 8-bit values (the generator checked it bit for bit) */
function referenceTensor(file: string, size: number): Float32Array {
  const u = gz(file);
  const n = size * size;
  expect(u.length).toBe(3 * n);
  const t = new Float32Array(3 * n);
  for (let i = 0; i < 3 * n; i++) t[i] = norm[Math.floor(i / n) * 256 + u[i]];
  return t;
}

describe('pixel_values against CLIPImageProcessor after expand2square', () => {
  it('the pad colour is int(mean * 255) as HealthGPT writes it, not the rounded one', () => {
    expect([...PAD_BACKGROUND]).toEqual(cases.background);
    expect([...PAD_BACKGROUND]).toEqual([122, 116, 104]);
  });

  for (const c of cases.images as { name: string; file: string; size: number; pad: boolean; tensor: string; note: string }[]) {
    const lossless = !c.file.endsWith('.jpg');
    it(`${c.name}: ${c.note}`, async () => {
      const px = await loadPixelValues(fx(c.file), { size: c.size, pad: c.pad });
      expect(px.size).toBe(c.size);
      const { max, count } = maxDiff(px.data, referenceTensor(c.tensor, c.size));
      if (lossless) {
        // lossless decodes and Pillow's resampler restated exactly: bit-identical (measured 0 on every case)
        expect(max).toBe(0);
      } else {
        // JPEG: sharp's libjpeg-turbo (mozjpeg) and Pillow's libjpeg-turbo may round the IDCT / chroma
        // upsampling differently; one 8-bit step is 1 / 255 / min(std) = 0.0150 after normalisation.
        // Measured: see the console line (0 on this fixture with sharp 0.35.5 / Pillow 13.0.0).
        console.log(`${c.name}: max abs error ${max.toExponential(3)} over ${count} of ${px.data.length} values`);
        expect(max).toBeLessThanOrEqual(2 * 0.015);
      }
    });
  }

  it('TIFF and lossless WebP decode to the PNG pixels', async () => {
    const png = await decodeImage(fx('rgb_97x31.png'));
    for (const f of ['rgb_97x31.tif', 'rgb_97x31.webp']) {
      const img = await decodeImage(fx(f));
      expect([img.width, img.height, img.format]).toEqual([97, 31, f.endsWith('.tif') ? 'tiff' : 'webp']);
      expect(Buffer.from(img.data).equals(Buffer.from(png.data))).toBe(true);
    }
  });

  it('16-bit grey is scaled by 1/257 (PIL would clip at 255): decoded bytes against the rule', async () => {
    const img = await decodeImage(fx('gray16_40x60.png'));
    expect(img.bitDepth).toBe(16);
    const { data } = await sharp(fx('gray16_40x60.png')).toColourspace('grey16').raw({ depth: 'ushort' }).toBuffer({ resolveWithObject: true });
    const v16 = new Uint16Array(data.buffer.slice(data.byteOffset, data.byteOffset + data.length));
    let over255 = 0;
    for (let i = 0; i < v16.length; i++) {
      expect(img.data[i * 3]).toBe(Math.floor(v16[i] / 257 + 0.5));
      expect(img.data[i * 3 + 2]).toBe(img.data[i * 3]);
      if (v16[i] > 255) over255++;
    }
    expect(over255).toBeGreaterThan(v16.length / 2); // clipping would have mattered
    // the caller's window on the raw samples instead
    const win = await decodeImage(fx('gray16_40x60.png'), { window: { center: 30000, width: 20000 } });
    const i = v16.findIndex((v) => v > 21000 && v < 39000);
    expect(win.data[i * 3]).toBe(Math.floor(((v16[i] - 29999.5) / 19999 + 0.5) * 255 + 0.5));
  });

  it('16-bit RGB and grey PNG: every sample round(v / 257); a 16-bit TIFF like the PNG', async () => {
    const w = 7;
    const h = 5;
    for (const [channels, space] of [
      [3, 'rgb16'],
      [1, 'grey16'],
    ] as const) {
      const v = new Uint16Array(w * h * channels);
      for (let i = 0; i < v.length; i++) v[i] = (i * 9973 + 128) % 65536;
      // (sharp's TIFF writer would cast to 8 bits: the TIFF comes from the generator)
      const file = await sharp(v, { raw: { width: w, height: h, channels } })
        .toColourspace(space)
        .png()
        .toBuffer();
      const img = await decodeImage(file);
      expect([img.format, img.bitDepth, img.width, img.height]).toEqual(['png', 16, w, h]);
      for (let i = 0; i < w * h; i++) {
        for (let c = 0; c < 3; c++) expect(img.data[i * 3 + c]).toBe(Math.floor(v[i * channels + (channels === 3 ? c : 0)] / 257 + 0.5));
      }
    }
    const tif = await decodeImage(fx('gray16_40x60.tif'));
    expect([tif.format, tif.bitDepth]).toEqual(['tiff', 16]);
    expect(Buffer.from(tif.data).equals(Buffer.from((await decodeImage(fx('gray16_40x60.png'))).data))).toBe(true);
  });

  it('the vision tower input is 3 x 336 x 336 by default, and the same for generation tasks', async () => {
    const px = await loadPixelValues(fx('rgb_97x31.png'));
    expect(px.data.length).toBe(3 * CLIP_IMAGE_SIZE * CLIP_IMAGE_SIZE);
    expect(px.source).toMatchObject({ width: 97, height: 31, format: 'png', bitDepth: 8 });
    // the top rows are pure padding: each channel is norm(pad colour)
    for (let c = 0; c < 3; c++) expect(px.data[c * 336 * 336]).toBe(norm[c * 256 + PAD_BACKGROUND[c]]);
  });

  it('the VQGAN encoder input: Lanczos to size, 2x - 1, as taming idx2img.img2idx', async () => {
    const v = cases.vqgan_input;
    const img = await decodeImage(fx(v.file));
    const want = new Float32Array(new Uint8Array(gz(v.tensor)).buffer);
    const { max } = maxDiff(vqganInput(img, v.size), want);
    // Math.sin vs C's sin could move a fixed-point weight by one unit; measured 0
    expect(max).toBeLessThanOrEqual(2 / 255);
    console.log(`vqgan input: max abs error ${max}`);
  });

  it('options are validated, naming the option and the value', () => {
    const img = { width: 2, height: 2, data: new Uint8Array(12) };
    expect(() => preprocessImage(img, { size: 0 })).toThrow(/size must be an integer from 1 to 4096, got 0/);
    expect(() => preprocessImage(img, { size: 33.5 })).toThrow(/size .* got 33.5/);
    expect(() => preprocessImage(img, { pad: 'yes' as unknown as boolean })).toThrow(/pad must be a boolean, got yes/);
    expect(() => resizeForClip({ width: 2, height: 2, data: new Uint8Array(11) })).toThrow(/image.data has 11 bytes; 2x2 RGB needs 12/);
  });
});

describe('DICOM', () => {
  for (const c of cases.dicom as {
    file: string;
    width: number;
    height: number;
    gray?: number[];
    rgb?: number[];
    window?: { center: number; width: number };
    frame?: number;
    tolerance?: number;
    note: string;
  }[]) {
    it(`${c.file}: ${c.note}`, async () => {
      const img = await decodeImage(fx(c.file), { window: c.window, frame: c.frame });
      expect([img.width, img.height, img.format]).toEqual([c.width, c.height, 'dicom']);
      const want = c.rgb ?? c.gray!.flatMap((g) => [g, g, g]);
      if (!c.tolerance) expect(Array.from(img.data)).toEqual(want);
      else {
        // tolerance from the generator: float32 vs float64 rounding of a value at .5
        const off = Array.from(img.data).map((v, i) => Math.abs(v - want[i]));
        expect(Math.max(...off)).toBeLessThanOrEqual(c.tolerance);
        console.log(`${c.file}: ${off.filter((d) => d > 0).length} of ${off.length} values differ by 1`);
      }
    });
  }

  it('a DICOM buffer decodes like the file, and feeds the tower', async () => {
    const a = await decodeImage(fx('ct_s16.dcm'));
    const b = await decodeImage(readFileSync(fx('ct_s16.dcm')));
    expect(Buffer.from(b.data).equals(Buffer.from(a.data))).toBe(true);
    expect(a.dicom).toMatchObject({ transferSyntax: '1.2.840.10008.1.2.1', photometric: 'MONOCHROME2', frames: 1, window: { center: 40, width: 400 } });
    const px = await loadPixelValues(fx('ct_s16.dcm'), { size: 16 });
    expect(px.data.length).toBe(3 * 16 * 16);
  });

  it('refuses a file without pixel data, a broken JPEG stream, a transfer syntax not read, a missing frame, a truncated file', async () => {
    await rejects(decodeImage(fx('no_pixels.dcm')), 'ERR_DICOM_NO_PIXELS', /no_pixels\.dcm: the file has no Pixel Data/);
    await rejects(decodeImage(fx('jpeg_baseline.dcm')), 'ERR_DICOM', /jpeg_baseline\.dcm: the JPEG codestream has no readable frame header/);
    // the same file under a transfer syntax that is not read (same UID length: JPIP Referenced)
    const jpip = Buffer.from(readFileSync(fx('jpeg_baseline.dcm')).toString('latin1').replace('1.2.840.10008.1.2.4.50', '1.2.840.10008.1.2.4.94'), 'latin1');
    await rejects(decodeImage(jpip), 'ERR_DICOM_UNSUPPORTED', /transfer syntax 1\.2\.840\.10008\.1\.2\.4\.94 \(JPIP Referenced\) is not supported; these are read: 1\.2\.840\.10008\.1\.2, /);
    await rejects(decodeImage(fx('multiframe.dcm'), { frame: 3 }), 'ERR_INVALID_ARG', /frame 3 was asked for but the file has 3 frames/);
    const bytes = readFileSync(fx('mono2_u12.dcm'));
    await rejects(decodeImage(bytes.subarray(0, bytes.length - 10)), 'ERR_DICOM', /image buffer \(DICOM\): .*truncated/);
    await rejects(
      decodeImage(fx('rgb_planar.dcm'), { window: { center: 40, width: 400 } }),
      'ERR_INVALID_ARG',
      /rgb_planar\.dcm: window applies to greyscale \(MONOCHROME1\/2\) images; this one is RGB/,
    );
    await rejects(decodeImage(fx('ct_s16.dcm'), { window: { center: 40, width: 0 } }), 'ERR_INVALID_ARG', /window must be \{ center, width \}.*"width":0/);
  });

  it('refuses a header claiming 40000 x 40000 before reading pixels', async () => {
    const bytes = Buffer.from(readFileSync(fx('mono1_u8.dcm')));
    // patch Rows and Columns (US, implicit VR: tag, 4-byte length, value)
    for (const [tag, v] of [
      [[0x28, 0x00, 0x10, 0x00], 40000],
      [[0x28, 0x00, 0x11, 0x00], 40000],
    ] as const) {
      const at = bytes.indexOf(Buffer.from([...tag, 2, 0, 0, 0]));
      expect(at).toBeGreaterThan(132);
      bytes.writeUInt16LE(v, at + 8);
    }
    await rejects(decodeImage(bytes), 'ERR_IMAGE_TOO_LARGE', /40000x40000 is 1600000000 pixels, more than maxPixels = 50000000/);
  });
});

/** a PNG with the given IHDR and one small IDAT */
function handMadePng(w: number, h: number): Buffer {
  const chunk = (type: string, data: Buffer) => {
    const len = Buffer.alloc(4);
    len.writeUInt32BE(data.length);
    const body = Buffer.concat([Buffer.from(type, 'latin1'), data]);
    const crc = Buffer.alloc(4);
    crc.writeUInt32BE(crc32(body));
    return Buffer.concat([len, body, crc]);
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(w, 0);
  ihdr.writeUInt32BE(h, 4);
  ihdr[8] = 8; // bit depth
  ihdr[9] = 2; // RGB
  return Buffer.concat([Buffer.from([137, 80, 78, 71, 13, 10, 26, 10]), chunk('IHDR', ihdr), chunk('IDAT', deflateSync(Buffer.alloc(16))), chunk('IEND', Buffer.alloc(0))]);
}

describe('bad images', () => {
  it('not an image', async () => {
    await rejects(decodeImage(Buffer.from('Patient: 123\nthis is a report, not an image\n')), 'ERR_IMAGE_DECODE', /image buffer: not an image in a supported format/);
    await rejects(decodeImage(new Uint8Array(0)), 'ERR_IMAGE_DECODE', /empty/);
    await rejects(decodeImage(join(dir, 'cases.json')), 'ERR_IMAGE_DECODE', /cases\.json: not an image/);
  });

  it('a missing file, a directory, a wrong argument', async () => {
    await rejects(decodeImage(fx('nope.png')), 'ERR_IMAGE_READ', /cannot read image file .*nope\.png: no such file/);
    await rejects(decodeImage(dir), 'ERR_DICOM_AMBIGUOUS', /folder .*image holds 7 DICOM images; name one/);
    await rejects(decodeImage(42 as unknown as string), 'ERR_INVALID_ARG', /image must be a file path or a Uint8Array/);
    await rejects(decodeImage(fx('rgb_50x80.png'), { maxPixels: -1 }), 'ERR_INVALID_ARG', /maxPixels must be a positive integer, got -1/);
    await rejects(decodeImage(fx('rgb_50x80.png'), { frame: 1 }), 'ERR_INVALID_ARG', /frame applies to DICOM files only/);
  });

  it('a truncated PNG and a truncated JPEG', async () => {
    const png = readFileSync(fx('rgb_50x80.png'));
    await rejects(decodeImage(png.subarray(0, png.length >> 1)), 'ERR_IMAGE_DECODE', /image buffer: the png data cannot be decoded .*truncated or corrupt/);
    const jpg = readFileSync(fx('photo_120x90.jpg'));
    await rejects(decodeImage(jpg.subarray(0, jpg.length >> 1)), 'ERR_IMAGE_DECODE', /the jpeg data cannot be decoded/);
  });

  it('a 0 x 0 PNG', async () => {
    await rejects(decodeImage(handMadePng(0, 0)), 'ERR_IMAGE_DECODE', /image buffer: /);
  });

  it('a 40000 x 40000 PNG header is refused from the header, without decoding', async () => {
    const before = process.memoryUsage().rss;
    await rejects(decodeImage(handMadePng(40000, 40000)), 'ERR_IMAGE_TOO_LARGE', /40000x40000 is 1600000000 pixels, more than maxPixels = 50000000/);
    // 4.8 GB of RGB was never allocated (allow 200 MB of noise for the heap and sharp's threads)
    expect(process.memoryUsage().rss - before).toBeLessThan(200e6);
    await rejects(decodeImage(fx('rgb_700x300.png'), { maxPixels: 100_000 }), 'ERR_IMAGE_TOO_LARGE', /700x300 is 210000 pixels, more than maxPixels = 100000/);
  });

  it('a tall thin image pads without building the square (memory)', async () => {
    // 600 x 20000 RGB (36 MB): the padded square would be 1.2 GB; padding is weighed, never built
    const tall = { width: 600, height: 20000, data: new Uint8Array(600 * 20000 * 3).fill(200) };
    const before = process.memoryUsage().rss;
    const t0 = performance.now();
    const px = preprocessImage(tall, { size: 336 });
    const ms = performance.now() - t0;
    expect(process.memoryUsage().rss - before).toBeLessThan(300e6);
    expect(px.length).toBe(3 * 336 * 336);
    // a uniform 200 inside, the pad colour beside it: the middle column is 200, the edge the pad
    const n = 336 * 336;
    expect(px[168 * 336 + 168]).toBe(norm[200]);
    expect(px[2 * n + 168 * 336]).toBe(norm[512 + PAD_BACKGROUND[2]]);
    console.log(`600 x 20000 -> 336: ${ms.toFixed(0)} ms`);
  });
});

describe('damaged files never take the process down', () => {
  // every cut and a spread of byte flips: a HealthGPTError or an image, nothing else
  async function survives(bytes: Uint8Array): Promise<'ok' | 'refused'> {
    try {
      const img = await decodeImage(bytes);
      expect(img.data.length).toBe(img.width * img.height * 3);
      return 'ok';
    } catch (err) {
      expect(err).toBeInstanceOf(HealthGPTError);
      expect((err as HealthGPTError).code).toMatch(/^ERR_(IMAGE|DICOM)/);
      return 'refused';
    }
  }

  it('DICOM files cut at every 7th byte and with flipped bytes', async () => {
    let refused = 0;
    for (const f of ['mono2_u12.dcm', 'ct_s16.dcm', 'rgb_planar.dcm', 'multiframe.dcm', 'jpeg_baseline.dcm']) {
      const bytes = readFileSync(fx(f));
      for (let cut = 0; cut < bytes.length; cut += 7) if ((await survives(bytes.subarray(0, cut))) === 'refused') refused++;
      for (let i = 132; i < bytes.length; i += 5) {
        const b = Uint8Array.from(bytes);
        b[i] ^= 0xa5;
        await survives(b);
      }
    }
    expect(refused).toBeGreaterThan(100);
  });

  it('a PNG and a JPEG cut short and with flipped bytes', async () => {
    for (const f of ['rgb_97x31.png', 'photo_120x90.jpg']) {
      const bytes = readFileSync(fx(f));
      for (let cut = 0; cut < bytes.length; cut += Math.ceil(bytes.length / 40)) expect(await survives(bytes.subarray(0, cut))).toBe('refused');
      for (let i = 0; i < bytes.length; i += Math.ceil(bytes.length / 40)) {
        const b = Uint8Array.from(bytes);
        b[i] ^= 0xff;
        await survives(b);
      }
    }
  });
});

describe('images out', () => {
  it('decoder output -> RGB as idx2img (clamp, (x + 1) / 2 * 255, truncated) -> PNG -> the same bytes', async () => {
    const d = cases.decoder;
    const x = new Float32Array(new Uint8Array(gz(d.input)).buffer);
    const img = decoderOutputToImage(x, d.width, d.height);
    expect(Buffer.from(img.data).equals(gz(d.rgb))).toBe(true);
    const png = await encodePng(img);
    const back = await decodeImage(png);
    expect([back.width, back.height, back.format]).toEqual([d.width, d.height, 'png']);
    expect(Buffer.from(back.data).equals(Buffer.from(img.data))).toBe(true);
  });

  it('a 256 x 256 RGB buffer to a PNG file', async () => {
    const data = new Uint8Array(256 * 256 * 3);
    for (let i = 0; i < data.length; i++) data[i] = (i * 7) & 255;
    const path = join(tempDir(), 'out.png');
    await writePng(path, { width: 256, height: 256, data });
    const meta = await sharp(path).metadata();
    expect([meta.format, meta.width, meta.height, meta.channels]).toEqual(['png', 256, 256, 3]);
    expect(Buffer.from((await decodeImage(path)).data).equals(Buffer.from(data))).toBe(true);
    await expect(writePng(join(tempDir(), 'no', 'such', 'dir', 'x.png'), { width: 1, height: 1, data: new Uint8Array(3) })).rejects.toMatchObject({ code: 'ERR_IMAGE_WRITE' });
    await expect(encodePng({ width: 2, height: 1, data: new Uint8Array(3) })).rejects.toMatchObject({ code: 'ERR_INVALID_ARG' });
    expect(() => decoderOutputToImage(new Float32Array(5), 2, 2)).toThrow(/decoder output has 5 values; 3 x 2 x 2 needs 12/);
  });
});
