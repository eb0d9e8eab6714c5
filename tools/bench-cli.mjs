// What every bench script shares: its error exit, the compiled library, and its options.
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(import.meta.url);

/**
 * For the script `name` with its usage text: fail(message) prints `name: message` and exits 2;
 * lib(path) requires dist/path (the library compiled by `npx tsc -p .`); parse(argv, defaults,
 * ints) reads `--key value` for every key of defaults (a key whose default is false is a flag,
 * a key in ints a positive integer, any other a string), --help prints the usage.
 */
export function benchCli(name, usage) {
  /** @type {(message: string) => never} */
  const fail = (message) => {
    console.error(`${name}: ${message}`);
    process.exit(2);
  };
  const lib = (path) => {
    const file = join(root, 'dist', path);
    if (!existsSync(file)) fail(`${file} is missing: compile the library first (npx tsc -p .)`);
    return require(file);
  };
  const parse = (argv, defaults, ints = []) => {
    const o = { ...defaults };
    for (let i = 0; i < argv.length; i++) {
      const a = argv[i];
      const k = a.slice(2);
      if (a === '--help' || a === '-h') {
        console.log(usage);
        process.exit(0);
      } else if (!a.startsWith('--') || !(k in defaults)) fail(`unknown argument ${a}\n${usage}`);
      else if (defaults[k] === false) o[k] = true;
      else {
        const v = argv[++i];
        if (v === undefined) fail(`${a} needs a value`);
        if (ints.includes(k)) {
          const n = Number(v);
          if (!Number.isInteger(n) || n < 1) fail(`${a} must be a positive integer, got ${v}`);
          o[k] = n;
        } else o[k] = v;
      }
    }
    return o;
  };
  return { fail, lib, parse, root };
}
