// DICOM as hospitals export it: every transfer syntax, photometric interpretation and pixel layout
// of lib/image/dicom*.ts against pydicom's decode (pylibjpeg, pyjpegls, GDCM), hostile files,
// folders and DICOMDIRs. Fixtures and expectations: tools/reference/make_dicom_reference.py.
import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { beforeAll, describe, expect, it } from 'vitest';
import { HealthGPTError } from '../lib/errors.js';
import { decodeImage } from '../lib/image/decode.js';
import { readDicomFrame } from '../lib/image/dicom.js';
import { stopCodecWorker } from '../lib/image/dicom-codec-worker.js';
import { decodeCompressed } from '../lib/image/dicom-codecs.js';
import { encodePng } from '../lib/image/encode.js';
import { cli, maxDiff, rejects, root, tempDir } from './helpers.js';

const dir = join(root, 'test', 'fixtures', 'dicom');
const fx = (f: string) => join(dir, f);

interface Case {
  file: string;
  note: string;
  ts: string;
  shape: number[];
  frame?: number;
  dtype: 'i8' | 'f8' | 'u1' | 'u2';
  values: string;
  rgb8: string;
  rgb8_tolerance: number;
  lossy?: { tolerance: number; pylibjpeg_vs_gdcm: number | null; error_vs_source?: number };
  gdcm_max_diff?: number;
}
const cases = (JSON.parse(readFileSync(fx('cases.json'), 'utf8')) as { cases: Case[] }).cases;

function expected(c: Case): number[] {
  const b = gunzipSync(readFileSync(fx(c.values)));
  const buf = new Uint8Array(b).buffer;
  if (c.dtype === 'i8') return Array.from(new BigInt64Array(buf), Number);
  if (c.dtype === 'f8') return Array.from(new Float64Array(buf));
  if (c.dtype === 'u2') return Array.from(new Uint16Array(buf));
  return Array.from(new Uint8Array(buf));
}

describe('stored values equal pydicom', () => {
  it('covers every transfer syntax read', () => {
    const seen = new Set(cases.map((c) => c.ts));
    for (const ts of [
      '1.2.840.10008.1.2.1',
      '1.2.840.10008.1.2.1.99',
      '1.2.840.10008.1.2.2',
      '1.2.840.10008.1.2.5',
      '1.2.840.10008.1.2.4.50',
      '1.2.840.10008.1.2.4.51',
      '1.2.840.10008.1.2.4.57',
      '1.2.840.10008.1.2.4.70',
      '1.2.840.10008.1.2.4.80',
      '1.2.840.10008.1.2.4.81',
      '1.2.840.10008.1.2.4.90',
      '1.2.840.10008.1.2.4.91',
      '1.2.840.10008.1.2.4.201',
      '1.2.840.10008.1.2.4.202',
      '1.2.840.10008.1.2.4.203',
    ])
      expect(seen, ts).toContain(ts);
  });

  for (const c of cases) {
    it(`${c.file}${c.frame !== undefined ? ` frame ${c.frame}` : ''}: ${c.note}`, async () => {
      const f = await readDicomFrame(readFileSync(fx(c.file)), c.file, { frame: c.frame, maxPixels: 1e6 });
      expect([f.height, f.width]).toEqual(c.shape.slice(0, 2));
      const want = expected(c);
      const got = Array.from(f.values);
      if (!c.lossy) expect(got).toEqual(want);
      else {
        const d = maxDiff(got, want);
        console.log(
          `${c.file}: lossy ${c.ts}: max |ours - pylibjpeg| = ${d.max} (${d.count} of ${want.length} samples differ); pylibjpeg vs GDCM ${c.lossy.pylibjpeg_vs_gdcm ?? 'n/a (GDCM has no decoder)'}; tolerance ${c.lossy.tolerance}; codec error vs source ${c.lossy.error_vs_source}`,
        );
        expect(d.max).toBeLessThanOrEqual(c.lossy.tolerance);
      }
    });
  }
});

describe('8-bit RGB through the LUTs, as numpy/pydicom compute it', () => {
  for (const c of cases) {
    it(`${c.file}${c.frame !== undefined ? ` frame ${c.frame}` : ''}`, async () => {
      const img = await decodeImage(fx(c.file), { frame: c.frame });
      const want = gunzipSync(readFileSync(fx(c.rgb8)));
      const d = maxDiff(img.data, want);
      if (d.max > 0) console.log(`${c.file}: 8-bit image differs by up to ${d.max} in ${d.count} of ${want.length} values (allowed ${c.rgb8_tolerance})`);
      expect(d.max).toBeLessThanOrEqual(c.rgb8_tolerance);
      expect(img.dicom!.transferSyntax).toBe(c.ts);
      expect(img.dicom!.lossy).toBe(!!c.lossy);
    });
  }
});

describe('hostile files: a clear error, bounded memory', () => {
  it('a JPEG 2000 stream claiming 65535 x 65535, or 16.7 million tiles', async () => {
    const before = process.memoryUsage().rss;
    await rejects(decodeImage(fx('hostile_j2k_65535.dcm')), 'ERR_DICOM', /hostile_j2k_65535\.dcm: the JPEG 2000 codestream is 65535x65535 with 1 component\(s\), the dataset says 64x48/);
    await rejects(decodeImage(fx('hostile_j2k_tiles.dcm')), 'ERR_DICOM', /claims 16777216 tiles, more than the 65535 the standard allows/);
    expect(process.memoryUsage().rss - before).toBeLessThan(200e6);
  });

  it('a fragment longer than the file', async () => {
    await rejects(decodeImage(fx('hostile_fragment.dcm')), 'ERR_DICOM', /encapsulated Pixel Data fragment 0 at byte \d+ claims 2147483632 bytes but only \d+ are left in the file/);
  });

  it('Number of Frames x frame size beyond the data', async () => {
    await rejects(decodeImage(fx('hostile_frames.dcm')), 'ERR_DICOM', /Pixel Data holds 1536 bytes; Number of Frames 99999 x 32x24x1 samples of 16 bits needs 153598464/);
  });

  it('LUT descriptors out of range', async () => {
    await rejects(decodeImage(fx('hostile_lut_entries.dcm')), 'ERR_DICOM', /Red Palette Color LUT LUT Data has 400 bytes; the descriptor's 65536 entries of 16 bits need 131072/);
    await rejects(decodeImage(fx('hostile_lut_bits.dcm')), 'ERR_DICOM', /VOI LUT Sequence LUT Descriptor says 20 bits per entry; 8\.\.16 are allowed/);
  });

  it('a 12-bit JPEG Extended stream is refused by name', async () => {
    // patch the SOF precision of the 8-bit .51 fixture to 12
    const b = Buffer.from(readFileSync(fx('jpeg_extended_mono8.dcm')));
    const sof = b.indexOf(Buffer.from([0xff, 0xc0]));
    b[sof + 4] = 12;
    await rejects(decodeImage(b), 'ERR_DICOM', /12-bit JPEG Extended \(process 4\) is not supported/);
  });

  it('16-bit colour lossless JPEG is refused by name (its decoder gets it wrong)', async () => {
    // patch the SOF3 precision of the 8-bit RGB fixture to 16, and Bits Allocated / Stored / High Bit to match
    const b = Buffer.from(readFileSync(fx('jpeg_sv1_rgb8.dcm')));
    b[b.indexOf(Buffer.from([0xff, 0xc3])) + 4] = 16;
    for (const [el, v] of [
      [0x00, 16],
      [0x01, 16],
      [0x02, 15],
    ])
      b.writeUInt16LE(v, b.indexOf(Buffer.from([0x28, 0, el, 0x01, 0x55, 0x53, 2, 0])) + 8);
    await rejects(decodeImage(b), 'ERR_DICOM_UNSUPPORTED', /lossless JPEG with 3 components of 16 bits is not supported/);
  });

  it('compressed files cut short and with flipped bytes never take the process down', async () => {
    let refused = 0;
    for (const f of ['jpeg_baseline_ybr422.dcm', 'jpegls_rgb8.dcm', 'j2k_mono16s.dcm', 'htj2k_mono16.dcm', 'rle_rgb8_3f.dcm', 'jpeg_sv1_mono16.dcm', 'jpegls_3f_eot.dcm', 'deflate_mono12.dcm']) {
      const bytes = readFileSync(fx(f));
      for (let cut = 0; cut < bytes.length; cut += Math.ceil(bytes.length / 25)) {
        const r = await decodeImage(bytes.subarray(0, cut), { frame: undefined }).then(
          () => 'ok',
          (e) => e,
        );
        if (r !== 'ok') {
          expect(r).toBeInstanceOf(HealthGPTError);
          refused++;
        }
      }
      for (let i = 300; i < bytes.length; i += Math.ceil(bytes.length / 25)) {
        const b = Uint8Array.from(bytes);
        b[i] ^= 0x5a;
        const r = await decodeImage(b).then(
          () => 'ok',
          (e) => e,
        );
        if (r !== 'ok') expect(r).toBeInstanceOf(HealthGPTError);
      }
    }
    expect(refused).toBeGreaterThan(100);
  }, 60_000);
});

describe('folders and DICOMDIRs', () => {
  it('a DICOMDIR with one image, or its folder, reads that image', async () => {
    const a = await decodeImage(fx('dicomdir_one/DICOMDIR'));
    const b = await decodeImage(fx('dicomdir_one'));
    expect([a.width, a.height, a.format]).toEqual([8, 8, 'dicom']);
    expect(Buffer.from(b.data).equals(Buffer.from(a.data))).toBe(true);
  });

  it('a DICOMDIR with two series lists them', async () => {
    await rejects(
      decodeImage(fx('dicomdir_two/DICOMDIR')),
      'ERR_DICOM_AMBIGUOUS',
      /DICOMDIR .*holds 2 DICOM images; name one .*\n {2}PT000000\/ST000000\/SE000000\/IM000000 {2}\(OT, series 1 "series A", instance 1, 8x8, 1 frame\)\n {2}PT000000\/ST000000\/SE000001\/IM000000 {2}\(OT, series 2 "series B"/,
    );
    await rejects(decodeImage(fx('dicomdir_two')), 'ERR_DICOM_AMBIGUOUS', /holds 2 DICOM images/);
  });

  it('a folder: its one image (other files ignored), else a listing', async () => {
    const d = tempDir();
    mkdirSync(join(d, 'sub'));
    copyFileSync(fx('j2k_mono16s.dcm'), join(d, 'sub', 'slice.dcm'));
    writeFileSync(join(d, 'notes.txt'), 'not an image');
    const img = await decodeImage(d);
    const direct = await decodeImage(fx('j2k_mono16s.dcm'));
    expect(Buffer.from(img.data).equals(Buffer.from(direct.data))).toBe(true);
    copyFileSync(fx('jpegls_3f_eot.dcm'), join(d, 'cine.dcm'));
    await rejects(decodeImage(d), 'ERR_DICOM_AMBIGUOUS', /folder .* holds 2 DICOM images[\s\S]*cine\.dcm {2}\(OT, series \?, instance \?, 32x24, 3 frames\)[\s\S]*sub\/slice\.dcm/);
    await rejects(decodeImage(tempDir()), 'ERR_DICOM_NO_PIXELS', /no DICOM image found \(0 file\(s\) looked at\)/);
  });
});

describe('codecs load only when a compressed frame needs them', () => {
  it('a PNG and an uncompressed DICOM start no codec worker; a JPEG-LS file sends CharLS only to it', () => {
    const script = `
      const { Worker } = require('node:worker_threads');
      const sent = [];
      const post = Worker.prototype.postMessage;
      Worker.prototype.postMessage = function (m, t) { sent.push(m.path.replace(/.*node_modules./, '')); return post.call(this, m, t); };
      const { decodeImage } = require(${JSON.stringify(join(root, 'dist', 'image', 'index.js'))});
      const { codecWorkerRunning } = require(${JSON.stringify(join(root, 'dist', 'image', 'dicom-codec-worker.js'))});
      const loaded = () => Object.keys(require.cache).filter((k) => /node_modules.*(codec-|jpeg-lossless)/.test(k));
      (async () => {
        await decodeImage(${JSON.stringify(join(root, 'test', 'fixtures', 'image', 'rgb_50x80.png'))});
        await decodeImage(${JSON.stringify(fx('be_mono16s.dcm'))});
        const before = { worker: codecWorkerRunning(), loaded: loaded(), sent: [...sent] };
        await decodeImage(${JSON.stringify(fx('jpegls_rgb8.dcm'))});
        console.log(JSON.stringify([before, { worker: codecWorkerRunning(), loaded: loaded(), sent }]));
      })();`;
    // the process ends by itself once the decodes are done: the idle worker does not hold it
    const r = require('node:child_process').spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', timeout: 30_000 });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    const [before, after] = JSON.parse(r.stdout);
    expect(before).toEqual({ worker: false, loaded: [], sent: [] });
    // the codec loads in the worker, not on the JS thread
    expect(after).toEqual({ worker: true, loaded: [], sent: ['@cornerstonejs/codec-charls/dist/charlswasm_decode.js'] });
  });
});

describe('decoding leaves the JS thread free', () => {
  const N = 512;
  const shape = { rows: N, columns: N, samplesPerPixel: 1, bitsAllocated: 16 };
  let source: Uint16Array;
  let stream: Uint8Array;

  /** a 512 x 512 16-bit CT-like slice and its JPEG 2000 lossless codestream, by OpenJPEG's encoder */
  async function slice(): Promise<void> {
    source = new Uint16Array(N * N);
    let seed = 7;
    for (let i = 0; i < source.length; i++) {
      seed = (seed * 1103515245 + 12345) >>> 0;
      const x = i % N;
      const y = (i / N) | 0;
      source[i] = (Math.hypot(x - N / 2, y - N / 2) < 200 ? 1000 + 40 * Math.sin(x / 9) : 24) + (seed >>> 27);
    }
    const m = await require('@cornerstonejs/codec-openjpeg/wasmjs')();
    const e = new m.J2KEncoder();
    e.getDecodedBuffer({ width: N, height: N, bitsPerSample: 16, componentCount: 1, isSigned: false, isUsingColorTransform: false }).set(new Uint8Array(source.buffer));
    e.setQuality(true, 0);
    e.encode();
    stream = Uint8Array.from(e.getEncodedBuffer());
    e.delete();
  }

  beforeAll(slice);

  it('a 5 ms timer keeps firing while four 512 x 512 16-bit JPEG 2000 slices decode', async () => {
    expect(Array.from(await decodeCompressed('j2k', stream, shape, 'slice'))).toEqual(Array.from(source)); // warm: codec loaded
    let last = performance.now();
    let maxGap = 0;
    const timer = setInterval(() => {
      const now = performance.now();
      maxGap = Math.max(maxGap, now - last);
      last = now;
    }, 5);
    const t0 = performance.now();
    const out = await Promise.all([0, 1, 2, 3].map(() => decodeCompressed('j2k', stream, shape, 'slice')));
    const took = performance.now() - t0;
    maxGap = Math.max(maxGap, performance.now() - last);
    clearInterval(timer);
    for (const o of out) expect(o).toEqual(source);
    // on the JS thread the four decodes run back to back and the timer waits for all of them
    expect(maxGap).toBeLessThan(took / 4);
  });

  it('a worker that stops rejects its pending decode by name; the next decode starts a fresh one', async () => {
    const pending = decodeCompressed('j2k', stream, shape, 'slice.dcm');
    await stopCodecWorker();
    await rejects(pending, 'ERR_DICOM', /slice\.dcm: the JPEG 2000 frame cannot be decoded: the codec worker thread stopped \(exit code 1\)/);
    expect(await decodeCompressed('j2k', stream, shape, 'slice.dcm')).toEqual(source);
  });
});

describe('healthgpt ask -i compressed.dcm', () => {
  const hg = join(root, 'test', 'fixtures', 'healthgpt');
  const f = (n: string) => join(hg, n);
  const manifest = JSON.parse(readFileSync(f('manifest.json'), 'utf8')) as { question: string };
  const base = ['ask', '-m', f('lm.gguf'), '--vision', f('clip.gguf'), '--plugin-com', f('com.gguf'), '--threads', '2', '-n', '3', '--json'];

  it('--frame 1 of a fragmented JPEG 2000 file answers as the same frame given as a PNG', async () => {
    const d = tempDir();
    const png = join(d, 'frame1.png');
    const img = await decodeImage(fx('j2k_3f_bot_2frag.dcm'), { frame: 1 });
    writeFileSync(png, await encodePng(img));
    const fromDicom = cli([...base, '-i', fx('j2k_3f_bot_2frag.dcm'), '--frame', '1', manifest.question]);
    expect(fromDicom.stderr).toBe('');
    expect(fromDicom.status).toBe(0);
    const fromPng = cli([...base, '-i', png, manifest.question]);
    expect(fromPng.status).toBe(0);
    const tokens = (r: { stdout: string }) => (JSON.parse(r.stdout) as { tokens: number[] }).tokens;
    expect(tokens(fromDicom)).toEqual(tokens(fromPng));
    const frame0 = cli([...base, '-i', fx('j2k_3f_bot_2frag.dcm'), manifest.question]);
    expect(frame0.status).toBe(0);
  }, 120_000);

  it('--frame out of range and a DICOMDIR with two series are refused by name', () => {
    let r = cli([...base, '-i', fx('j2k_3f_bot_2frag.dcm'), '--frame', '3', 'q']);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/frame 3 was asked for but the file has 3 frames/);
    r = cli([...base, '-i', fx('dicomdir_two'), 'q']);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/holds 2 DICOM images; name one/);
    r = cli([...base, '-i', fx('j2k_mono16s.dcm'), '--frame', 'x', 'q']);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/--frame must be a non-negative integer, got "x"/);
  }, 60_000);
});
