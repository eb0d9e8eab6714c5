// npm's install step: use a prebuild for this platform when one loads, else build the
// addon from source with cmake-js (CPU kernels always; CUDA when a toolkit is found).
// Nothing is downloaded: cmake-js takes the Node-API headers from node-api-headers.
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(import.meta.url);

function prebuildLoads() {
  const dir = join(root, 'prebuilds', `${process.platform}-${process.arch}`);
  if (!existsSync(dir)) return false;
  for (const f of readdirSync(dir).filter((f) => f.endsWith('.node'))) {
    try {
      require(join(dir, f));
      console.log(`healthgpt: using prebuild ${f}`);
      return true;
    } catch {
      // wrong libc or ABI: try the next, then build
    }
  }
  return false;
}

if (process.env.HEALTHGPT_FORCE_BUILD !== '1' && prebuildLoads()) process.exit(0);

const cmakeJs = require.resolve('cmake-js/bin/cmake-js');
const args = [cmakeJs, 'compile', '--out', 'build'];
if (process.env.HEALTHGPT_CUDA === '1') args.push('--CDHEALTHGPT_CUDA=ON');
const r = spawnSync(process.execPath, args, { cwd: root, stdio: 'inherit' });
if (r.status !== 0) {
  console.error('healthgpt: building the native addon failed (needs cmake >= 3.18 and a C++17 compiler)');
  process.exit(r.status ?? 1);
}
