// Builds the native engine's unit tests (no Node involved) and runs them with ctest.
// HEALTHGPT_SANITIZE=1 builds them with ASan + UBSan in build-native-asan instead.
// Arguments go to ctest (e.g. `-R test_phi3` or `-E 'fuzz|real'`); a selection that matches
// no test fails, and so does an executable whose filter matches none (native/tests/check.h).
import { spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { cpus } from 'node:os';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const asan = process.env.HEALTHGPT_SANITIZE === '1';
const dir = asan ? 'build-native-asan' : 'build-native';
const jobs = String(Math.max(1, cpus().length));

function run(cmd, args) {
  const r = spawnSync(cmd, args, { cwd: root, stdio: 'inherit' });
  if (r.status !== 0) process.exit(r.status ?? 1);
}

run('cmake', ['-S', '.', '-B', dir, '-DHEALTHGPT_BUILD_TESTS=ON', `-DHEALTHGPT_SANITIZE=${asan ? 'ON' : 'OFF'}`, '-DHEALTHGPT_CUDA=OFF', '-DCMAKE_BUILD_TYPE=Release']);
run('cmake', ['--build', dir, '-j', jobs]);
run('ctest', ['--test-dir', dir, '--output-on-failure', '--no-tests=error', '-j', '1', ...process.argv.slice(2)]);
