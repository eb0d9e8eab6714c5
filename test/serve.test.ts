// `healthgpt serve` (lib/server/) through the official `openai` client, against servers on
// 127.0.0.1 (ephemeral ports) over the tiny reference HealthGPT of test/fixtures/healthgpt/:
// chat with an image (whole and streamed) equal to the session's own answer, logprobs against
// the reference logits, stop strings, images.edit / images.generate equal to the session's
// generateImage, DICOM input, and every refusal: 400, 401, 403, 404, 413, 429, 504, a client
// that disconnects mid-stream.
import { spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { join } from 'node:path';
import OpenAI, { toFile } from 'openai';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startServer, type RunningServer, type ServerOptions } from '../lib/server/app.js';
import { HealthGPT } from '../lib/session/healthgpt.js';
import { resolveModelFiles } from '../lib/session/model-files.js';
import { cli, root, tempDir } from './helpers.js';

const dir = join(root, 'test', 'fixtures', 'healthgpt');
const file = (name: string): string => join(dir, name);
const manifest = JSON.parse(readFileSync(file('manifest.json'), 'utf8')) as { question: string; n_patches: number; ask: { ids: (number | null)[]; argmax: number } };
const inputPng = readFileSync(file('input.png'));
const dataUrl = (bytes: Buffer, type = 'image/png'): string => `data:${type};base64,${bytes.toString('base64')}`;
const MODEL = 'healthgpt-tiny';
const TEXT_QUESTION = 'Describe the image in detail.';

/** The image question of the reference, as OpenAI message parts. */
const imageQuestion = (url = dataUrl(inputPng)): OpenAI.ChatCompletionMessageParam[] => [
  {
    role: 'user',
    content: [
      { type: 'image_url', image_url: { url } },
      { type: 'text', text: manifest.question },
    ],
  },
];

/** The APIError a call is refused with. */
async function refusal(p: Promise<unknown>): Promise<InstanceType<typeof OpenAI.APIError>> {
  try {
    await p;
  } catch (err) {
    if (err instanceof OpenAI.APIError) return err;
    throw err;
  }
  throw new Error('the call succeeded');
}

async function until(what: string, ok: () => Promise<boolean> | boolean, ms = 20_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await ok())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

describe('healthgpt serve (OpenAI API)', () => {
  let hg: HealthGPT;
  const servers: RunningServer[] = [];
  const logs: string[] = [];
  let main: RunningServer;
  let client: OpenAI;
  const allowed = tempDir('healthgpt-serve-allowed-');
  const outside = tempDir('healthgpt-serve-outside-');

  const serve = async (o: Partial<ServerOptions> = {}, sink: string[] = []): Promise<RunningServer> => {
    const s = await startServer({ session: hg, modelId: MODEL, port: 0, logger: { level: 'info', stream: { write: (l: string) => void sink.push(l) } }, ...o });
    servers.push(s);
    return s;
  };
  const clientOf = (s: RunningServer, apiKey = 'unused'): OpenAI => new OpenAI({ baseURL: `${s.url}/v1`, apiKey, maxRetries: 0 });
  const health = async (s: RunningServer): Promise<{ running: number; waiting: number }> => (await fetch(`${s.url}/health`)).json() as Promise<{ running: number; waiting: number }>;

  beforeAll(async () => {
    // the -m files sorted as `serve` sorts them (by general.architecture)
    const files = await resolveModelFiles([file('clip.gguf'), file('com.gguf'), file('lm.gguf'), file('gen.gguf'), file('vqgan.gguf')]);
    expect(files).toMatchObject({ model: file('lm.gguf'), vision: file('clip.gguf'), vqgan: file('vqgan.gguf'), plugins: { comprehension: file('com.gguf'), generation: file('gen.gguf') } });
    const { name: _name, ...parts } = files;
    // F32 KV cache: the reference's first-token logits within 1e-5 (test/healthgpt.test.ts)
    hg = await HealthGPT.load({ ...parts, threads: 2, kvType: 'f32' });
    writeFileSync(join(allowed, 'in.png'), inputPng);
    writeFileSync(join(outside, 'in.png'), inputPng);
    main = await serve({ allowDirs: [allowed] }, logs);
    client = clientOf(main);
  });
  afterAll(async () => {
    for (const s of servers) await s.close();
    hg?.dispose();
  });

  it('listens on 127.0.0.1 and lists the one model it serves', async () => {
    expect(main.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    const models = await client.models.list();
    expect(models.data.map((m) => m.id)).toEqual([MODEL]);
    expect((await client.models.retrieve(MODEL)).id).toBe(MODEL);
    expect((await health(main)).running).toBe(0);
  });

  it("chat with an image: the session's own greedy answer, its usage counted", async () => {
    const want = await hg.answer({ question: manifest.question, image: inputPng, maxTokens: 8 });
    const r = await client.chat.completions.create({ model: MODEL, messages: imageQuestion(), max_tokens: 8 });
    expect(r.object).toBe('chat.completion');
    expect(r.model).toBe(MODEL);
    expect(r.choices).toHaveLength(1);
    expect(r.choices[0]!.message.content).toBe(want.answer);
    expect(r.choices[0]!.finish_reason).toBe('length');
    // the reference prompt: its ids with one row per image patch where the image stands
    const promptLength = manifest.ask.ids.filter((t) => t !== null).length + manifest.n_patches;
    expect(r.usage).toEqual({ prompt_tokens: promptLength, completion_tokens: 8, total_tokens: promptLength + 8 });
  });

  it("temperature, top_p and seed reach the sampler: the session's sampled answer, reproduced", async () => {
    const want = await hg.answer({ question: manifest.question, image: inputPng, maxTokens: 12, temperature: 0.9, topP: 0.95, seed: 11 });
    const greedy = await hg.answer({ question: manifest.question, image: inputPng, maxTokens: 12 });
    expect(want.answer).not.toBe(greedy.answer);
    for (let i = 0; i < 2; i++) {
      const r = await client.chat.completions.create({ model: MODEL, messages: imageQuestion(), max_tokens: 12, temperature: 0.9, top_p: 0.95, seed: 11 });
      expect(r.choices[0]!.message.content).toBe(want.answer);
    }
  });

  it('chat with an image, streamed: the same text in chunks, then the finish, usage and [DONE]', async () => {
    const whole = await client.chat.completions.create({ model: MODEL, messages: imageQuestion(), max_tokens: 12 });
    const stream = await client.chat.completions.create({ model: MODEL, messages: imageQuestion(), max_tokens: 12, stream: true, stream_options: { include_usage: true } });
    const chunks: OpenAI.ChatCompletionChunk[] = [];
    for await (const c of stream) chunks.push(c);
    expect(chunks[0]!.choices[0]!.delta.role).toBe('assistant');
    const text = chunks.map((c) => c.choices[0]?.delta.content ?? '').join('');
    expect(text).toBe(whole.choices[0]!.message.content);
    expect(chunks.filter((c) => c.choices[0]?.delta.content).length).toBeGreaterThan(1);
    const finish = chunks.filter((c) => c.choices[0]?.finish_reason);
    expect(finish.map((c) => c.choices[0]!.finish_reason)).toEqual(['length']);
    expect(chunks.at(-1)!.choices).toEqual([]);
    expect(chunks.at(-1)!.usage).toEqual(whole.usage);
    expect(new Set(chunks.map((c) => c.id)).size).toBe(1);
  });

  it('logprobs: each token with its log-probability and the most likely alternatives, as the reference logits give them', async () => {
    const want = await hg.answer({ question: manifest.question, image: inputPng, maxTokens: 4 });
    const r = await client.chat.completions.create({ model: MODEL, messages: imageQuestion(), max_tokens: 4, logprobs: true, top_logprobs: 3 });
    const lp = r.choices[0]!.logprobs!.content!;
    expect(lp).toHaveLength(4);
    const tok = hg.model.tokenizer;
    // the tokens' bytes are the answer tokens' pieces, in order
    expect(lp.map((e) => e.bytes)).toEqual(want.tokens.map((t) => [...tok.tokenToPiece(t, true)]));
    for (const e of lp) {
      expect(e.top_logprobs).toHaveLength(3);
      // greedy: the chosen token is the most likely one
      expect(e.top_logprobs[0]!.token).toBe(e.token);
      expect(e.top_logprobs[0]!.logprob).toBe(e.logprob);
      expect(e.logprob).toBeLessThanOrEqual(0);
      for (let i = 1; i < 3; i++) expect(e.top_logprobs[i]!.logprob).toBeLessThanOrEqual(e.top_logprobs[i - 1]!.logprob);
    }
    // streamed: the same entries, spread over the chunks
    const stream = await client.chat.completions.create({ model: MODEL, messages: imageQuestion(), max_tokens: 4, logprobs: true, top_logprobs: 3, stream: true });
    const streamed: OpenAI.ChatCompletionTokenLogprob[] = [];
    for await (const c of stream) streamed.push(...(c.choices[0]?.logprobs?.content ?? []));
    expect(streamed).toEqual(lp);
    // the first step against transformers' logits (log-softmax in float64): the engine's
    // logits are within 1e-5 of the peak (test/healthgpt.test.ts), a log-probability moves by
    // at most twice the largest logit error
    const b = readFileSync(file('ask.logits.f32'));
    const ref = new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));
    let peak = 0;
    let max = -Infinity;
    for (const v of ref) [peak, max] = [Math.max(peak, Math.abs(v)), Math.max(max, v)];
    const lse = max + Math.log(ref.reduce((s, v) => s + Math.exp(v - max), 0));
    const order = [...ref.keys()].sort((x, y) => ref[y]! - ref[x]!);
    expect(order[0]).toBe(manifest.ask.argmax);
    for (let i = 0; i < 3; i++) {
      expect(lp[0]!.top_logprobs[i]!.bytes).toEqual([...tok.tokenToPiece(order[i]!, true)]);
      expect(Math.abs(lp[0]!.top_logprobs[i]!.logprob - (ref[order[i]!]! - lse))).toBeLessThan(2e-5 * peak);
    }
  });

  it('stop strings end the answer before the first one, with finish_reason "stop"', async () => {
    const full = (await client.chat.completions.create({ model: MODEL, messages: imageQuestion(), max_tokens: 16 })).choices[0]!.message.content!;
    const stop = full.slice(3, 5);
    const cut = full.indexOf(stop);
    for (const stream of [false, true]) {
      let text: string;
      let finish: string | null | undefined;
      if (stream) {
        const s = await client.chat.completions.create({ model: MODEL, messages: imageQuestion(), max_tokens: 16, stop: [stop], stream: true });
        text = '';
        for await (const c of s) {
          text += c.choices[0]?.delta.content ?? '';
          finish = c.choices[0]?.finish_reason ?? finish;
        }
      } else {
        const r = await client.chat.completions.create({ model: MODEL, messages: imageQuestion(), max_tokens: 16, stop });
        [text, finish] = [r.choices[0]!.message.content!, r.choices[0]!.finish_reason];
      }
      expect(text).toBe(full.slice(0, cut));
      expect(finish).toBe('stop');
    }
  });

  it("images.edit: a task by name gives the session's PNG as b64_json; DICOM accepted", async () => {
    const want = await hg.generateImage({ task: 'reconstruct', image: inputPng });
    const r = await client.images.edit({ model: MODEL, image: await toFile(inputPng, 'in.png', { type: 'image/png' }), prompt: 'reconstruct' });
    expect(r.data).toHaveLength(1);
    const png = Buffer.from(r.data![0]!.b64_json!, 'base64');
    expect(png.equals(want.png)).toBe(true);
    const meta = await sharp(png).metadata();
    expect([meta.format, meta.width, meta.height]).toEqual(['png', 256, 256]);

    const dicom = readFileSync(join(root, 'test', 'fixtures', 'image', 'ct_s16.dcm'));
    const fromSession = await hg.generateImage({ task: 'ct2mri', image: dicom });
    const d = await client.images.edit({ model: MODEL, image: await toFile(dicom, 'slice.dcm', { type: 'application/dicom' }), prompt: 'ct2mri' });
    expect(Buffer.from(d.data![0]!.b64_json!, 'base64').equals(fromSession.png)).toBe(true);
  });

  it('images.generate: report-to-CXR from the report text', async () => {
    const report = 'Mild cardiomegaly. No pleural effusion.';
    const want = await hg.generateImage({ task: 'report2cxr', report });
    const r = await client.images.generate({ model: MODEL, prompt: report, response_format: 'b64_json' });
    expect(Buffer.from(r.data![0]!.b64_json!, 'base64').equals(want.png)).toBe(true);
  });

  it('local image files only under --allow-dir; remote URLs never fetched', async () => {
    const ok = await client.chat.completions.create({ model: MODEL, messages: imageQuestion(join(allowed, 'in.png')), max_tokens: 3 });
    const viaData = await client.chat.completions.create({ model: MODEL, messages: imageQuestion(), max_tokens: 3 });
    expect(ok.choices[0]!.message.content).toBe(viaData.choices[0]!.message.content);
    let e = await refusal(client.chat.completions.create({ model: MODEL, messages: imageQuestion(join(outside, 'in.png')), max_tokens: 3 }));
    expect([e.status, e.code]).toEqual([403, 'local_file_refused']);
    // outside the folders a missing file is refused as an existing one is: no probing for files
    e = await refusal(client.chat.completions.create({ model: MODEL, messages: imageQuestion(`file://${join(allowed, '..', 'x', 'in.png')}`), max_tokens: 3 }));
    expect([e.status, e.code]).toEqual([403, 'local_file_refused']);
    e = await refusal(client.chat.completions.create({ model: MODEL, messages: imageQuestion(join(allowed, 'missing.png')), max_tokens: 3 }));
    expect([e.status, e.code]).toEqual([400, 'invalid_image_url']);
    e = await refusal(client.chat.completions.create({ model: MODEL, messages: imageQuestion('https://example.com/cxr.png'), max_tokens: 3 }));
    expect([e.status, e.code, e.param]).toEqual([400, 'remote_url_refused', 'messages[0].content[0].image_url.url']);
  });

  it("400: bad requests are refused in OpenAI's error shape, naming the parameter", async () => {
    const cases: [Record<string, unknown>, string][] = [
      [{ messages: [{ role: 'user', content: 'hi' }], temperature: 5 }, 'temperature'],
      [{ messages: [] }, 'messages'],
      [{ messages: [{ role: 'user', content: 'hi' }], n: 2 }, 'n'],
      [{ messages: [{ role: 'user', content: 'hi' }], top_logprobs: 2 }, 'top_logprobs'],
      [{ messages: [{ role: 'tool', content: 'x' }] }, 'messages[0].role'],
      [
        {
          messages: [
            {
              role: 'user',
              content: [
                { type: 'image_url', image_url: { url: 'data:image/png;base64,AAAA' } },
                { type: 'text', text: 'q' },
              ],
            },
          ],
        },
        '',
      ],
    ];
    for (const [body, param] of cases) {
      const e = await refusal(client.chat.completions.create({ model: MODEL, ...body } as unknown as OpenAI.ChatCompletionCreateParamsNonStreaming));
      expect(e.status).toBe(400);
      expect(e.type).toBe('invalid_request_error');
      expect(typeof e.message).toBe('string');
      if (param) expect(e.param).toBe(param);
    }
    // malformed JSON
    const res = await fetch(`${main.url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"messages": [' });
    expect(res.status).toBe(400);
    expect(((await res.json()) as { error: { type: string } }).error.type).toBe('invalid_request_error');
    let e = await refusal(client.images.edit({ model: MODEL, image: await toFile(inputPng, 'in.png'), prompt: 'report2cxr' }));
    expect([e.status, e.param]).toEqual([400, 'prompt']);
    // the client's faults that reached deeper code: a DICOM without pixels, a seed that is not
    // a number, a report whose image cannot fit the context (refused before decoding), a text
    // of 200 000 tokens (its spread once overflowed the stack), an unreadable multipart body
    const dicom = readFileSync(join(root, 'test', 'fixtures', 'image', 'no_pixels.dcm'));
    e = await refusal(client.chat.completions.create({ model: MODEL, messages: imageQuestion(dataUrl(dicom, 'application/dicom')), max_tokens: 2 }));
    expect([e.status, e.code]).toEqual([400, 'invalid_image']);
    e = await refusal(client.images.generate({ model: MODEL, prompt: 'Normal chest.', seed: true } as unknown as OpenAI.ImageGenerateParamsNonStreaming));
    expect([e.status, e.param]).toEqual([400, 'seed']);
    const t0 = performance.now();
    e = await refusal(client.images.generate({ model: MODEL, prompt: 'w '.repeat(600) }));
    expect([e.status, e.code]).toEqual([400, 'context_length_exceeded']);
    expect(e.message).toMatch(/and the image's 1024 tokens 1024 more, but the context holds 2048/);
    expect(performance.now() - t0).toBeLessThan(5000);
    e = await refusal(client.chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: 'w'.repeat(200_000) }], max_tokens: 1 }));
    expect([e.status, e.code]).toEqual([400, 'context_length_exceeded']);
    const form = await fetch(`${main.url}/v1/images/edits`, { method: 'POST', headers: { 'content-type': 'multipart/form-data' }, body: 'x' });
    expect([form.status, ((await form.json()) as { error: { code: string } }).error.code]).toEqual([400, 'invalid_multipart']);
    const url = await fetch(`${main.url}/v1/models/%E0%A4%A`);
    expect([url.status, ((await url.json()) as { error: { code: string } }).error.code]).toEqual([400, 'invalid_url']);
  });

  it('404: an unknown model or path', async () => {
    let e = await refusal(client.chat.completions.create({ model: 'gpt-4o', messages: [{ role: 'user', content: 'hi' }] }));
    expect([e.status, e.code, e.param]).toEqual([404, 'model_not_found', 'model']);
    e = await refusal(client.models.retrieve('gpt-4o'));
    expect(e.status).toBe(404);
    const res = await fetch(`${main.url}/v1/completions`, { method: 'POST', body: '{}', headers: { 'content-type': 'application/json' } });
    expect(res.status).toBe(404);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe('unknown_url');
  });

  it('401: a wrong or missing API key; another address than loopback needs one', async () => {
    const keyed = await serve({ apiKey: 'secret-key-123' });
    const e = await refusal(clientOf(keyed, 'wrong-key').models.list());
    expect([e.status, e.code]).toEqual([401, 'invalid_api_key']);
    const bare = await fetch(`${keyed.url}/v1/models`);
    expect(bare.status).toBe(401);
    expect(((await bare.json()) as { error: { code: string } }).error.code).toBe('invalid_api_key');
    expect((await clientOf(keyed, 'secret-key-123').models.list()).data[0]!.id).toBe(MODEL);
    expect((await fetch(`${keyed.url}/health`)).status).toBe(200);
    await expect(startServer({ session: hg, modelId: MODEL, port: 0, host: '0.0.0.0', logger: false })).rejects.toThrow(/needs an API key/);
  });

  it('403 without an API key: a request for another host (DNS rebinding) or from a foreign web page', async () => {
    const status = (headers: Record<string, string>) =>
      new Promise<number>((resolve, reject) => {
        const u = new URL(`${main.url}/v1/models`);
        request({ host: u.hostname, port: u.port, path: u.pathname, headers }, (res) => {
          res.resume();
          resolve(res.statusCode!);
        })
          .on('error', reject)
          .end();
      });
    expect(await status({ host: 'evil.example:8080' })).toBe(403);
    expect(await status({ host: `localhost:${new URL(main.url).port}`, origin: 'https://evil.example' })).toBe(403);
    expect(await status({ host: `localhost:${new URL(main.url).port}`, origin: 'http://localhost:3000' })).toBe(200);
    expect(await status({ host: new URL(main.url).host })).toBe(200);
  });

  it('413: a body, an upload or an image past its limit', async () => {
    const small = await serve({ bodyLimit: 6000, maxPixels: 500 });
    const c = clientOf(small);
    const big = Buffer.alloc(8000, 1);
    let e = await refusal(c.chat.completions.create({ model: MODEL, messages: imageQuestion(dataUrl(big)) }));
    expect(e.status).toBe(413);
    expect(e.type).toBe('invalid_request_error');
    e = await refusal(c.images.edit({ model: MODEL, image: await toFile(big, 'big.png'), prompt: 'reconstruct' }));
    expect(e.status).toBe(413);
    // input.png is 40 x 28 = 1120 pixels, over 500: refused from its header
    e = await refusal(c.chat.completions.create({ model: MODEL, messages: imageQuestion(), max_tokens: 2 }));
    expect([e.status, e.code]).toEqual([413, 'image_too_large']);
  });

  it('429: past the queue a request is refused with Retry-After; a request whose client leaves frees its place', async () => {
    const busyLogs: string[] = [];
    const busy = await serve({ queue: 1 }, busyLogs);
    const c = clientOf(busy);
    // an image generation (1024 image tokens) holds the model
    const leave = new AbortController();
    const first = c.images.generate({ model: MODEL, prompt: 'Normal chest.' }, { signal: leave.signal }).catch((err: unknown) => err);
    await until('the generation to run', async () => (await health(busy)).running === 1);
    const second = c.chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: 'hi' }], max_tokens: 2 });
    await until('the second request to wait', async () => (await health(busy)).waiting === 1);
    const e = await refusal(c.chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: 'hi' }], max_tokens: 2 }));
    expect([e.status, e.type, e.code]).toEqual([429, 'rate_limit_error', 'queue_full']);
    expect(Number(e.headers?.get('retry-after'))).toBeGreaterThanOrEqual(1);
    leave.abort();
    expect(await first).toBeInstanceOf(OpenAI.APIUserAbortError);
    // the generation stopped where it was (it logs 'image generated' only when it finishes)
    await until('the server to log the stopped generation', () => busyLogs.some((l) => l.includes('"aborted":"client disconnected"')));
    expect(busyLogs.some((l) => l.includes('image generated'))).toBe(false);
    expect((await second).choices[0]!.finish_reason).toBe('length');
    expect(await health(busy)).toMatchObject({ running: 0, waiting: 0 });
  });

  it('over a session of two sequences, a chat is answered while an image generation runs: decoded together, the answer as alone', async () => {
    const want = await hg.answer({ question: manifest.question, image: inputPng, maxTokens: 8 });
    const two = await HealthGPT.load({
      model: file('lm.gguf'),
      vision: file('clip.gguf'),
      vqgan: file('vqgan.gguf'),
      plugins: { comprehension: file('com.gguf'), generation: file('gen.gguf') },
      threads: 2,
      kvType: 'f32',
      sequences: 2,
    });
    const s = await startServer({ session: two, modelId: MODEL, port: 0, logger: false });
    try {
      const c = clientOf(s);
      let imageDone = false;
      const image = c.images.generate({ model: MODEL, prompt: 'Normal chest.' }).then((r) => {
        imageDone = true;
        return r;
      });
      await until('the generation to run', async () => (await health(s)).running === 1);
      // the answer takes a few steps of the generation's 1025: with one slot it would wait for all of them
      const r = await c.chat.completions.create({ model: MODEL, messages: imageQuestion(), max_tokens: 8 });
      expect(imageDone).toBe(false);
      expect(r.choices[0]!.message.content).toBe(want.answer);
      expect((await image).data?.[0]?.b64_json?.length).toBeGreaterThan(1000);
    } finally {
      await s.close();
      two.dispose();
    }
  });

  it('504: a request past its deadline stops, and the next one runs', async () => {
    // deadlines shorter and shorter against what a whole generation takes here, until one
    // falls inside the request: a fast processor may finish before a long one
    const t0 = performance.now();
    await client.images.generate({ model: MODEL, prompt: 'Normal chest.' });
    const whole = performance.now() - t0;
    let e: InstanceType<typeof OpenAI.APIError> | undefined;
    let sink: string[] = [];
    let slow: RunningServer | undefined;
    for (const timeoutMs of [whole / 4, whole / 16, whole / 64, 2].map((v) => Math.max(2, Math.round(v)))) {
      sink = [];
      slow = await serve({ timeoutMs }, sink);
      const r = await clientOf(slow)
        .images.generate({ model: MODEL, prompt: 'Normal chest.' })
        .then(() => undefined)
        .catch((err: unknown) => {
          if (err instanceof OpenAI.APIError) return err;
          throw err;
        });
      if (r) {
        e = r;
        break;
      }
    }
    expect(e, 'a deadline inside the request').toBeDefined();
    expect([e!.status, e!.type, e!.code]).toEqual([504, 'timeout_error', 'timeout']);
    // stopped where it was: the image is logged only when a generation finishes
    expect(sink.some((l) => l.includes('image generated'))).toBe(false);
    expect((await health(slow!)).running).toBe(0);
    expect((await clientOf(slow!).chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: 'hi' }], max_tokens: 1 })).choices[0]!.finish_reason).toBe('length');
  });

  it('a client that stops mid-upload is cut off at --timeout (408), and close() does not wait on it', async () => {
    // headers and part of the body, then silence, the socket left open
    const stall = (s: RunningServer): Promise<string> =>
      new Promise((resolve) => {
        const u = new URL(s.url);
        const req = request({ host: u.hostname, port: u.port, path: '/v1/chat/completions', method: 'POST', headers: { 'content-type': 'application/json', 'content-length': 1000 } });
        let got = '';
        req.on('response', (res) => {
          res.on('data', (d: Buffer) => (got += d.toString()));
          res.on('end', () => resolve(`${res.statusCode} ${got}`));
        });
        req.on('error', () => resolve(got === '' ? 'closed' : got));
        req.write('{"messages": [');
      });
    const quick = await serve({ timeoutMs: 1000 });
    const t0 = performance.now();
    const answer = await stall(quick);
    expect(answer).toMatch(/^408 .*"code":"request_timeout"/);
    expect(performance.now() - t0).toBeLessThan(10_000);
    // with the default deadline (10 minutes) close() cuts the stalled connection after its grace
    const slow = await startServer({ session: hg, modelId: MODEL, port: 0, logger: false });
    const stalled = stall(slow);
    await new Promise((r) => setTimeout(r, 200)); // the upload under way
    const t1 = performance.now();
    await slow.close();
    expect(performance.now() - t1).toBeLessThan(8000);
    expect(await stalled).not.toMatch(/^2/);
  });

  it('a client that disconnects mid-stream stops its request, and the next request proceeds', async () => {
    const before = logs.length;
    const stream = await client.chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: TEXT_QUESTION }], max_tokens: 2000, stream: true });
    let seen = 0;
    for await (const c of stream) {
      if (c.choices[0]?.delta.content) seen++;
      if (seen === 2) break; // leaving the loop aborts the response
    }
    await until('the server to log the aborted request', () => logs.slice(before).some((l) => l.includes('"finish_reason":"abort"')));
    const line = JSON.parse(logs.slice(before).find((l) => l.includes('"finish_reason":"abort"'))!) as { completion_tokens: number; aborted: string };
    expect(line.aborted).toBe('client disconnected');
    // greedy, this question runs 1022 tokens when left alone
    expect(line.completion_tokens).toBeLessThan(1000);
    await until('the slot to be free', async () => (await health(main)).running === 0);
    const next = await client.chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: TEXT_QUESTION }], max_tokens: 3 });
    expect(next.choices[0]!.finish_reason).toBe('length');
  });

  it('logs hold no prompt text and no image content unless --log-prompts', async () => {
    const marker = 'zebra-marker-7431';
    const messages: OpenAI.ChatCompletionMessageParam[] = [
      {
        role: 'user',
        content: [
          { type: 'image_url', image_url: { url: dataUrl(inputPng) } },
          { type: 'text', text: marker },
        ],
      },
    ];
    const before = logs.length;
    await client.chat.completions.create({ model: MODEL, messages, max_tokens: 2 });
    const quiet = logs.slice(before).join('');
    expect(quiet).toContain('"endpoint":"chat.completions"');
    expect(quiet).not.toContain(marker);
    expect(quiet).not.toContain(inputPng.toString('base64').slice(0, 40));
    const loud: string[] = [];
    const s = await serve({ logPrompts: true }, loud);
    await clientOf(s).chat.completions.create({ model: MODEL, messages, max_tokens: 2 });
    expect(loud.join('')).toContain(marker);
    expect(loud.join('')).not.toContain(inputPng.toString('base64').slice(0, 40));
  });
});

describe('healthgpt serve (command line)', () => {
  it('serves a model folder on 127.0.0.1 until SIGTERM', async () => {
    const child = spawn(process.execPath, [join(root, 'bin', 'healthgpt.js'), 'serve', '-m', dir, '--port', '0', '--threads', '2'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    try {
      await until('the server to listen', () => /Server listening at http:\/\/127\.0\.0\.1:\d+/.test(out));
      const url = /Server listening at (http:\/\/127\.0\.0\.1:\d+)/.exec(out)![1]!;
      const c = new OpenAI({ baseURL: `${url}/v1`, apiKey: 'unused', maxRetries: 0 });
      // the folder's name is the model's
      expect((await c.models.list()).data.map((m) => m.id)).toEqual(['healthgpt']);
      const r = await c.chat.completions.create({ model: 'healthgpt', messages: imageQuestion(), max_tokens: 2 });
      expect(r.usage!.completion_tokens).toBe(2);
    } finally {
      child.kill('SIGTERM');
    }
    expect(await exited).toBe(0);
  });

  it('refuses to listen beyond this machine without an API key', () => {
    const r = cli(['serve', '-m', dir, '--host', '0.0.0.0', '--port', '0'], { HEALTHGPT_API_KEY: '' });
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/listening on 0\.0\.0\.0 .*needs an API key/);
  });
});
