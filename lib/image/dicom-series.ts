/**
 * A folder of DICOM files, or a DICOMDIR (PS3.10 media directory), to the one image file it
 * holds. Several images are not guessed between: the error lists them (series, instance, size,
 * frames, path) so that the user names one.
 */
import { open, readdir, stat } from 'node:fs/promises';
import { dirname, join, relative } from 'node:path';
import type { DataSet } from 'dicom-parser';
import { HealthGPTError } from '../errors.js';
import { isDicom } from './dicom.js';
import { dicomParser } from './lazy.js';

const DICOMDIR_CLASS = '1.2.840.10008.1.3.10';
/** files looked at in a folder (its subfolders included) before giving up */
const MAX_FILES = 20000;
/** enough for any header before Pixel Data; the rest of the file is not read here */
const HEAD_BYTES = 256 << 10;
const LISTED = 20;

interface Candidate {
  path: string;
  series?: number;
  instance?: number;
  line: string;
}

/** The first n bytes of a file (fewer if it is shorter). */
export async function readHead(path: string, n: number): Promise<Uint8Array> {
  const fh = await open(path, 'r');
  try {
    const buf = new Uint8Array(n);
    const { bytesRead } = await fh.read(buf, 0, n, 0);
    return buf.subarray(0, bytesRead);
  } finally {
    await fh.close();
  }
}

/** the dataset up to its pixels, or undefined if the file is not DICOM or not readable */
function header(bytes: Uint8Array): DataSet | undefined {
  if (!isDicom(bytes)) return undefined;
  // x7fe00001: dicom-parser cannot read past an Extended Offset Table (VR OV); x7fe00010: the
  // fragments of compressed Pixel Data run past the bytes read here
  for (const untilTag of ['x7fe00001', 'x7fe00010']) {
    try {
      return dicomParser().parseDicom(bytes, { untilTag });
    } catch {
      // next
    }
  }
  return undefined;
}

/** Whether these Part 10 bytes are a DICOMDIR (Media Storage Directory Storage). */
export function isDicomdir(bytes: Uint8Array): boolean {
  try {
    const meta = dicomParser().readPart10Header(bytes);
    return (meta.string('x00020002') ?? '').replace(/\0/g, '').trim() === DICOMDIR_CLASS;
  } catch {
    return false;
  }
}

function describe(ds: DataSet, path: string, base: string): Candidate {
  const s = (tag: string) => (ds.string(tag) ?? '').trim();
  const series = ds.intString('x00200011');
  const instance = ds.intString('x00200013');
  const frames = ds.intString('x00280008') ?? 1;
  const parts = [
    s('x00080060') || '?',
    `series ${series ?? '?'}${s('x0008103e') ? ` "${s('x0008103e')}"` : ''}`,
    `instance ${instance ?? '?'}`,
    `${ds.uint16('x00280011') ?? '?'}x${ds.uint16('x00280010') ?? '?'}`,
    `${frames} frame${frames === 1 ? '' : 's'}`,
  ];
  return { path, series, instance, line: `  ${relative(base, path) || path}  (${parts.join(', ')})` };
}

function choose(found: Candidate[], where: string, base: string, looked: number): string {
  if (found.length === 1) return found[0].path;
  if (found.length === 0) throw new HealthGPTError('ERR_DICOM_NO_PIXELS', `${where}: no DICOM image found (${looked} file(s) looked at)`);
  found.sort((a, b) => (a.series ?? 0) - (b.series ?? 0) || (a.instance ?? 0) - (b.instance ?? 0) || a.path.localeCompare(b.path));
  const lines = found.slice(0, LISTED).map((c) => c.line);
  if (found.length > LISTED) lines.push(`  ... and ${found.length - LISTED} more`);
  throw new HealthGPTError('ERR_DICOM_AMBIGUOUS', `${where} holds ${found.length} DICOM images; name one (paths relative to ${base}):\n${lines.join('\n')}`);
}

async function filesUnder(dir: string, out: string[]): Promise<void> {
  for (const e of await readdir(dir, { withFileTypes: true })) {
    if (out.length >= MAX_FILES) return;
    const p = join(dir, e.name);
    if (e.isDirectory()) await filesUnder(p, out);
    else if (e.isFile()) out.push(p);
  }
}

/** The image file a DICOMDIR's IMAGE records name (Referenced File ID, relative to the DICOMDIR). */
export async function pickFromDicomdir(bytes: Uint8Array, path: string): Promise<string> {
  let ds: DataSet;
  try {
    ds = dicomParser().parseDicom(bytes);
  } catch (err) {
    throw new HealthGPTError('ERR_DICOM', `${path}: not a readable DICOMDIR (${String((err as { exception?: string }).exception ?? err)})`);
  }
  const base = dirname(path);
  const found: Candidate[] = [];
  const records = ds.elements.x00041220?.items ?? [];
  for (const r of records) {
    const rec = r.dataSet;
    if (!rec || (rec.string('x00041430') ?? '').trim() !== 'IMAGE') continue;
    const id = (rec.string('x00041500') ?? '')
      .split('\\')
      .map((c) => c.trim())
      .filter(Boolean);
    if (id.length === 0) continue;
    const file = join(base, ...id);
    const head = await readHead(file, HEAD_BYTES).catch(() => undefined);
    const h = head && header(head);
    found.push(
      h ? describe(h, file, base) : { path: file, instance: rec.intString('x00200013'), line: `  ${id.join('/')}  (instance ${rec.intString('x00200013') ?? '?'}; the file is missing or unreadable)` },
    );
  }
  return choose(found, `DICOMDIR ${path}`, base, records.length);
}

/** The one DICOM image in folder `dir` (a DICOMDIR there is followed). */
export async function pickFromFolder(dir: string): Promise<string> {
  const dicomdir = join(dir, 'DICOMDIR');
  if (
    await stat(dicomdir).then(
      (s) => s.isFile(),
      () => false,
    )
  ) {
    const bytes = await readHead(dicomdir, (await stat(dicomdir)).size);
    if (isDicomdir(bytes)) return pickFromDicomdir(bytes, dicomdir);
  }
  const files: string[] = [];
  await filesUnder(dir, files);
  const found: Candidate[] = [];
  for (const f of files) {
    const h = header(await readHead(f, HEAD_BYTES));
    // images only: no reports, presentation states or DICOMDIRs
    if (h && (h.elements.x7fe00010 || h.elements.x7fe00001 || h.elements.x7fe00008 || h.elements.x7fe00009)) found.push(describe(h, f, dir));
  }
  return choose(found, `folder ${dir}`, dir, files.length);
}
