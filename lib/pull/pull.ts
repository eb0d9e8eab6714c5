/**
 * `pull`: fetches a released model's files into a cache folder, one folder per repository at
 * the commit it resolved to, so a later pull of a newer commit does not overwrite the files
 * a conversion used. Everything is listed (names and sizes) before the first byte moves.
 */
import { homedir } from 'node:os';
import { join } from 'node:path';
import { HealthGPTError } from '../errors.js';
import { downloadFile, listRepoFiles, type HubFile, type HubOptions, type RepoListing } from './hub.js';
import { RELEASES, type ReleaseName, type ReleasePart } from './releases.js';

export interface PullPlanEntry {
  part: ReleasePart;
  listing: RepoListing;
  files: HubFile[];
  /** the folder the files land in */
  dir: string;
}

export function defaultCacheDir(): string {
  return process.env.HEALTHGPT_CACHE ?? join(process.env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'healthgpt');
}

export function isReleaseName(x: unknown): x is ReleaseName {
  return typeof x === 'string' && Object.hasOwn(RELEASES, x);
}

/** Lists what pulling `name` would fetch (no download). */
export async function planPull(name: ReleaseName, cacheDir: string, o: HubOptions = {}): Promise<PullPlanEntry[]> {
  if (!isReleaseName(name)) throw new HealthGPTError('ERR_INVALID_ARG', `model must be one of ${Object.keys(RELEASES).join(', ')}, got ${JSON.stringify(name)}`);
  const plan: PullPlanEntry[] = [];
  for (const part of RELEASES[name]) {
    const listing = await listRepoFiles(part.repo, part.revision, o);
    const files = part.select(listing.files);
    if (files.length === 0) throw new HealthGPTError('ERR_HTTP', `${part.repo}@${listing.commit} has none of the files HealthGPT needs`);
    const dir = join(cacheDir, 'hub', part.repo.replace('/', '--'), listing.commit);
    plan.push({ part, listing, files, dir });
  }
  return plan;
}

export interface PullProgress {
  file: string;
  done: number;
  total: number;
}

/** Downloads a plan's files (resuming partial ones); returns the bytes fetched over the network. */
export async function runPull(plan: readonly PullPlanEntry[], o: HubOptions & { onProgress?: (p: PullProgress) => void } = {}): Promise<number> {
  let fetched = 0;
  for (const entry of plan) {
    for (const f of entry.files) {
      const file = `${entry.part.repo}/${f.path}`;
      fetched += await downloadFile(entry.listing, f, join(entry.dir, f.path), { ...o, onProgress: (done, total) => o.onProgress?.({ file, done, total }) });
    }
  }
  return fetched;
}
