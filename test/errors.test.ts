// The error codes: README's table is lib/errors.ts's union, every code in it is produced by
// some test (those no other suite produces are produced here), and the native statuses map
// to their own codes (bad file, out of memory, unsupported type) instead of one catch-all.
import { execFile } from 'node:child_process';
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import sharp from 'sharp';
import { afterAll, describe, expect, it } from 'vitest';
import { ERROR_CODES, HealthGPTError, type ErrorCode } from '../lib/errors.js';
import { findImageTokens, imageIndices } from '../lib/generate/image-tokens.js';
import { GGUFFile } from '../lib/gguf/file.js';
import type { GGUFType } from '../lib/gguf/constants.js';
import { GGUFWriter, type GGUFWriterValue } from '../lib/gguf/writer.js';
import { decodeImage } from '../lib/image/index.js';
import { LanguageModel } from '../lib/model/model.js';
import { Sampler } from '../lib/model/sampler.js';
import { startServer } from '../lib/server/app.js';
import { HealthGPT } from '../lib/session/healthgpt.js';
import { Vqgan } from '../lib/vqgan/decoder.js';
import { root } from './helpers.js';

const run = promisify(execFile);
const dir = mkdtempSync(join(tmpdir(), 'healthgpt-errors-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function expectCode(fn: () => unknown, code: ErrorCode, text?: RegExp): Promise<void> {
  let err: unknown;
  try {
    await fn();
  } catch (e) {
    err = e;
  }
  expect(err, `expected ${code}`).toBeInstanceOf(HealthGPTError);
  expect((err as HealthGPTError).code, (err as Error).message).toBe(code);
  if (text) expect((err as Error).message).toMatch(text);
}

/** A writer holding `src`'s metadata, to copy a fixture with some tensors changed. */
function copyMetadata(src: GGUFFile): GGUFWriter {
  const w = new GGUFWriter({ alignment: src.info.alignment });
  for (const [key, value] of Object.entries(src.info.metadata)) {
    if (key === 'general.alignment') continue;
    const t = src.info.types[key]!;
    w.addKV(key, value as GGUFWriterValue, (t.type === 'array' ? t.itemType : t.type) as GGUFType);
  }
  return w;
}

/** `node -e script` in a child process: its stdout. */
async function child(script: string, env: NodeJS.ProcessEnv = {}, shellPrefix = ''): Promise<string> {
  const cmd = `${shellPrefix}${JSON.stringify(process.execPath)} -e ${JSON.stringify(script)}`;
  const { stdout } = await run('/bin/sh', ['-c', cmd], { cwd: root, env: { ...process.env, ...env } });
  return stdout.trim();
}

describe('error codes', () => {
  const readmeCodes = (): string[] => {
    const readme = readFileSync(join(root, 'README.md'), 'utf8');
    const section = readme.slice(readme.indexOf('\n## Errors'));
    const table = section.slice(0, section.indexOf('\n## ', 1));
    return [...table.matchAll(/^\| `([A-Z_]+)` \|/gm)].map((m) => m[1]!);
  };

  it("README's table lists exactly the union's codes", () => {
    expect(readmeCodes().sort()).toEqual(Object.keys(ERROR_CODES).sort());
  });

  it('every code is produced by at least one test', () => {
    const tests = readdirSync(join(root, 'test'))
      .filter((f) => /\.test\.ts$/.test(f))
      .map((f) => readFileSync(join(root, 'test', f), 'utf8'))
      .join('\n');
    const missing = Object.keys(ERROR_CODES).filter((c) => !new RegExp(`['"]${c}['"]`).test(tests.replace(/ERROR_CODES/g, '')));
    expect(missing).toEqual([]);
  });
});

describe('native statuses have codes of their own', () => {
  it('a weight of a type the engine cannot multiply: ERR_UNSUPPORTED, naming the tensor', async () => {
    // the tiny model with one linear stored as f64, a type GGUF knows and this engine does not compute
    const src = GGUFFile.open(join(root, 'test', 'fixtures', 'phi3', 'gqa.f32.gguf'));
    const out = join(dir, 'f64-weight.gguf');
    try {
      const w = copyMetadata(src);
      src.info.tensors.forEach((t, i) => {
        if (t.name !== 'blk.0.ffn_up.weight') return void w.addTensor(t.name, t.shape, t.typeId, () => src.tensorData(i));
        const n = t.shape.reduce((a, b) => a * b, 1);
        w.addTensor(t.name, t.shape, 28, new Uint8Array(n * 8));
      });
      await w.write(out);
    } finally {
      src.close();
    }
    await expectCode(() => LanguageModel.load(out), 'ERR_UNSUPPORTED', /blk\.0\.ffn_up\.weight has type f64/);
  });

  it('a file that is not GGUF: ERR_INVALID_FILE, naming it', async () => {
    const bad = join(dir, 'not.gguf');
    writeFileSync(bad, 'not a gguf file at all');
    await expectCode(() => LanguageModel.load(bad), 'ERR_INVALID_FILE', /not\.gguf/);
  });

  it.runIf(process.platform === 'linux')('a KV cache larger than the address space allows: ERR_NO_MEMORY, and the process lives on', async () => {
    // an address-space limit makes the allocation fail on any machine, however much memory it has
    const load = "require('./dist/index.js').LanguageModel.load('test/fixtures/phi3/gqa.f32.gguf', {contextSize: 1 << 24, kvType: 'f32', threads: 1})";
    const out = await child(`${load}.then((m) => { m.dispose(); console.log('loaded'); }, (e) => console.log(e.code + ' ' + e.message))`, {}, 'ulimit -v 3000000; ');
    const [code, ...message] = out.split(' ');
    expect(code).toBe('ERR_NO_MEMORY');
    expect(message.join(' ')).toMatch(/KV cache of \d+ MiB .* could not be allocated/);
  });
});

describe('library codes no other suite produces', () => {
  it('ERR_NO_ADDON: no addon where HEALTHGPT_ADDON points', async () => {
    const out = await child(`try{require('./dist/native.js').native()}catch(e){console.log(e.code)}`, {
      HEALTHGPT_ADDON: join(dir, 'missing.node'),
    });
    expect(out).toBe('ERR_NO_ADDON');
  });

  it('ERR_NO_TOKENIZER: text for a model file without a vocabulary', async () => {
    const m = await LanguageModel.load(join(root, 'test', 'fixtures', 'phi3', 'gqa.f32.gguf'), { threads: 1 });
    try {
      await expectCode(() => m.tokenize('lung'), 'ERR_NO_TOKENIZER', /no tokenizer/);
    } finally {
      m.dispose();
    }
  });

  it('ERR_NO_VQGAN: generateImage on a session loaded without one', async () => {
    const f = (n: string): string => join(root, 'test', 'fixtures', 'healthgpt', n);
    const hg = await HealthGPT.load({
      model: f('lm.gguf'),
      vision: f('clip.gguf'),
      plugins: { generation: f('gen.gguf') },
      threads: 1,
    });
    try {
      await expectCode(() => hg.generateImage({ task: 'reconstruct', image: f('input.png') }), 'ERR_NO_VQGAN');
    } finally {
      hg.dispose();
    }
  });

  it('ERR_NO_ENCODER: encode with a decoder-only VQGAN file', async () => {
    const src = GGUFFile.open(join(root, 'test', 'fixtures', 'vqgan', 'tiny.gguf'));
    const out = join(dir, 'decoder-only.gguf');
    try {
      const w = copyMetadata(src);
      src.info.tensors.forEach((t, i) => {
        if (!t.name.startsWith('encoder.') && !t.name.startsWith('quant_conv.')) w.addTensor(t.name, t.shape, t.typeId, () => src.tensorData(i));
      });
      await w.write(out);
    } finally {
      src.close();
    }
    const vq = await Vqgan.load(out, { threads: 1 });
    try {
      expect(vq.info.hasEncoder).toBe(false);
      await expectCode(() => vq.encode(new Float32Array(3 * vq.info.resolution ** 2)), 'ERR_NO_ENCODER');
    } finally {
      vq.dispose();
    }
  });

  it('ERR_VOCAB, ERR_IMAGE_TOKENS, ERR_SAMPLING: image tokens missing or malformed, nothing to sample', async () => {
    await expectCode(() => findImageTokens(new Map([['<s>', 1]])), 'ERR_VOCAB', /no <start_index> token|no .* token/);
    const vocab = new Map<string, number>([
      ['<start_index>', 10],
      ['<end_index>', 11],
    ]);
    for (let k = 0; k < 4; k++) vocab.set(`<idx_${k}>`, 12 + k);
    const ids = findImageTokens(vocab);
    await expectCode(() => imageIndices([12, 13], ids, 4), 'ERR_IMAGE_TOKENS', /expected 4 image tokens, got 2/);
    const s = new Sampler({ logitMask: (l) => l.fill(-Infinity) });
    await expectCode(() => s.sample(new Float32Array(8), []), 'ERR_SAMPLING', /masked out/);
  });

  it('ERR_IMAGE_FORMAT: a GIF (not one of the formats taken)', async () => {
    const gif = await sharp({ create: { width: 4, height: 4, channels: 3, background: '#888' } })
      .gif()
      .toBuffer();
    await expectCode(() => decodeImage(gif), 'ERR_IMAGE_FORMAT', /gif images are not supported/);
  });

  it('ERR_LISTEN: a server on a port already taken', async () => {
    const taken = createServer();
    await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
    const port = (taken.address() as AddressInfo).port;
    // only its number of sequences is read (the server admits that many at once): listening fails first
    const hg = { model: { info: { nSeq: 1 } }, dispose() {} } as unknown as HealthGPT;
    try {
      await expectCode(() => startServer({ session: hg, modelId: 'x', port, logger: false }), 'ERR_LISTEN', new RegExp(`cannot listen on 127\\.0\\.0\\.1:${port}`));
    } finally {
      taken.close();
    }
  });

  it('ERR_GGUF_WRITE: a metadata key that is no string', async () => {
    await expectCode(() => new GGUFWriter().addKV('', 1, 'u32'), 'ERR_GGUF_WRITE', /non-empty string/);
  });
});
