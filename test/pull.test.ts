// `healthgpt pull` against a local HTTP server that answers as the Hugging Face Hub does:
// the listing API with ?blobs=true, /resolve/ with a redirect for LFS files, Range requests,
// gated repositories, and (on demand) a connection cut mid-file or a corrupted body.
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { downloadFile, listRepoFiles } from '../lib/pull/hub.js';
import { planPull, runPull } from '../lib/pull/pull.js';
import { cli, root, tempDir } from './helpers.js';

type Repo = { commit: string; gated?: boolean; files: Record<string, { data: Buffer; lfs: boolean }> };

const bytes = (n: number, seed: number) => Buffer.from(Array.from({ length: n }, (_, i) => (i * 31 + seed * 7) & 255));
const REPOS: Record<string, Repo> = {
  'microsoft/Phi-3-mini-4k-instruct': {
    commit: 'a'.repeat(40),
    files: {
      'model-00001-of-00002.safetensors': { data: bytes(300_000, 1), lfs: true },
      'model-00002-of-00002.safetensors': { data: bytes(70_000, 2), lfs: true },
      'model.safetensors.index.json': { data: Buffer.from('{"weight_map":{}}'), lfs: false },
      'config.json': { data: Buffer.from('{"model_type":"phi3"}'), lfs: false },
      'tokenizer.model': { data: bytes(5000, 3), lfs: true },
      'tokenizer_config.json': { data: Buffer.from('{}'), lfs: false },
      'README.md': { data: Buffer.from('# not fetched'), lfs: false },
      'onnx/model.onnx': { data: bytes(100, 4), lfs: true },
    },
  },
  'openai/clip-vit-large-patch14-336': {
    commit: 'b'.repeat(40),
    files: {
      'pytorch_model.bin': { data: bytes(120_000, 5), lfs: true },
      'tf_model.h5': { data: bytes(100, 6), lfs: true },
      'config.json': { data: Buffer.from('{"model_type":"clip"}'), lfs: false },
      'preprocessor_config.json': { data: Buffer.from('{"crop_size":336}'), lfs: false },
    },
  },
  'lintw/HealthGPT-M3': {
    commit: 'c'.repeat(40),
    gated: true,
    files: {
      'com_hlora_weights.bin': { data: bytes(90_000, 7), lfs: true },
      'gen_hlora_weights.bin': { data: bytes(80_000, 8), lfs: true },
      'fusion_layer_weights.bin': { data: bytes(10_000, 9), lfs: true },
    },
  },
};

const blobId = (d: Buffer) => createHash('sha1').update(`blob ${d.length}\0`).update(d).digest('hex');
const sha256 = (d: Buffer) => createHash('sha256').update(d).digest('hex');

// behaviour switches for one test at a time
const hub = { cutAfter: 0, corrupt: '', ranges: [] as string[], token: 'hf_secret' };

function handle(req: IncomingMessage, res: ServerResponse): void {
  const url = new URL(req.url!, 'http://x');
  const api = url.pathname.match(/^\/api\/models\/([^/]+\/[^/]+)\/revision\/([^/]+)$/);
  const resolve = url.pathname.match(/^\/([^/]+\/[^/]+)\/resolve\/([^/]+)\/(.+)$/);
  const cdn = url.pathname.match(/^\/cdn\/([^/]+\/[^/]+)\/(.+)$/);
  const repoName = api?.[1] ?? resolve?.[1] ?? cdn?.[1];
  const repo = repoName ? REPOS[repoName] : undefined;
  if (!repo) return void res.writeHead(404).end('not found');
  if (repo.gated && !cdn && req.headers.authorization !== `Bearer ${hub.token}`) return void res.writeHead(401).end('gated');
  if (api) {
    if (url.searchParams.get('blobs') !== 'true') return void res.writeHead(400).end();
    const siblings = Object.entries(repo.files).map(([name, f]) =>
      f.lfs
        ? { rfilename: name, size: f.data.length, blobId: 'x', lfs: { sha256: sha256(f.data), size: f.data.length, pointerSize: 130 } }
        : { rfilename: name, size: f.data.length, blobId: blobId(f.data) },
    );
    return void res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ id: repoName, sha: repo.commit, siblings }));
  }
  const path = decodeURIComponent((resolve?.[3] ?? cdn?.[2])!);
  const file = repo.files[path];
  if (!file) return void res.writeHead(404).end();
  if (resolve) {
    if (resolve[2] !== repo.commit) return void res.writeHead(404).end('unknown revision');
    if (file.lfs) return void res.writeHead(302, { location: `/cdn/${repoName}/${encodeURIComponent(path)}` }).end();
  }
  let data = file.data;
  if (hub.corrupt === path) data = Buffer.concat([data.subarray(0, data.length - 1), Buffer.from([data[data.length - 1]! ^ 1])]);
  const range = req.headers.range?.match(/^bytes=(\d+)-$/);
  let start = 0;
  if (range) {
    hub.ranges.push(`${path}:${range[1]}`);
    start = Number(range[1]);
    res.writeHead(206, { 'content-range': `bytes ${start}-${data.length - 1}/${data.length}`, 'content-length': data.length - start });
  } else res.writeHead(200, { 'content-length': data.length });
  const body = data.subarray(start);
  if (hub.cutAfter > 0 && body.length > hub.cutAfter) {
    res.write(body.subarray(0, hub.cutAfter), () => res.destroy());
    hub.cutAfter = 0;
    return;
  }
  res.end(body);
}

let server: Server;
let endpoint = '';
beforeAll(async () => {
  server = createServer(handle);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(() => new Promise<void>((r) => server.close(() => r())));

const opts = () => ({ endpoint, token: hub.token });

describe('pull', () => {
  it('lists sizes and checksums; picks safetensors, configs and tokenizer files, PyTorch weights where no safetensors', async () => {
    const plan = await planPull('m3', tempDir(), opts());
    const names = plan.map((e) => [e.part.repo, e.files.map((f) => f.path).sort()]);
    expect(names).toEqual([
      [
        'microsoft/Phi-3-mini-4k-instruct',
        ['config.json', 'model-00001-of-00002.safetensors', 'model-00002-of-00002.safetensors', 'model.safetensors.index.json', 'tokenizer.model', 'tokenizer_config.json'],
      ],
      ['openai/clip-vit-large-patch14-336', ['config.json', 'preprocessor_config.json', 'pytorch_model.bin']],
      ['lintw/HealthGPT-M3', ['com_hlora_weights.bin', 'fusion_layer_weights.bin', 'gen_hlora_weights.bin']],
    ]);
    expect(plan[0]!.dir).toContain(REPOS['microsoft/Phi-3-mini-4k-instruct']!.commit);
  });

  it('downloads every file byte-exact, pinned to the listed commit; a second pull fetches nothing', async () => {
    const cache = tempDir();
    const plan = await planPull('m3', cache, opts());
    const total = plan.reduce((s, e) => s + e.files.reduce((t, f) => t + f.size, 0), 0);
    expect(await runPull(plan, opts())).toBe(total);
    for (const e of plan) for (const f of e.files) expect(readFileSync(join(e.dir, f.path)).equals(REPOS[e.part.repo]!.files[f.path]!.data)).toBe(true);
    expect(await runPull(await planPull('m3', cache, opts()), opts())).toBe(0);
  });

  it('a gated repository without HF_TOKEN is refused with a hint', async () => {
    await expect(listRepoFiles('lintw/HealthGPT-M3', 'main', { endpoint, token: '' })).rejects.toMatchObject({ code: 'ERR_HTTP', message: expect.stringMatching(/HTTP 401.*set HF_TOKEN/) });
  });

  it('resumes a cut download with a Range request and verifies the whole file', async () => {
    const cache = tempDir();
    const listing = await listRepoFiles('microsoft/Phi-3-mini-4k-instruct', 'main', opts());
    const file = listing.files.find((f) => f.path === 'model-00001-of-00002.safetensors')!;
    const dest = join(cache, 'shard');
    hub.cutAfter = 100_000;
    hub.ranges = [];
    await expect(downloadFile(listing, file, dest, opts())).rejects.toMatchObject({ code: 'ERR_NETWORK' });
    expect(existsSync(dest)).toBe(false);
    const kept = readFileSync(`${dest}.part`).length;
    expect(kept).toBeGreaterThan(0);
    expect(kept).toBeLessThan(file.size);
    expect(await downloadFile(listing, file, dest, opts())).toBe(file.size - kept);
    expect(hub.ranges).toEqual([`model-00001-of-00002.safetensors:${kept}`]);
    expect(readFileSync(dest).equals(REPOS['microsoft/Phi-3-mini-4k-instruct']!.files[file.path]!.data)).toBe(true);
    expect(existsSync(`${dest}.part`)).toBe(false);
  });

  it('a body that does not match the checksum is deleted, LFS (sha256) or not (git blob id)', async () => {
    const listing = await listRepoFiles('microsoft/Phi-3-mini-4k-instruct', 'main', opts());
    for (const name of ['tokenizer.model', 'config.json']) {
      const dest = join(tempDir(), name);
      hub.corrupt = name;
      await expect(downloadFile(listing, listing.files.find((f) => f.path === name)!, dest, opts())).rejects.toMatchObject({
        code: 'ERR_CHECKSUM',
        message: expect.stringMatching(name === 'config.json' ? /git blob sha1 .* does not match/ : /sha256 .* does not match/),
      });
      hub.corrupt = '';
      expect(existsSync(dest) || existsSync(`${dest}.part`)).toBe(false);
    }
  });

  it('refuses a listing path that escapes its folder', async () => {
    REPOS['evil/repo'] = { commit: 'd'.repeat(40), files: { '../../etc/passwd': { data: Buffer.from('x'), lfs: false } } };
    await expect(listRepoFiles('evil/repo', 'main', opts())).rejects.toThrow(/refusing file path/);
    delete REPOS['evil/repo'];
  });

  it('the CLI says what it downloads (--dry-run --json) and honours HF_ENDPOINT / HF_TOKEN', async () => {
    const run = promisify(execFile);
    const { stdout } = await run(process.execPath, [join(root, 'bin', 'healthgpt.js'), 'pull', 'm3', '--dry-run', '--json', '--cache', tempDir()], {
      env: { ...process.env, HF_ENDPOINT: endpoint, HF_TOKEN: hub.token, HEALTHGPT_NO_PROGRESS: '1' },
    });
    const out = JSON.parse(stdout);
    expect(out.fetched).toBe(0);
    expect(out.parts.map((p: { role: string }) => p.role)).toEqual(['llm', 'vision', 'plugins']);
    expect(out.bytes).toBe(300_000 + 70_000 + 17 + 21 + 5000 + 2 + 120_000 + 21 + 17 + 90_000 + 80_000 + 10_000);
    // a full pull downloads, then converts: these files are not real checkpoints, so the
    // conversion is refused naming the file, and nothing is left in the output folder
    const cache = tempDir();
    const output = join(cache, 'out');
    const failed = await run(process.execPath, [join(root, 'bin', 'healthgpt.js'), 'pull', 'm3', '--cache', cache, '-o', output], {
      env: { ...process.env, HF_ENDPOINT: endpoint, HF_TOKEN: hub.token, HEALTHGPT_NO_PROGRESS: '1' },
    }).then(
      () => undefined,
      (e: { code: number; stderr: string }) => e,
    );
    expect(failed?.code).toBe(1);
    expect(failed?.stderr).toMatch(/healthgpt: \/.*(\.bin|\.safetensors): /);
    expect(existsSync(output) ? readdirSync(output).filter((f) => !f.startsWith('.')) : []).toEqual([]);
    const downloaded = await run(process.execPath, [join(root, 'bin', 'healthgpt.js'), 'pull', 'm3', '--cache', cache, '--no-convert', '--json'], {
      env: { ...process.env, HF_ENDPOINT: endpoint, HF_TOKEN: hub.token, HEALTHGPT_NO_PROGRESS: '1' },
    });
    const again = JSON.parse(downloaded.stdout);
    expect(again.fetched).toBe(0); // the failed run's downloads are kept and checked, not fetched again
    expect(again.converted).toEqual([]);
    await expect(run(process.execPath, [join(root, 'bin', 'healthgpt.js'), 'pull', 'x9'], { env: { ...process.env, HF_ENDPOINT: endpoint } })).rejects.toMatchObject({
      stderr: expect.stringMatching(/model must be m3 or l14/),
    });
    // local arguments are checked before anything is downloaded (the endpoint is unreachable)
    const offline = { HF_ENDPOINT: 'http://127.0.0.1:9' };
    let r = cli(['pull', 'm3', '--cache', cache, '--vqgan', join(cache, 'nope.ckpt')], offline);
    expect([r.status, r.stderr]).toEqual([1, expect.stringMatching(/--vqgan .*nope\.ckpt: no such file/)]);
    r = cli(['pull', 'm3', '--cache', cache, '-o', join(root, 'package.json')], offline);
    expect([r.status, r.stderr]).toEqual([1, expect.stringMatching(/--output .*package\.json: a file is there, not a folder/)]);
    r = cli(['pull', 'm3', '--cache', cache, '--dry-run'], { HF_ENDPOINT: 'not a url' });
    expect([r.status, r.stderr]).toEqual([1, expect.stringMatching(/HF_ENDPOINT must be an http\(s\) URL, got "not a url"/)]);
  });
});
