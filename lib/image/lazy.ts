/**
 * sharp (libvips) and dicom-parser, loaded on first use: requiring sharp costs 150-250 ms, which
 * every CLI start would otherwise pay, image or not.
 */
import type Sharp from 'sharp';
import type DicomParser from 'dicom-parser';

let sharpModule: typeof Sharp | undefined;
let dicomModule: typeof DicomParser | undefined;

export function sharp(): typeof Sharp {
  return (sharpModule ??= require('sharp') as typeof Sharp);
}

export function dicomParser(): typeof DicomParser {
  return (dicomModule ??= require('dicom-parser') as typeof DicomParser);
}
