/**
 * A small Hugging Face Hub client: what `healthgpt pull` needs and nothing else. Lists a
 * repository's files with their sizes and checksums (`/api/models/{repo}/revision/{rev}?blobs=true`:
 * LFS files carry a sha256, the others a git blob id), downloads each through
 * `/{repo}/resolve/{commit}/{path}` into `<file>.part`, resumes a `.part` with an HTTP Range
 * request, verifies size and checksum before the final rename, and never leaves a
 * half-written file under its real name. `HF_ENDPOINT` and `HF_TOKEN` are honoured as by the
 * huggingface_hub library.
 */
import { createHash, type Hash } from 'node:crypto';
import { createReadStream, createWriteStream, existsSync, mkdirSync, renameSync, statSync, unlinkSync } from 'node:fs';
import { dirname } from 'node:path';
import { HealthGPTError } from '../errors.js';

export interface HubOptions {
  /** default: $HF_ENDPOINT or https://huggingface.co */
  endpoint?: string;
  /** default: $HF_TOKEN; sent as a bearer token */
  token?: string;
  signal?: AbortSignal;
}

export interface HubFile {
  path: string;
  size: number;
  /** LFS files: the content's sha256 (hex) */
  sha256?: string;
  /** other files: the git blob id, sha1 over "blob <size>\0" + content */
  blobId?: string;
}

export interface RepoListing {
  repo: string;
  /** the commit the revision resolved to: downloads pin it, so a push mid-pull cannot mix versions */
  commit: string;
  files: HubFile[];
}

export function hubEndpoint(o: HubOptions = {}): string {
  const given = o.endpoint ?? process.env.HF_ENDPOINT;
  const url = (given ?? 'https://huggingface.co').replace(/\/+$/, '');
  if (!/^https?:\/\/[^/\s]+/i.test(url) || !URL.canParse(url))
    throw new HealthGPTError('ERR_INVALID_ARG', `${o.endpoint !== undefined ? 'endpoint' : 'HF_ENDPOINT'} must be an http(s) URL, got ${JSON.stringify(given)}`);
  return url;
}

function headers(o: HubOptions): Record<string, string> {
  const token = o.token ?? process.env.HF_TOKEN;
  return token ? { authorization: `Bearer ${token}` } : {};
}

const REPO_RE = /^[A-Za-z0-9][\w.-]*\/[\w.-]+$/;
const encodePath = (p: string) => p.split('/').map(encodeURIComponent).join('/');

async function request(url: string, o: HubOptions, extra: Record<string, string> = {}): Promise<Response> {
  try {
    return await fetch(url, { headers: { ...headers(o), ...extra }, signal: o.signal, redirect: 'follow' });
  } catch (err) {
    if (o.signal?.aborted) throw new HealthGPTError('ABORT_ERR', 'download aborted', { cause: err });
    throw new HealthGPTError('ERR_NETWORK', `cannot reach ${new URL(url).origin}: ${(err as Error).message}`, { cause: err });
  }
}

function httpError(res: Response, what: string): HealthGPTError {
  const hint = res.status === 401 || res.status === 403 ? ' (gated or private: set HF_TOKEN to a token that has access)' : res.status === 404 ? ' (no such repository, revision or file)' : '';
  return new HealthGPTError('ERR_HTTP', `${what}: HTTP ${res.status} ${res.statusText}${hint}`);
}

/** The files of `repo` at `revision` (a branch, tag or commit), with sizes and checksums. */
export async function listRepoFiles(repo: string, revision = 'main', o: HubOptions = {}): Promise<RepoListing> {
  if (!REPO_RE.test(repo)) throw new HealthGPTError('ERR_INVALID_ARG', `repository must look like owner/name, got ${JSON.stringify(repo)}`);
  const url = `${hubEndpoint(o)}/api/models/${repo}/revision/${encodeURIComponent(revision)}?blobs=true`;
  const res = await request(url, o);
  if (!res.ok) throw httpError(res, `listing ${repo}@${revision}`);
  const body = (await res.json()) as { sha?: unknown; siblings?: unknown };
  if (typeof body.sha !== 'string' || !Array.isArray(body.siblings)) throw new HealthGPTError('ERR_HTTP', `listing ${repo}@${revision}: the hub's answer has no sha/siblings`);
  const files: HubFile[] = body.siblings.map((s: Record<string, unknown>) => {
    const lfs = s.lfs as { sha256?: string; size?: number } | undefined;
    const size = lfs?.size ?? s.size;
    const name = s.rfilename;
    if (typeof name !== 'string' || typeof size !== 'number') throw new HealthGPTError('ERR_HTTP', `listing ${repo}: a file entry lacks its name or size (was ?blobs=true honoured?)`);
    if (name.split('/').some((part: string) => part === '..' || part === '' || part === '.')) throw new HealthGPTError('ERR_HTTP', `listing ${repo}: refusing file path ${JSON.stringify(name)}`);
    return { path: name, size, sha256: lfs?.sha256, blobId: lfs ? undefined : (s.blobId as string | undefined) };
  });
  return { repo, commit: body.sha, files };
}

function hasherFor(file: HubFile): { hash: Hash; expect: string | undefined; kind: string } {
  if (file.sha256) return { hash: createHash('sha256'), expect: file.sha256.toLowerCase(), kind: 'sha256' };
  const hash = createHash('sha1');
  hash.update(`blob ${file.size}\0`);
  return { hash, expect: file.blobId?.toLowerCase(), kind: 'git blob sha1' };
}

async function hashInto(hash: Hash, path: string): Promise<void> {
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
}

export interface DownloadOptions extends HubOptions {
  /** bytes done so far and the total, after every chunk */
  onProgress?: (done: number, total: number) => void;
}

/**
 * Downloads one file of a listing to `dest` (resuming `dest.part`), then checks its size and
 * checksum. A complete `dest` of the right size is kept (checksums are checked on download, and
 * again with `verify`). Returns the bytes fetched over the network.
 */
export async function downloadFile(listing: RepoListing, file: HubFile, dest: string, o: DownloadOptions = {}): Promise<number> {
  if (existsSync(dest) && statSync(dest).size === file.size) {
    o.onProgress?.(file.size, file.size);
    return 0;
  }
  mkdirSync(dirname(dest), { recursive: true });
  const part = `${dest}.part`;
  let have = existsSync(part) ? statSync(part).size : 0;
  if (have > file.size) {
    unlinkSync(part);
    have = 0;
  }
  const url = `${hubEndpoint(o)}/${listing.repo}/resolve/${listing.commit}/${encodePath(file.path)}`;
  let res = have > 0 && have < file.size ? await request(url, o, { range: `bytes=${have}-` }) : await request(url, o);
  if (have > 0 && res.status === 200) have = 0; // the server ignored the range: start over
  if (!res.ok) throw httpError(res, `downloading ${listing.repo}/${file.path}`);
  if (have > 0 && res.status === 206) {
    const range = res.headers.get('content-range');
    if (!range?.startsWith(`bytes ${have}-`)) {
      await res.body?.cancel();
      unlinkSync(part);
      have = 0;
      res = await request(url, o);
      if (!res.ok) throw httpError(res, `downloading ${listing.repo}/${file.path}`);
    }
  }
  const { hash, expect, kind } = hasherFor(file);
  if (have > 0) await hashInto(hash, part);
  else if (existsSync(part)) unlinkSync(part);
  const out = createWriteStream(part, { flags: have > 0 ? 'a' : 'w' });
  let done = have;
  let fetched = 0;
  try {
    if (!res.body) throw new HealthGPTError('ERR_HTTP', `downloading ${listing.repo}/${file.path}: empty response`);
    for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
      if (done + chunk.length > file.size) throw new HealthGPTError('ERR_CHECKSUM', `${listing.repo}/${file.path}: the server sent more than the listed ${file.size} bytes`);
      hash.update(chunk);
      if (!out.write(chunk)) await new Promise<void>((r) => out.once('drain', () => r()));
      done += chunk.length;
      fetched += chunk.length;
      o.onProgress?.(done, file.size);
    }
  } catch (err) {
    await new Promise<void>((r) => out.end(() => r()));
    if (err instanceof HealthGPTError && err.code === 'ERR_CHECKSUM') unlinkSync(part);
    if (o.signal?.aborted) throw new HealthGPTError('ABORT_ERR', `download of ${file.path} aborted (${done} of ${file.size} bytes kept in ${part} to resume)`, { cause: err });
    if (err instanceof HealthGPTError) throw err;
    throw new HealthGPTError('ERR_NETWORK', `downloading ${listing.repo}/${file.path}: connection lost at ${done} of ${file.size} bytes (run pull again to resume): ${(err as Error).message}`, {
      cause: err,
    });
  }
  await new Promise<void>((resolve, reject) => out.end((err?: Error | null) => (err ? reject(err) : resolve())));
  if (done !== file.size) throw new HealthGPTError('ERR_NETWORK', `downloading ${listing.repo}/${file.path}: got ${done} of ${file.size} bytes (run pull again to resume)`);
  const got = hash.digest('hex');
  if (expect && got !== expect) {
    unlinkSync(part);
    throw new HealthGPTError('ERR_CHECKSUM', `${listing.repo}/${file.path}: ${kind} ${got} does not match the hub's ${expect}; the partial file was deleted`);
  }
  renameSync(part, dest);
  return fetched;
}
