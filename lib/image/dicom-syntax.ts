/** The transfer syntaxes lib/image reads (PS3.5 Section 10 and Annex A), and how each stores its pixels. */

/** how a transfer syntax stores pixel data */
export type PixelEncoding =
  | 'native' // uncompressed, little endian
  | 'big-endian' // uncompressed, explicit VR big endian: bytes swapped per sample
  | 'jpeg' // JPEG baseline / extended (8-bit): libjpeg-turbo
  | 'jpeg-lossless' // JPEG process 14 (any predictor, SV1 included)
  | 'jpeg-ls' // JPEG-LS lossless and near-lossless: CharLS
  | 'j2k' // JPEG 2000: OpenJPEG
  | 'htj2k' // High-Throughput JPEG 2000: OpenJPH
  | 'rle'; // RLE Lossless (PS3.5 Annex G)

export interface TransferSyntax {
  name: string;
  encoding: PixelEncoding;
  lossy: boolean;
}

const TS: Record<string, TransferSyntax> = {
  '1.2.840.10008.1.2': { name: 'Implicit VR Little Endian', encoding: 'native', lossy: false },
  '1.2.840.10008.1.2.1': { name: 'Explicit VR Little Endian', encoding: 'native', lossy: false },
  // inflated by the parser (lib/image/dicom.ts passes a bounded inflater)
  '1.2.840.10008.1.2.1.99': { name: 'Deflated Explicit VR Little Endian', encoding: 'native', lossy: false },
  '1.2.840.10008.1.2.2': { name: 'Explicit VR Big Endian', encoding: 'big-endian', lossy: false },
  '1.2.840.10008.1.2.4.50': { name: 'JPEG Baseline (Process 1)', encoding: 'jpeg', lossy: true },
  '1.2.840.10008.1.2.4.51': { name: 'JPEG Extended (Process 2 & 4)', encoding: 'jpeg', lossy: true },
  '1.2.840.10008.1.2.4.57': { name: 'JPEG Lossless (Process 14)', encoding: 'jpeg-lossless', lossy: false },
  '1.2.840.10008.1.2.4.70': { name: 'JPEG Lossless SV1 (Process 14, Selection Value 1)', encoding: 'jpeg-lossless', lossy: false },
  '1.2.840.10008.1.2.4.80': { name: 'JPEG-LS Lossless', encoding: 'jpeg-ls', lossy: false },
  '1.2.840.10008.1.2.4.81': { name: 'JPEG-LS Near-Lossless', encoding: 'jpeg-ls', lossy: true },
  '1.2.840.10008.1.2.4.90': { name: 'JPEG 2000 (Lossless Only)', encoding: 'j2k', lossy: false },
  '1.2.840.10008.1.2.4.91': { name: 'JPEG 2000', encoding: 'j2k', lossy: true },
  '1.2.840.10008.1.2.4.201': { name: 'HTJ2K (Lossless Only)', encoding: 'htj2k', lossy: false },
  '1.2.840.10008.1.2.4.202': { name: 'HTJ2K with RPCL Options (Lossless Only)', encoding: 'htj2k', lossy: false },
  '1.2.840.10008.1.2.4.203': { name: 'HTJ2K', encoding: 'htj2k', lossy: true },
  '1.2.840.10008.1.2.5': { name: 'RLE Lossless', encoding: 'rle', lossy: false },
};

/** known, and refused with their name */
const REFUSED: Record<string, string> = {
  '1.2.840.10008.1.2.4.100': 'MPEG2 Main Profile / Main Level (video)',
  '1.2.840.10008.1.2.4.101': 'MPEG2 Main Profile / High Level (video)',
  '1.2.840.10008.1.2.4.102': 'MPEG-4 AVC/H.264 (video)',
  '1.2.840.10008.1.2.4.103': 'MPEG-4 AVC/H.264 BD-compatible (video)',
  '1.2.840.10008.1.2.4.104': 'MPEG-4 AVC/H.264 for 2D video',
  '1.2.840.10008.1.2.4.105': 'MPEG-4 AVC/H.264 for 3D video',
  '1.2.840.10008.1.2.4.106': 'MPEG-4 AVC/H.264 Stereo',
  '1.2.840.10008.1.2.4.107': 'HEVC/H.265 Main Profile (video)',
  '1.2.840.10008.1.2.4.108': 'HEVC/H.265 Main 10 Profile (video)',
  '1.2.840.10008.1.2.4.92': 'JPEG 2000 Part 2 Multi-component (Lossless Only)',
  '1.2.840.10008.1.2.4.93': 'JPEG 2000 Part 2 Multi-component',
  '1.2.840.10008.1.2.4.94': 'JPIP Referenced',
  '1.2.840.10008.1.2.4.95': 'JPIP Referenced Deflate',
  '1.2.840.10008.1.2.4.204': 'JPIP HTJ2K Referenced',
  '1.2.840.10008.1.2.4.205': 'JPIP HTJ2K Referenced Deflate',
  '1.2.840.10008.1.2.1.98': 'Encapsulated Uncompressed Explicit VR Little Endian',
  '1.2.840.10008.1.2.6.1': 'RFC 2557 MIME encapsulation',
  '1.2.840.10008.1.2.6.2': 'XML encoding',
};

/** The transfer syntax `uid`, or undefined; `refusedName` names the known ones that are not read. */
export function transferSyntax(uid: string): TransferSyntax | undefined {
  return TS[uid];
}

export function refusedName(uid: string): string {
  return REFUSED[uid] ?? (uid ? 'unknown' : 'missing');
}

/** what the README and errors list as read */
export function readSyntaxes(): string[] {
  return Object.keys(TS);
}
