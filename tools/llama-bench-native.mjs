// llama.cpp's own benchmark, llama-bench, built for this processor (GGML_NATIVE: -march=native,
// CPU only) from the llama.cpp source that node-llama-cpp bundles (node_modules/node-llama-cpp/
// llama/gitRelease.bundle, a git bundle: cloned locally, no network). Built once into the
// cache, per llama.cpp release and processor (model name and instruction-set flags); a later
// run reuses the binary.
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { availableParallelism, cpus } from 'node:os';
import { join } from 'node:path';

// CMake options: the CPU backend with the compiler's -march=native, nothing that needs the
// network (HTTPS) or a GPU, and only the llama-bench target.
const CMAKE_OPTIONS = [
  '-DCMAKE_BUILD_TYPE=Release',
  '-DGGML_NATIVE=ON',
  '-DBUILD_SHARED_LIBS=OFF',
  '-DGGML_CUDA=OFF',
  '-DGGML_VULKAN=OFF',
  '-DGGML_METAL=OFF',
  '-DLLAMA_OPENSSL=OFF',
  '-DLLAMA_BUILD_TESTS=OFF',
  '-DLLAMA_BUILD_EXAMPLES=OFF',
  '-DLLAMA_BUILD_SERVER=OFF',
];

function run(cmd, args, what, fail) {
  const r = spawnSync(cmd, args, { encoding: 'utf8', maxBuffer: 256 << 20 });
  if (r.error) fail(`${what}: cannot run ${cmd} (${r.error.message})`);
  if (r.status !== 0) fail(`${what} failed (exit ${r.status}):\n${(r.stdout + r.stderr).slice(-3000)}`);
  return r.stdout;
}

/** The llama.cpp release node-llama-cpp bundles, and where its git bundle is. */
export function bundledLlamaCpp(root) {
  const dir = join(root, 'node_modules', 'node-llama-cpp', 'llama');
  const bundle = join(dir, 'gitRelease.bundle');
  const info = join(dir, 'llama.cpp.info.json');
  if (!existsSync(bundle) || !existsSync(info)) return undefined;
  return { bundle, tag: JSON.parse(readFileSync(info, 'utf8')).tag };
}

/**
 * What -march=native builds for: the processor's model name and, where Linux lists them, its
 * instruction-set flags (a VM often names every generation of a vendor's processors alike).
 */
function processorKey() {
  let flags = '';
  try {
    flags = /^flags\s*:(.*)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1]?.trim() ?? '';
  } catch {
    // not Linux: the model name alone
  }
  return `${cpus()[0]?.model ?? 'unknown'}\n${flags}`;
}

/**
 * The path of a native llama-bench for this processor, building it first if the cache has
 * none (minutes: ggml and llama.cpp with -march=native). fail(message) never returns.
 */
export function ensureLlamaBench(root, cacheDir, log, fail) {
  const src = bundledLlamaCpp(root);
  if (!src) return fail("node-llama-cpp's bundled llama.cpp source (llama/gitRelease.bundle) is missing: run npm install");
  const cpu = createHash('sha256').update(processorKey()).digest('hex').slice(0, 8);
  const base = join(cacheDir, `llama.cpp-${src.tag}`);
  const build = join(cacheDir, `llama-bench-${src.tag}-native-${cpu}`);
  const bin = join(build, 'bin', 'llama-bench');
  if (existsSync(bin)) return { path: bin, tag: src.tag };
  mkdirSync(cacheDir, { recursive: true });
  if (!existsSync(join(base, 'CMakeLists.txt'))) {
    rmSync(base, { recursive: true, force: true });
    log(`cloning llama.cpp ${src.tag} from node-llama-cpp's bundle into ${base} ...`);
    run('git', ['clone', '--quiet', src.bundle, base], 'git clone of the llama.cpp bundle', fail);
  }
  log(`building llama-bench ${src.tag} for this processor (-march=native, CPU only) into ${build}; once, a few minutes ...`);
  const ninja = spawnSync('ninja', ['--version']).status === 0 ? ['-G', 'Ninja'] : [];
  run('cmake', ['-S', base, '-B', build, ...ninja, ...CMAKE_OPTIONS], 'cmake configure of llama.cpp', fail);
  run('cmake', ['--build', build, '--target', 'llama-bench', '-j', String(availableParallelism())], 'cmake build of llama-bench', fail);
  if (!existsSync(bin)) fail(`the llama.cpp build finished without ${bin}`);
  return { path: bin, tag: src.tag };
}

/**
 * One llama-bench run on `model`: a prompt of `prompt` tokens and `decode` generated tokens,
 * `threads` threads, F16 KV cache, no flash attention, one repetition after its own warm-up.
 * Returns { pp, tg } in tokens/s, the commit llama.cpp was built from (the bundle's, squashed:
 * its build number says nothing) and the processor llama-bench names.
 */
export function runLlamaBench(bin, model, { prompt, decode, threads }, fail) {
  const out = run(bin, ['-m', model, '-p', String(prompt), '-n', String(decode), '-t', String(threads), '-r', '1', '-ctk', 'f16', '-ctv', 'f16', '-fa', '0', '-o', 'json'], 'llama-bench', fail);
  let rows;
  try {
    rows = JSON.parse(out);
  } catch {
    fail(`llama-bench printed no JSON: ${out.slice(0, 500)}`);
  }
  const pp = rows.find((r) => r.n_prompt === prompt && r.n_gen === 0);
  const tg = rows.find((r) => r.n_gen === decode && r.n_prompt === 0);
  if (!pp || !tg) fail(`llama-bench reported no pp${prompt} / tg${decode} rows: ${out.slice(0, 500)}`);
  return { pp: pp.avg_ts, tg: tg.avg_ts, commit: pp.build_commit, cpu: pp.cpu_info };
}
