/** lib/image: files in (sharp, DICOM), the vision tower's pixel_values, images out. */
import { decodeImage, type DecodedImage, type ImageDecodeOptions, type ImageInput } from './decode.js';
import { preprocessImage, type PreprocessOptions } from './preprocess.js';

export { decodeImage, DEFAULT_MAX_FILE_BYTES, DEFAULT_MAX_PIXELS, type DecodedImage, type ImageDecodeOptions, type ImageFormat, type ImageInput } from './decode.js';
export { decodeDicom, isDicom, readDicomFrame, type DicomFrame, type DicomInfo, type DicomOptions, type VoiWindow } from './dicom.js';
export { decoderOutputToImage, encodePng, writePng } from './encode.js';
export { checkRgbImage, type RgbImage } from './image.js';
export {
  CLIP_IMAGE_SIZE,
  CLIP_MEAN,
  CLIP_STD,
  PAD_BACKGROUND,
  VQGAN_IMAGE_SIZE,
  normalizeForClip,
  preprocessImage,
  resizeForClip,
  vqganInput,
  type PreprocessOptions,
} from './preprocess.js';
export { resample, type ResampleFilter, type RowSource } from './resample.js';

export interface PixelValues {
  /** 3 x size x size floats, channels first */
  data: Float32Array;
  size: number;
  /** the decoded source */
  source: Omit<DecodedImage, 'data'>;
}

/** Decodes a file or buffer and prepares it for the vision tower (comprehension and generation alike). */
export async function loadPixelValues(input: ImageInput, options: ImageDecodeOptions & PreprocessOptions = {}): Promise<PixelValues> {
  const img = await decodeImage(input, options);
  const data = preprocessImage(img, options);
  const { data: _pixels, ...source } = img;
  return { data, size: Math.round(Math.sqrt(data.length / 3)), source };
}
