/**
 * Compressed frames to samples, through maintained decoders loaded on first use (a PNG or an
 * uncompressed DICOM never loads them): libjpeg-turbo, CharLS, OpenJPEG and OpenJPH as
 * Cornerstone's WebAssembly builds (the .wasm ships in the package and is read from disk), and
 * jpeg-lossless-decoder-js for JPEG process 14. They run on a worker thread (dicom-codec-worker).
 *
 * Before a codec sees a frame, the codestream's own header (JPEG SOF, JPEG-LS SOF55, JPEG 2000
 * SIZ) must agree with Rows, Columns and Samples per Pixel, so a stream claiming 65535 x 65535
 * is refused without allocating for it.
 */
import { HealthGPTError } from '../errors.js';
import { decodeOnWorker, type CodecResult, type CodecSamples } from './dicom-codec-worker.js';
import { interleavePlanes } from './dicom-pixels.js';
import type { PixelEncoding } from './dicom-syntax.js';

export interface FrameShape {
  rows: number;
  columns: number;
  samplesPerPixel: number;
  bitsAllocated: number;
}

/** the codec module and, for the WebAssembly ones, its decoder class */
const CODEC: Record<CompressedEncoding, { pkg: string; cls?: string }> = {
  jpeg: { pkg: '@cornerstonejs/codec-libjpeg-turbo-8bit/decodewasmjs', cls: 'JPEGDecoder' },
  'jpeg-lossless': { pkg: 'jpeg-lossless-decoder-js' },
  'jpeg-ls': { pkg: '@cornerstonejs/codec-charls/decodewasmjs', cls: 'JpegLSDecoder' },
  j2k: { pkg: '@cornerstonejs/codec-openjpeg/decodewasmjs', cls: 'J2KDecoder' },
  htj2k: { pkg: '@cornerstonejs/codec-openjph/wasmjs', cls: 'HTJ2KDecoder' },
};

function fail(name: string, msg: string): never {
  throw new HealthGPTError('ERR_DICOM', `${name}: ${msg}`);
}

/** the frame header of a codestream: size, components, bits */
interface StreamHeader {
  width: number;
  height: number;
  components: number;
  precision: number;
  /** JPEG: the SOF marker (0xC0..0xCF), JPEG-LS: 0xF7 */
  marker?: number;
  /** JPEG 2000: the tile count */
  tiles?: number;
}

/** JPEG and JPEG-LS: markers after SOI up to the first SOFn / SOF55 (ITU T.81 B.2, T.87 C.2). */
function jpegHeader(d: Uint8Array): StreamHeader | undefined {
  if (d.length < 4 || d[0] !== 0xff || d[1] !== 0xd8) return undefined;
  let p = 2;
  while (p + 4 <= d.length) {
    if (d[p] !== 0xff) return undefined;
    const m = d[p + 1];
    if (m === 0xff) {
      p++; // fill byte
      continue;
    }
    const len = (d[p + 2] << 8) | d[p + 3];
    const sof = (m >= 0xc0 && m <= 0xcf && m !== 0xc4 && m !== 0xc8 && m !== 0xcc) || m === 0xf7;
    if (sof) {
      if (p + 10 > d.length) return undefined;
      return { precision: d[p + 4], height: (d[p + 5] << 8) | d[p + 6], width: (d[p + 7] << 8) | d[p + 8], components: d[p + 9], marker: m };
    }
    if (m === 0xda || len < 2) return undefined; // scan data before any frame header
    p += 2 + len;
  }
  return undefined;
}

/** JPEG 2000: SOC then SIZ (ITU T.800 A.5.1); a JP2 file is unwrapped to its jp2c box first. */
function j2kHeader(d: Uint8Array): StreamHeader | undefined {
  const view = new DataView(d.buffer, d.byteOffset, d.length);
  if (d.length < 42 || view.getUint16(0) !== 0xff4f || view.getUint16(2) !== 0xff51) return undefined;
  const u32 = (o: number) => view.getUint32(o);
  const [xs, ys, xo, yo, xt, yt, xto, yto] = [u32(8), u32(12), u32(16), u32(20), u32(24), u32(28), u32(32), u32(36)];
  if (xs <= xo || ys <= yo || xt === 0 || yt === 0 || xto > xo || yto > yo) return undefined;
  const components = view.getUint16(40);
  if (d.length < 42 + 3 * components || components === 0) return undefined;
  const tiles = Math.ceil((xs - xto) / xt) * Math.ceil((ys - yto) / yt);
  return { width: xs - xo, height: ys - yo, components, precision: (d[42] & 0x7f) + 1, tiles };
}

/** the codestream inside a JP2 file (box 'jp2c'), or the data itself */
function j2kCodestream(d: Uint8Array): Uint8Array {
  if (d.length < 12 || d[4] !== 0x6a || d[5] !== 0x50 || d[6] !== 0x20 || d[7] !== 0x20) return d;
  const view = new DataView(d.buffer, d.byteOffset, d.length);
  for (let p = 0; p + 8 <= d.length; ) {
    const len = view.getUint32(p);
    if (view.getUint32(p + 4) === 0x6a703263) return d.subarray(p + 8, len ? p + len : d.length);
    if (len < 8) break;
    p += len;
  }
  return d;
}

export type CompressedEncoding = Exclude<PixelEncoding, 'native' | 'big-endian' | 'rle'>;

const CODEC_NAME: Record<CompressedEncoding, string> = {
  jpeg: 'JPEG',
  'jpeg-lossless': 'lossless JPEG',
  'jpeg-ls': 'JPEG-LS',
  j2k: 'JPEG 2000',
  htj2k: 'HTJ2K',
};

/** Checks a codestream's header against the dataset before any decoder allocates for it. */
function checkHeader(kind: CompressedEncoding, d: Uint8Array, shape: FrameShape, name: string): StreamHeader {
  const what = CODEC_NAME[kind];
  const h = kind === 'j2k' || kind === 'htj2k' ? j2kHeader(d) : jpegHeader(d);
  if (!h) fail(name, `the ${what} codestream has no readable frame header (corrupt, or not ${what})`);
  if (h.width !== shape.columns || h.height !== shape.rows || h.components !== shape.samplesPerPixel) {
    fail(
      name,
      `the ${what} codestream is ${h.width}x${h.height} with ${h.components} component(s), the dataset says ${shape.columns}x${shape.rows} with ${shape.samplesPerPixel} (corrupt or hostile file)`,
    );
  }
  // ITU T.800 A.4.2: tile indices are 16-bit
  if (h.tiles !== undefined && h.tiles > 65535) fail(name, `the ${what} codestream claims ${h.tiles} tiles, more than the 65535 the standard allows`);
  if (kind === 'jpeg') {
    if (h.marker === 0xc3 || h.marker === 0xf7) fail(name, `the stream is ${h.marker === 0xc3 ? 'lossless JPEG' : 'JPEG-LS'} but the transfer syntax says JPEG Baseline/Extended`);
    if (h.precision !== 8) fail(name, `${h.precision}-bit JPEG Extended (process 4) is not supported: no maintained 12-bit decoder is bundled; convert the file (e.g. gdcmconv --raw)`);
    if (h.marker !== 0xc0 && h.marker !== 0xc1 && h.marker !== 0xc2) fail(name, `JPEG frame type SOF${h.marker! - 0xc0} (arithmetic or hierarchical coding) is not supported`);
  }
  if (kind === 'jpeg-lossless' && h.marker !== 0xc3) fail(name, `the JPEG stream is not lossless (SOF${(h.marker ?? 0) - 0xc0}) although the transfer syntax says JPEG Lossless`);
  // jpeg-lossless-decoder-js interleaves such samples wrongly (checked against pydicom / GDCM)
  if (kind === 'jpeg-lossless' && h.components > 1 && h.precision > 8) {
    throw new HealthGPTError(
      'ERR_DICOM_UNSUPPORTED',
      `${name}: lossless JPEG with ${h.components} components of ${h.precision} bits is not supported (colour is read at 8 bits); convert the file (e.g. gdcmconv --raw)`,
    );
  }
  if (kind === 'jpeg-ls' && h.marker !== 0xf7) fail(name, 'the stream is not JPEG-LS (no SOF55 marker) although the transfer syntax says JPEG-LS');
  if (h.precision > 16) fail(name, `the ${what} codestream has ${h.precision}-bit samples; up to 16 are read`);
  if (h.precision < 1 || h.precision > shape.bitsAllocated) fail(name, `the ${what} codestream has ${h.precision}-bit samples, more than Bits Allocated ${shape.bitsAllocated}`);
  return h;
}

/** Decodes one compressed frame to pixel-interleaved samples, on the codec worker thread. */
export async function decodeCompressed(kind: CompressedEncoding, data: Uint8Array, shape: FrameShape, name: string): Promise<CodecSamples> {
  const d = kind === 'j2k' || kind === 'htj2k' ? j2kCodestream(data) : data;
  checkHeader(kind, d, shape, name);
  const what = CODEC_NAME[kind];
  const { pkg, cls } = CODEC[kind];
  const pixels = shape.rows * shape.columns;
  const want = pixels * shape.samplesPerPixel;
  let r: CodecResult;
  try {
    // the frame is a view into the caller's file (often a Buffer): the worker gets a copy it owns
    r = await decodeOnWorker(require.resolve(pkg), cls, new Uint8Array(d));
  } catch (err) {
    const msg = (err as Error).message ?? String(err);
    if ((err as NodeJS.ErrnoException).code === 'MODULE_NOT_FOUND') throw new HealthGPTError('ERR_DICOM', `${name}: cannot load the ${what} decoder (${pkg}): ${msg}`, { cause: err });
    throw new HealthGPTError('ERR_DICOM', `${name}: the ${what} frame cannot be decoded: ${msg}`, { cause: err });
  }
  if ('failed' in r) {
    if (r.failed === 'load') throw new HealthGPTError('ERR_DICOM', `${name}: cannot load the ${what} decoder (${pkg}): ${r.message}`);
    throw new HealthGPTError('ERR_DICOM', `${name}: the ${what} frame cannot be decoded (${r.message}${r.said ? `; the decoder said: ${r.said}` : ''}; corrupt?)`);
  }
  const samples = r.planar ? interleavePlanes(r.samples, pixels, shape.samplesPerPixel) : r.samples;
  if (samples.length !== want) fail(name, `the ${what} decoder gave ${samples.length} samples, ${shape.columns}x${shape.rows}x${shape.samplesPerPixel} = ${want} expected`);
  return samples;
}
