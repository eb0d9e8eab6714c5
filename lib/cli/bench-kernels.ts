/**
 * `healthgpt bench-kernels` (npm run bench:kernels): GB/s and GFLOP/s of the quantized
 * matrix-vector (decode) and matrix-matrix (prefill) kernels at Phi-3-mini's shapes, with
 * this machine's measured read bandwidth beside them: the roofline of decode, where every
 * weight byte is streamed once per token.
 */
import { Command } from 'commander';
import { intArg } from './arg-parsers.js';
import { cpus } from 'node:os';
import { MAX_THREADS, native } from '../native.js';
import { median, table, toJson } from './format.js';

/** Phi-3-mini's linear layers: input width k -> output rows. */
const SHAPES: Array<{ name: string; k: number; rows: number }> = [
  { name: 'qkv_proj', k: 3072, rows: 9216 },
  { name: 'down_proj', k: 8192, rows: 3072 },
  { name: 'gate_up_proj', k: 3072, rows: 16384 },
];

export interface KernelBenchRow {
  isa: string;
  type: string;
  shape: string;
  k: number;
  rows: number;
  n: number;
  ms: number;
  gbs: number;
  gflops: number;
}

export async function benchKernels(opts: { threads: number; types: string[]; batch: number; iters: number; isas: string[] }): Promise<{
  cpu: ReturnType<ReturnType<typeof native>['cpu']>;
  threads: number;
  readGBs: number;
  rows: KernelBenchRow[];
}> {
  const addon = native();
  const typeIds = new Map(addon.types().map((t) => [t.name, t]));
  const readGBs = await addon.readBandwidth(512, 7, opts.threads);
  const rows: KernelBenchRow[] = [];
  try {
    for (const isa of opts.isas) {
      addon.setIsa(isa as 'scalar' | 'avx2' | 'avx512' | 'auto');
      const active = addon.cpu().active;
      for (const typeName of opts.types) {
        const t = typeIds.get(typeName);
        if (!t?.supported) throw new Error(`unknown or unsupported type ${typeName}`);
        for (const s of SHAPES) {
          for (const n of [1, opts.batch]) {
            const ms = median(await addon.benchMatmul(t.id, s.rows, s.k, n, opts.threads, n === 1 ? opts.iters * 4 : opts.iters));
            const bytes = (s.rows * s.k * t.blockBytes) / t.blockSize;
            rows.push({
              isa: active,
              type: t.name,
              shape: s.name,
              k: s.k,
              rows: s.rows,
              n,
              ms,
              gbs: bytes / (ms / 1e3) / 1e9,
              gflops: (2 * s.rows * s.k * n) / (ms / 1e3) / 1e9,
            });
          }
        }
      }
    }
  } finally {
    addon.setIsa('auto');
  }
  return { cpu: addon.cpu(), threads: opts.threads, readGBs, rows };
}

export function benchKernelsCommand(): Command {
  return new Command('bench-kernels')
    .description('time the quantized matmul kernels at Phi-3-mini shapes against the memory-bandwidth roofline')
    .option('--threads <n>', 'threads', intArg(1, MAX_THREADS), cpus().length)
    .option('--types <list>', 'weight types', 'q4_0,q8_0,q4_K')
    .option('--batch <n>', 'columns of the matrix-matrix runs (prefill tokens)', intArg(1, 65536), 64)
    .option('--iters <n>', 'timed runs per case (median reported)', intArg(1, 1_000_000), 5)
    .option('--isa <list>', 'kernel levels to compare: auto, or any of scalar,avx2,avx512', 'auto')
    .option('--json', 'print JSON')
    .action(async (o: { threads: number; types: string; batch: number; iters: number; isa: string; json?: boolean }) => {
      const r = await benchKernels({ threads: o.threads, types: o.types.split(','), batch: o.batch, iters: o.iters, isas: o.isa.split(',') });
      if (o.json) {
        process.stdout.write(toJson(r) + '\n');
        return;
      }
      const out: string[] = [];
      out.push(`cpu: ${r.cpu.features} (best kernels: ${r.cpu.best}), threads: ${r.threads}`);
      out.push(`measured read bandwidth: ${r.readGBs.toFixed(1)} GB/s (the decode roofline: matrix-vector GB/s cannot exceed it)`);
      out.push('');
      const rowsT = [['isa', 'type', 'layer', 'k -> rows', 'n', 'ms', 'weights GB/s', '% of read bw', 'GFLOP/s']];
      for (const x of r.rows)
        rowsT.push([
          x.isa,
          x.type,
          x.shape,
          `${x.k} -> ${x.rows}`,
          String(x.n),
          x.ms.toFixed(3),
          x.n === 1 ? x.gbs.toFixed(1) : '',
          x.n === 1 ? `${((100 * x.gbs) / r.readGBs).toFixed(0)}%` : '',
          x.gflops.toFixed(1),
        ]);
      out.push(table(rowsT, [false, false, false, false, true, true, true, true, true]));
      process.stdout.write(out.join('\n') + '\n');
    });
}
