// GGUF through the public API and the CLI: a file written by llama.cpp's own Python package
// reads back as that package reads it; our writer round-trips every value type; bad files
// give a clear error and the process lives on.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { HealthGPTError } from '../lib/errors.js';
import { GGML_TYPES } from '../lib/gguf/constants.js';
import { GGUFFile } from '../lib/gguf/file.js';
import { GGUFWriter } from '../lib/gguf/writer.js';
import { native } from '../lib/native.js';
import { cli, exact, parseExactJson, root, tempDir } from './helpers.js';

const fixture = join(root, 'test', 'fixtures', 'gguf', 'pygguf.gguf');
const expected = parseExactJson(readFileSync(join(root, 'test', 'fixtures', 'gguf', 'pygguf.expected.json'), 'utf8')) as {
  metadata: Record<string, unknown>;
  tensors: unknown[];
};

describe("a GGUF written by gguf-py (llama.cpp's writer)", () => {
  it('lists the same metadata and tensors gguf-py reads back', () => {
    const f = GGUFFile.open(fixture);
    try {
      expect(exact(f.info.metadata)).toEqual(expected.metadata);
      expect(f.info.tensors.map(({ name, shape, type, offset, bytes }) => ({ name, shape, type, offset, bytes }))).toEqual(expected.tensors);
    } finally {
      f.close();
    }
  });

  it('`healthgpt info --json` prints {"metadata", "tensors"} equal to gguf-py\'s reading', () => {
    const r = cli(['info', fixture, '--json']);
    expect(r.status, r.stderr).toBe(0);
    const got = parseExactJson(r.stdout) as { metadata: unknown; tensors: unknown };
    expect(got.metadata).toEqual(expected.metadata);
    expect(got.tensors).toEqual(expected.tensors);
  });

  it('`healthgpt info` prints the architecture, summarised arrays and the tensor table', () => {
    const r = cli(['info', fixture]);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/architecture: phi3/);
    expect(r.stdout).toMatch(/tokenizer\.ggml\.tokens\s+\[str x 8\]\s+\["<unk>", "<s>", "<\/s>", "▁the", "▁héllo", "🩺", \.\.\. \(2 more\)\]/);
    for (const t of expected.tensors as Array<{ name: string; type: string }>) expect(r.stdout).toMatch(new RegExp(`${t.name.replace(/\./g, '\\.')}\\s+\\[[0-9, ]+\\]\\s+${t.type}`));
  });
});

describe('our writer', () => {
  it('round-trips every value type, arrays, alignment and tensor bytes through the native reader', async () => {
    const path = join(tempDir(), 'rt.gguf');
    const w = new GGUFWriter({ alignment: 64 });
    w.addKV('general.architecture', 'phi3');
    w.addKV('t.u8', 200, 'u8');
    w.addKV('t.i8', -5, 'i8');
    w.addKV('t.u16', 60000, 'u16');
    w.addKV('t.i16', -30000, 'i16');
    w.addKV('t.u32', 4000000000, 'u32');
    w.addKV('t.i32', -2000000000, 'i32');
    w.addKV('t.u64', 2n ** 63n + 5n);
    w.addKV('t.i64', -(2n ** 62n));
    w.addKV('t.f32', 0.5, 'f32');
    w.addKV('t.f64', Math.PI, 'f64');
    w.addKV('t.bool', true);
    w.addKV('t.str', 'héllo 🩺\n<|end|>');
    w.addKV('t.strs', ['a', '', '▁b', '<0x0A>']);
    w.addKV('t.f32s', new Float32Array([1.5, -2.25]));
    w.addKV('t.i32s', new Int32Array([1, -2, 3]));
    w.addKV('t.empty', [], 'u32');
    const a = new Float32Array([1, 2, 3, 4, 5, 6]);
    const q = native().quantizeRow(
      8,
      new Float32Array(64).map((_, i) => Math.cos(i)),
    );
    w.addTensor('a.weight', [3, 2], 'f32', new Uint8Array(a.buffer));
    w.addTensor('q.weight', [64], 'q8_0', () => q);
    await w.write(path);

    const f = GGUFFile.open(path);
    try {
      const m = f.info.metadata;
      expect(f.info.alignment).toBe(64);
      expect(m['t.u8']).toBe(200);
      expect(m['t.i8']).toBe(-5);
      expect(m['t.u16']).toBe(60000);
      expect(m['t.i16']).toBe(-30000);
      expect(m['t.u32']).toBe(4000000000);
      expect(m['t.i32']).toBe(-2000000000);
      expect(m['t.u64']).toBe(2n ** 63n + 5n);
      expect(m['t.i64']).toBe(-(2n ** 62n));
      expect(m['t.f32']).toBe(0.5);
      expect(m['t.f64']).toBe(Math.PI);
      expect(m['t.bool']).toBe(true);
      expect(m['t.str']).toBe('héllo 🩺\n<|end|>');
      expect(m['t.strs']).toEqual(['a', '', '▁b', '<0x0A>']);
      expect(m['t.f32s']).toEqual([1.5, -2.25]);
      expect(m['t.i32s']).toEqual([1, -2, 3]);
      expect(m['t.empty']).toEqual([]);
      expect(f.info.types['t.f32s']).toEqual({ type: 'array', itemType: 'f32' });
      expect(f.info.tensors.map((t) => [t.name, t.shape, t.type, t.offset % 64])).toEqual([
        ['a.weight', [3, 2], 'f32', 0],
        ['q.weight', [64], 'q8_0', 0],
      ]);
      expect(new Float32Array((await f.tensorData(0)).buffer.slice(0))).toEqual(a);
      expect(await f.tensorData(1)).toEqual(q);
    } finally {
      f.close();
    }
  });

  it('refuses what readers would refuse: duplicate keys, bad alignment, wrong byte counts', () => {
    const w = new GGUFWriter();
    w.addKV('k', 1, 'u32');
    expect(() => w.addKV('k', 2, 'u32')).toThrow(/duplicate key/);
    expect(() => new GGUFWriter({ alignment: 48 })).toThrow(HealthGPTError);
    expect(() => w.addTensor('t', [33], 'q8_0', new Uint8Array(34))).toThrow(/multiple of the q8_0 block/);
    expect(() => w.addTensor('t', [32], 'q8_0', new Uint8Array(33))).toThrow(/33 bytes given/);
  });

  it('knows the same ggml types, ids and block sizes as the native engine', () => {
    const nat = native()
      .types()
      .map((t) => ({ id: t.id, name: t.name, blockSize: t.blockSize, typeSize: t.blockBytes }));
    expect([...GGML_TYPES].map((t) => ({ id: t.id, name: t.name, blockSize: t.blockSize, typeSize: t.typeSize }))).toEqual(nat);
  });
});

describe('bad files', () => {
  const good = readFileSync(fixture);
  const dir = tempDir();
  const bad = (name: string, bytes: Uint8Array): string => {
    const p = join(dir, name);
    writeFileSync(p, bytes);
    return p;
  };
  const withU64 = (offset: number, v: bigint): Buffer => {
    const b = Buffer.from(good);
    b.writeBigUInt64LE(v, offset);
    return b;
  };

  const cases: Array<[string, Uint8Array, RegExp]> = [
    ['empty.gguf', new Uint8Array(0), /truncated|empty|too small/i],
    ['magic.gguf', Buffer.concat([Buffer.from('GGML'), good.subarray(4)]), /magic/i],
    [
      'version.gguf',
      (() => {
        const b = Buffer.from(good);
        b.writeUInt32LE(9, 4);
        return b;
      })(),
      /version/i,
    ],
    ['header-cut.gguf', good.subarray(0, 40), /truncated/i],
    ['data-cut.gguf', good.subarray(0, good.length - 20), /truncated|past the end|beyond/i],
    ['tensors-2e60.gguf', withU64(8, 2n ** 60n), /tensor/i],
    ['kv-2e60.gguf', withU64(16, 2n ** 60n), /metadata|key|kv/i],
  ];
  for (const [name, bytes, message] of cases) {
    it(`${name}: a HealthGPTError naming the file and the fault`, () => {
      const p = bad(name, bytes);
      let err: unknown;
      try {
        GGUFFile.open(p).close();
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(HealthGPTError);
      expect((err as HealthGPTError).code).toBe('ERR_INVALID_FILE');
      expect((err as Error).message).toContain(p);
      expect((err as Error).message).toMatch(message);
    });
  }

  it('the CLI reports a bad file on stderr with exit code 1, no crash', () => {
    const r = cli(['info', bad('cli-magic.gguf', Buffer.from('not a gguf file at all'))]);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/^healthgpt: .*cli-magic\.gguf.*magic/im);
  });

  it('calls on a closed file throw ERR_DISPOSED', async () => {
    const f = GGUFFile.open(fixture);
    f.close();
    await expect(f.tensorData(0)).rejects.toMatchObject({ code: 'ERR_DISPOSED' });
  });
});
