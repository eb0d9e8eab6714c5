/** `healthgpt info FILE.gguf [--json]`: architecture, metadata and the tensor table. */
import { Command } from 'commander';
import { GGUFFile, type GGUFInfo, type GGUFValue } from '../gguf/file.js';
import { formatBytes, table, toJson } from './format.js';

const ARRAY_PREVIEW = 6;

function preview(v: GGUFValue, type: string): string {
  if (Array.isArray(v)) {
    const items = v.slice(0, ARRAY_PREVIEW).map((x) => (typeof x === 'string' ? JSON.stringify(x) : String(x)));
    const more = v.length > ARRAY_PREVIEW ? `, ... (${v.length - ARRAY_PREVIEW} more)` : '';
    return `[${items.join(', ')}${more}]`;
  }
  if (typeof v === 'string') {
    const s = JSON.stringify(v);
    return s.length > 100 ? `${s.slice(0, 97)}..." (${v.length} chars)` : s;
  }
  return String(v) + (type === 'bool' ? '' : '');
}

export function infoJson(info: GGUFInfo): object {
  return {
    version: info.version,
    metadata: info.metadata,
    tensors: info.tensors.map((t) => ({ name: t.name, shape: t.shape, type: t.type, offset: t.offset, bytes: t.bytes })),
  };
}

export function infoText(info: GGUFInfo): string {
  const arch = info.metadata['general.architecture'];
  const total = info.tensors.reduce((s, t) => s + t.bytes, 0);
  const out: string[] = [];
  out.push(`file: ${info.path}`);
  out.push(`format: GGUF v${info.version}, ${formatBytes(info.fileSize)}, alignment ${info.alignment}, data at ${info.dataOffset}`);
  out.push(`architecture: ${typeof arch === 'string' ? arch : '(not set)'}`);
  out.push('');
  out.push(`metadata (${Object.keys(info.metadata).length} keys):`);
  const kvRows = [['key', 'type', 'value']];
  for (const [key, value] of Object.entries(info.metadata)) {
    const t = info.types[key];
    const type = t.type === 'array' ? `[${t.itemType} x ${(value as unknown[]).length}]` : t.type;
    kvRows.push([key, type, preview(value, t.type)]);
  }
  out.push(table(kvRows).replace(/^/gm, '  '));
  out.push('');
  out.push(`tensors (${info.tensors.length}, ${formatBytes(total)}):`);
  const tRows = [['name', 'shape', 'type', 'bytes']];
  for (const t of info.tensors) tRows.push([t.name, `[${t.shape.join(', ')}]`, t.type, String(t.bytes)]);
  out.push(table(tRows, [false, false, false, true]).replace(/^/gm, '  '));
  return out.join('\n');
}

export function infoCommand(): Command {
  return new Command('info')
    .description("print a GGUF file's architecture, metadata and tensor table")
    .argument('<file>', 'GGUF file')
    .option('--json', 'print {"metadata": {...}, "tensors": [...]} as JSON')
    .action((file: string, opts: { json?: boolean }) => {
      const f = GGUFFile.open(file);
      try {
        process.stdout.write((opts.json ? toJson(infoJson(f.info)) : infoText(f.info)) + '\n');
      } finally {
        f.close();
      }
    });
}
