// CMakeLists.txt (cmake-js) and binding.gyp (node-gyp) must build the same sources.
import { readFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const root = join(__dirname, '..');

function cmakeList(name: string): string[] {
  const text = readFileSync(join(root, 'CMakeLists.txt'), 'utf8');
  const m = text.match(new RegExp(`set\\(${name}\\s+([^)]*)\\)`));
  if (!m) throw new Error(`${name} not found in CMakeLists.txt`);
  return m[1].split(/\s+/).filter(Boolean).sort();
}

function cmakeAddonSources(): string[] {
  const text = readFileSync(join(root, 'CMakeLists.txt'), 'utf8');
  const m = text.match(/add_library\(healthgpt_addon SHARED ([^)]*)\)/);
  if (!m) throw new Error('healthgpt_addon not found in CMakeLists.txt');
  return m[1]
    .split(/\s+/)
    .filter((s) => s.startsWith('src/'))
    .sort();
}

describe('build source lists', () => {
  const gyp = JSON.parse(readFileSync(join(root, 'binding.gyp'), 'utf8'));
  const v = gyp.variables as Record<string, string[]>;

  it('CPU, AVX2 and AVX-512 sources agree between CMake and node-gyp', () => {
    expect([...v.hg_cpu_sources].sort()).toEqual(cmakeList('HEALTHGPT_CPU_SOURCES'));
    expect([...v.hg_avx2_sources].sort()).toEqual(cmakeList('HEALTHGPT_AVX2_SOURCES'));
    expect([...v.hg_avx512_sources].sort()).toEqual(cmakeList('HEALTHGPT_AVX512_SOURCES'));
    expect([...v.hg_addon_sources].sort()).toEqual(cmakeAddonSources());
  });

  it('every listed source exists', () => {
    for (const list of [v.hg_cpu_sources, v.hg_avx2_sources, v.hg_avx512_sources, v.hg_addon_sources]) for (const f of list) expect(existsSync(join(root, f)), f).toBe(true);
  });
});
