#!/usr/bin/env node
// node tools/bench-dicom.mjs [--json] [--repeats N]
//
// Decode time of one 512 x 512 16-bit CT-like slice stored as JPEG 2000 lossless, JPEG-LS
// lossless, RLE and uncompressed, through decodeImage (parse, decode, Modality LUT, window): the
// first call (which loads the codec's WebAssembly) and the median of the next ones. The slice is
// compressed here by the same packages' encoders (codec-openjpeg, codec-charls) and wrapped in
// a minimal Part 10 file; every decode is checked against the source pixels.
import { benchCli } from './bench-cli.mjs';
import { createRequire } from 'node:module';
import { availableParallelism } from 'node:os';

const require = createRequire(import.meta.url);
const usage = `node tools/bench-dicom.mjs [--json] [--repeats N]
  --json          one JSON object instead of the table
  --repeats N     timed decodes after the first (default 10)
  (--threads and --cache are accepted for npm run bench and ignored: decoding is one thread)`;
const { lib, parse } = benchCli('bench-dicom', usage);
const o = parse(process.argv.slice(2), { json: false, repeats: 10, threads: availableParallelism(), cache: '' }, ['repeats', 'threads']);
const { decodeImage } = lib('image/index.js');
const { readDicomFrame } = lib('image/dicom.js');

const N = 512;

/** a CT-like slice: a disc of soft tissue with bone and noise in air, 12 bits used of 16 */
function slice() {
  const px = new Uint16Array(N * N);
  let seed = 1;
  const rand = () => (seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32;
  for (let y = 0; y < N; y++) {
    for (let x = 0; x < N; x++) {
      const r = Math.hypot(x - N / 2, y - N / 2);
      const base = r < 200 ? (r > 185 ? 2400 : 1064 + 40 * Math.sin(x / 9) * Math.cos(y / 13)) : 24;
      px[y * N + x] = Math.max(0, Math.round(base + (rand() - 0.5) * 30));
    }
  }
  return px;
}

async function encode(pkg, cls, px, setup) {
  const m = await require(pkg)();
  const e = new m[cls]();
  e.getDecodedBuffer({ width: N, height: N, bitsPerSample: 16, componentCount: 1, isSigned: false, isUsingColorTransform: false }).set(new Uint8Array(px.buffer));
  setup(e);
  e.encode();
  const out = Uint8Array.from(e.getEncodedBuffer());
  e.delete();
  return out;
}

/** RLE (PS3.5 Annex G) of 16-bit samples: two PackBits segments, high bytes then low bytes */
function rle(px) {
  const segment = (bytes) => {
    const out = [];
    for (let i = 0; i < bytes.length; ) {
      let run = 1;
      while (i + run < bytes.length && run < 128 && bytes[i + run] === bytes[i]) run++;
      if (run > 1) {
        out.push(257 - run, bytes[i]);
        i += run;
      } else {
        let n = 1;
        while (i + n < bytes.length && n < 128 && bytes[i + n] !== bytes[i + n - 1]) n++;
        out.push(n - 1, ...bytes.subarray(i, i + n));
        i += n;
      }
    }
    if (out.length % 2) out.push(128);
    return Uint8Array.from(out);
  };
  const hi = segment(Uint8Array.from(px, (v) => v >> 8));
  const lo = segment(Uint8Array.from(px, (v) => v & 0xff));
  const header = new DataView(new ArrayBuffer(64));
  header.setUint32(0, 2, true);
  header.setUint32(4, 64, true);
  header.setUint32(8, 64 + hi.length, true);
  return Buffer.concat([new Uint8Array(header.buffer), hi, lo]);
}

/** a minimal explicit VR little endian Part 10 file around one frame */
function part10(ts, frame, encapsulated) {
  const el = (g, e, vr, value) => {
    const long = ['OB', 'OW', 'UN', 'SQ', 'UT'].includes(vr);
    const v = Buffer.from(value);
    const h = Buffer.alloc(long ? 12 : 8);
    h.writeUInt16LE(g, 0);
    h.writeUInt16LE(e, 2);
    h.write(vr, 4, 'latin1');
    if (long) h.writeUInt32LE(v.length, 8);
    else h.writeUInt16LE(v.length, 6);
    return Buffer.concat([h, v]);
  };
  const ui = (s) => Buffer.from(s.length % 2 ? s + '\0' : s, 'latin1');
  const cs = (s) => Buffer.from(s.length % 2 ? s + ' ' : s, 'latin1');
  const us = (n) => Buffer.from(Uint16Array.of(n).buffer);
  const meta = Buffer.concat([
    el(0x0002, 0x0001, 'OB', Buffer.from([0, 1])),
    el(0x0002, 0x0002, 'UI', ui('1.2.840.10008.5.1.4.1.1.2')),
    el(0x0002, 0x0003, 'UI', ui('1.2.3.4.5')),
    el(0x0002, 0x0010, 'UI', ui(ts)),
  ]);
  const groupLength = el(0x0002, 0x0000, 'UL', Buffer.from(Uint32Array.of(meta.length).buffer));
  const data = Buffer.concat([
    el(0x0028, 0x0002, 'US', us(1)),
    el(0x0028, 0x0004, 'CS', cs('MONOCHROME2')),
    el(0x0028, 0x0010, 'US', us(N)),
    el(0x0028, 0x0011, 'US', us(N)),
    el(0x0028, 0x0100, 'US', us(16)),
    el(0x0028, 0x0101, 'US', us(16)),
    el(0x0028, 0x0102, 'US', us(15)),
    el(0x0028, 0x0103, 'US', us(0)),
    el(0x0028, 0x1050, 'DS', cs('40')),
    el(0x0028, 0x1051, 'DS', cs('400')),
    el(0x0028, 0x1052, 'DS', cs('-1024')),
    el(0x0028, 0x1053, 'DS', cs('1')),
  ]);
  let pixels;
  if (!encapsulated) pixels = el(0x7fe0, 0x0010, 'OW', frame);
  else {
    const item = (b) => {
      const h = Buffer.alloc(8);
      h.writeUInt32LE(0xe000fffe, 0);
      h.writeUInt32LE(b.length, 4);
      return Buffer.concat([h, b]);
    };
    const f = frame.length % 2 ? Buffer.concat([frame, Buffer.from([0])]) : Buffer.from(frame);
    const head = Buffer.from([0xe0, 0x7f, 0x10, 0x00, 0x4f, 0x42, 0, 0, 0xff, 0xff, 0xff, 0xff]);
    const end = Buffer.from([0xfe, 0xff, 0xdd, 0xe0, 0, 0, 0, 0]);
    pixels = Buffer.concat([head, item(Buffer.alloc(0)), item(f), end]);
  }
  return Buffer.concat([Buffer.alloc(128), Buffer.from('DICM'), groupLength, meta, data, pixels]);
}

const px = slice();
const files = {
  'JPEG 2000 lossless': part10('1.2.840.10008.1.2.4.90', await encode('@cornerstonejs/codec-openjpeg/wasmjs', 'J2KEncoder', px, (e) => e.setQuality(true, 0)), true),
  'JPEG-LS lossless': part10('1.2.840.10008.1.2.4.80', await encode('@cornerstonejs/codec-charls/wasmjs', 'JpegLSEncoder', px, (e) => e.setNearLossless(0)), true),
  'RLE lossless': part10('1.2.840.10008.1.2.5', rle(px), true),
  uncompressed: part10('1.2.840.10008.1.2.1', Buffer.from(px.buffer), false),
};

const median = (a) => [...a].sort((x, y) => x - y)[a.length >> 1];
const results = {};
for (const [name, bytes] of Object.entries(files)) {
  let t = performance.now();
  await decodeImage(bytes);
  const first = performance.now() - t;
  const f = await readDicomFrame(bytes, name, { maxPixels: N * N });
  for (let i = 0; i < px.length; i++) if (f.values[i] !== px[i]) throw new Error(`${name}: pixel ${i} decodes to ${f.values[i]}, not ${px[i]}`);
  const times = [];
  for (let r = 0; r < o.repeats; r++) {
    t = performance.now();
    await decodeImage(bytes);
    times.push(performance.now() - t);
  }
  results[name] = { bytes: bytes.length, ratio: +((px.length * 2) / bytes.length).toFixed(2), first_ms: +first.toFixed(1), median_ms: +median(times).toFixed(1) };
}

if (o.json) process.stdout.write(JSON.stringify({ size: `${N}x${N}x16`, repeats: o.repeats, results }, null, 2) + '\n');
else {
  console.log(`decodeImage of a ${N} x ${N} 16-bit slice (median of ${o.repeats}; first = first call of the process, codec load included)`);
  console.log('syntax               bytes   ratio  first ms  median ms');
  for (const [name, r] of Object.entries(results)) {
    console.log(`${name.padEnd(20)} ${String(r.bytes).padStart(7)} ${r.ratio.toFixed(2).padStart(6)} ${r.first_ms.toFixed(1).padStart(9)} ${r.median_ms.toFixed(1).padStart(10)}`);
  }
}
