/**
 * Where a request's image comes from. `data:` URLs carry the bytes (any image format the
 * library reads, DICOM included); a local path (or file: URL) is read only from under the
 * folders given with --allow-dir; remote URLs are refused: the server never goes online.
 */
import { realpath, stat } from 'node:fs/promises';
import { isAbsolute, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { HealthGPTError } from '../errors.js';
import type { SessionImage } from '../session/healthgpt.js';
import { ApiError, badRequest } from './errors.js';

export class ImageSource {
  private constructor(
    private readonly allowDirs: readonly string[],
    private readonly givenDirs: readonly string[],
  ) {}

  /** The folders as real paths (symbolic links resolved), checked to exist, and as given. */
  static async create(allowDirs: readonly string[] = []): Promise<ImageSource> {
    const real: string[] = [];
    for (const d of allowDirs) {
      const st = await stat(d).catch(() => undefined);
      if (!st?.isDirectory()) throw new HealthGPTError('ERR_INVALID_ARG', `--allow-dir ${d}: ${st ? 'not a folder' : 'no such folder'}`);
      real.push(await realpath(d));
    }
    return new ImageSource(
      real,
      allowDirs.map((d) => resolve(d)),
    );
  }

  /** An image URL of a request (`param` names it in errors) as the session takes it. */
  async resolve(url: unknown, param: string): Promise<SessionImage> {
    if (typeof url !== 'string' || url === '') throw badRequest(`${param} must be a non-empty string`, param);
    if (url.startsWith('data:')) return dataUrlBytes(url, param);
    if (url.startsWith('file:')) {
      let path: string;
      try {
        path = fileURLToPath(url);
      } catch {
        throw badRequest(`${param}: not a valid file: URL`, param, 'invalid_image_url');
      }
      return this.localFile(path, param);
    }
    if (isAbsolute(url)) return this.localFile(url, param);
    if (/^[a-z][a-z0-9+.-]*:/i.test(url)) throw badRequest(`${param}: remote image URLs are refused (this server never goes online): send the image as a data: URL`, param, 'remote_url_refused');
    throw badRequest(`${param} must be a data: URL, or an absolute path under an --allow-dir folder`, param, 'invalid_image_url');
  }

  private async localFile(path: string, param: string): Promise<string> {
    if (this.allowDirs.length === 0) throw new ApiError(403, `${param}: local files are refused unless the server was started with --allow-dir`, 'local_file_refused', param);
    const refused = new ApiError(403, `${param}: ${path} is not under an --allow-dir folder`, 'local_file_refused', param);
    let real: string;
    try {
      real = await realpath(path);
    } catch {
      // whether a file exists is told only under the allowed folders, never elsewhere
      if (!under(this.allowDirs, resolve(path)) && !under(this.givenDirs, resolve(path))) throw refused;
      throw badRequest(`${param}: no such file: ${path}`, param, 'invalid_image_url');
    }
    if (!under(this.allowDirs, real)) throw refused;
    return real;
  }
}

/** Whether path lies inside one of the folders (not the folder itself). */
function under(dirs: readonly string[], path: string): boolean {
  return dirs.some((d) => {
    const r = relative(d, path);
    return r !== '' && !r.startsWith(`..${sep}`) && r !== '..' && !isAbsolute(r);
  });
}

function dataUrlBytes(url: string, param: string): Uint8Array {
  const comma = url.indexOf(',');
  const header = comma < 0 ? '' : url.slice(5, comma);
  if (comma < 0 || !header.split(';').includes('base64')) throw badRequest(`${param}: a data: URL must be base64 (data:<type>;base64,...)`, param, 'invalid_image_url');
  const bytes = Buffer.from(url.slice(comma + 1), 'base64');
  if (bytes.length === 0) throw badRequest(`${param}: the data: URL holds no bytes`, param, 'invalid_image_url');
  return bytes;
}
