// C++ formatting of native/ and src/ with clang-format at the version .clang-format was
// written for (the pip wheel `clang-format==20.1.8`; .ci/run installs it). `--check` (the
// default, `npm run lint`) fails listing the files that differ; `--write` formats them in place.
// The binary: $CLANG_FORMAT, else clang-format on PATH.
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const VERSION = '20.1.8';
const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const bin = process.env.CLANG_FORMAT || 'clang-format';
const write = process.argv.includes('--write');

function fail(message) {
  console.error(`clang-format: ${message}`);
  process.exit(1);
}

const v = spawnSync(bin, ['--version'], { encoding: 'utf8' });
if (v.error || v.status !== 0) fail(`${bin} not found: pip install clang-format==${VERSION} (or set CLANG_FORMAT)`);
if (!v.stdout.includes(`version ${VERSION}`)) fail(`${bin} is ${v.stdout.trim()}, the style is pinned to ${VERSION} (other versions format differently): pip install clang-format==${VERSION}`);

/** C, C++ and CUDA sources under dir, recursively. */
function sources(dir) {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = join(dir, e.name);
    if (e.isDirectory()) return sources(p);
    return /\.(c|cc|cpp|h|hpp|inc|cu|cuh)$/.test(e.name) ? [p] : [];
  });
}

const files = ['native', 'src'].flatMap((d) => sources(join(root, d)));
const r = spawnSync(bin, write ? ['-i', ...files] : ['--dry-run', '--Werror', ...files], { encoding: 'utf8', maxBuffer: 1 << 28 });
if (write) process.exit(r.status ?? 1);
const bad = [...new Set([...r.stderr.matchAll(/^(.+?):\d+:\d+: error:/gm)].map((m) => relative(root, m[1])))];
if (r.status !== 0) {
  console.error(`clang-format: ${bad.length} of ${files.length} files differ from .clang-format's style (npm run format fixes them):\n  ${bad.join('\n  ')}`);
  process.exit(1);
}
console.log(`clang-format: ${files.length} files formatted`);
