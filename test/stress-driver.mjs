// The stress test's requests and their runner (test/stress.test.ts), plain JS over dist/ so a
// worker_thread runs exactly what the main thread runs: 64 requests of every kind on one
// HealthGPT session, a quarter of them aborted at seeded points, a few iterators dropped after
// their first piece; each result reduced to a digest to compare with the same request alone.
import { createHash } from 'node:crypto';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { isMainThread, parentPort, workerData } from 'node:worker_threads';

/**
 * @typedef {{ kind: string, key: string, spec: any, abortAt?: number, drop?: boolean }} Request
 * @typedef {{ status: 'ok' | 'aborted' | 'dropped', digest?: string, first?: string }} Outcome
 * @typedef {{ requests: number, aborted: number, dropped: number, completed: number, equalToSolo: number, differing: string[] }} Tally
 * @typedef {import('../lib/session/healthgpt.js').HealthGPT} HealthGPT
 */

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '..');
const lib = createRequire(import.meta.url)(join(root, 'dist', 'index.js'));
const fixture = (name) => join(root, 'test', 'fixtures', 'healthgpt', name);

export const sessionOptions = () => ({
  model: fixture('lm.gguf'),
  vision: fixture('clip.gguf'),
  plugins: { comprehension: fixture('com.gguf'), generation: fixture('gen.gguf') },
  vqgan: fixture('vqgan.gguf'),
  threads: 1,
  kvType: 'f32',
});

export function loadSession() {
  return lib.HealthGPT.load(sessionOptions());
}

/** mulberry32: a small seeded generator, so every run issues the same requests */
function prng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const QUESTIONS = ['What is shown?', 'Is it normal?', 'Describe the image.'];
const PLUGINS = [undefined, 'comprehension', 'generation'];
// generateImage is 1024 tokens on the tiny model (~1 s alone): few of them, the rest small
const KINDS = [...Array(15).fill('ask'), ...Array(15).fill('answer'), ...Array(15).fill('evaluate'), ...Array(15).fill('chat'), ...Array(4).fill('generateImage')];

/**
 * The requests of one round: {kind, key (the spec; equal keys ask the same thing), spec,
 * abortAt?: a piece / image token / millisecond count, drop?: read one piece then let go}.
 */
/** @returns {Request[]} */
export function makeRequests(seed) {
  const rand = prng(seed);
  const pick = (a) => a[Math.floor(rand() * a.length)];
  const kinds = [...KINDS];
  for (let i = kinds.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [kinds[i], kinds[j]] = [kinds[j], kinds[i]];
  }
  const reqs = kinds.map(
    /** @returns {Request} */ (kind) => {
      const question = pick(QUESTIONS);
      let spec;
      if (kind === 'ask' || kind === 'answer') spec = { question, image: rand() < 0.5, maxTokens: pick([4, 8]) };
      else if (kind === 'evaluate') spec = { question, plugin: pick(PLUGINS) };
      else if (kind === 'chat') spec = { question, maxTokens: pick([4, 6]) };
      else spec = { task: 'reconstruct' };
      return { kind, spec, key: `${kind} ${JSON.stringify(spec)}` };
    },
  );
  // a quarter aborted (evaluate takes no signal), three streams dropped
  const abortable = reqs.filter((r) => r.kind !== 'evaluate');
  let aborts = 0;
  while (aborts < reqs.length / 4) {
    const r = pick(abortable);
    if (r.abortAt !== undefined) continue;
    r.abortAt = r.kind === 'generateImage' ? 1 + Math.floor(rand() * 1000) : r.kind === 'answer' ? Math.floor(rand() * 20) : 1 + Math.floor(rand() * 3);
    aborts++;
  }
  let drops = 0;
  for (const r of reqs) {
    if (drops === 3) break;
    if ((r.kind === 'ask' || r.kind === 'chat') && r.abortAt === undefined) {
      r.drop = true;
      drops++;
    }
  }
  return reqs;
}

const sha = (...parts) => {
  const h = createHash('sha256');
  for (const p of parts) h.update(typeof p === 'string' ? p : Buffer.from(p.buffer, p.byteOffset, p.byteLength));
  return h.digest('hex').slice(0, 16);
};

/** Reads a stream of text pieces: the text and why it ended, or the first piece alone when dropped. */
async function readStream(gen, r, ac) {
  let text = '';
  let pieces = 0;
  for (;;) {
    const s = await gen.next();
    if (s.done) return sha(JSON.stringify({ text, finish: s.value }));
    text += s.value;
    pieces++;
    if (r.drop) return { dropped: s.value }; // never finished, never return()ed
    if (r.abortAt === pieces) ac.abort();
  }
}

/**
 * Runs one request on a session: {status: 'ok', digest} | {status: 'aborted'} |
 * {status: 'dropped', first}. Other errors reject.
 */
/** @param {HealthGPT} hg @param {Request} r @returns {Promise<Outcome>} */
export async function runOne(hg, r, { solo = false } = {}) {
  const ac = new AbortController();
  const signal = solo ? undefined : ac.signal;
  const abortAt = solo ? undefined : r.abortAt;
  const req = solo ? { ...r, abortAt: undefined, drop: false } : r;
  const { spec } = r;
  try {
    let out;
    if (r.kind === 'ask') {
      out = await readStream(
        hg.ask({
          question: spec.question,
          image: spec.image ? fixture('input.png') : undefined,
          maxTokens: spec.maxTokens,
          signal,
        }),
        req,
        ac,
      );
    } else if (r.kind === 'chat') {
      out = await readStream(
        hg.model.chat([{ role: 'user', content: spec.question }], {
          maxTokens: spec.maxTokens,
          temperature: 0,
          signal,
        }),
        req,
        ac,
      );
    } else if (r.kind === 'answer') {
      if (abortAt !== undefined) setTimeout(() => ac.abort(), abortAt);
      const a = await hg.answer({
        question: spec.question,
        image: spec.image ? fixture('input.png') : undefined,
        maxTokens: spec.maxTokens,
        signal,
      });
      out = sha(JSON.stringify({ answer: a.answer, tokens: a.tokens, finish: a.finishReason }));
    } else if (r.kind === 'evaluate') {
      const logits = await hg.model.evaluate(hg.model.tokenize(spec.question), { plugin: spec.plugin });
      out = sha(logits);
    } else {
      const img = await hg.generateImage({
        task: 'reconstruct',
        image: fixture('input.png'),
        signal,
        onToken: (done) => {
          if (done === abortAt) ac.abort();
        },
      });
      out = sha(img.indices, img.png);
    }
    return typeof out === 'string' ? { status: 'ok', digest: out } : { status: 'dropped', first: out.dropped };
  } catch (err) {
    if (/** @type {{ code?: string }} */ (err)?.code === 'ABORT_ERR' && !solo) return { status: 'aborted' };
    throw err;
  }
}

/** Every distinct request of `reqs`, each run alone on the session: key -> digest. */
/** @param {HealthGPT} hg @param {Request[]} reqs */
export async function runSolo(hg, reqs) {
  /** @type {Record<string, string>} */
  const solo = {};
  for (const r of reqs) if (!(r.key in solo)) solo[r.key] = (await runOne(hg, r, { solo: true })).digest ?? '';
  return solo;
}

/**
 * One round: the requests dealt to `callers` async callers that each issue theirs without
 * waiting for the previous one; settles when all have. Returns each request's outcome.
 */
/** @param {HealthGPT} hg @param {Request[]} reqs @returns {Promise<Outcome[]>} */
export async function runRound(hg, reqs, callers = 4) {
  /** @type {Outcome[]} */
  const out = new Array(reqs.length);
  await Promise.all(
    Array.from({ length: callers }, async (_, c) => {
      const mine = [];
      for (let i = c; i < reqs.length; i += callers) {
        mine.push(runOne(hg, reqs[i]).then((o) => (out[i] = o)));
        await new Promise((resolve) => setImmediate(resolve)); // interleave the callers
      }
      await Promise.all(mine);
    }),
  );
  return out;
}

/** Tallies a round against the solo digests. */
/** @param {Request[]} reqs @param {Outcome[]} outcomes @param {Record<string, string>} solo @returns {Tally} */
export function tally(reqs, outcomes, solo) {
  /** @type {Tally} */
  const t = { requests: reqs.length, aborted: 0, dropped: 0, completed: 0, equalToSolo: 0, differing: [] };
  outcomes.forEach((o, i) => {
    if (o.status === 'aborted') t.aborted++;
    else if (o.status === 'dropped') t.dropped++;
    else {
      t.completed++;
      if (o.digest === solo[reqs[i].key]) t.equalToSolo++;
      else t.differing.push(reqs[i].key);
    }
  });
  return t;
}

// As a process (`node test/stress-driver.mjs rounds SEED`, node run with --expose-gc): the
// solo digests, two rounds' tallies (after a warm-up round) and the RSS after each (after a full collection),
// as JSON on stdout. Its own process so the RSS is of this work alone (test/stress.test.ts
// also fixes glibc's mmap threshold there, so freed large buffers leave at once).
if (isMainThread && process.argv[1] === fileURLToPath(import.meta.url) && process.argv[2] === 'rounds') {
  (async () => {
    const hg = await loadSession();
    try {
      const reqs = makeRequests(Number(process.argv[3]));
      const solo = await runSolo(hg, reqs);
      const tallies = [];
      const rss = [];
      // a warm-up round first (JIT code, allocator arenas, the session's caches), then the two
      // rounds compared; native buffers held by collected objects are freed by finalizers in
      // a later task, so the RSS is read after a collection and a pause
      const gc = /** @type {() => void} */ (globalThis.gc); // node --expose-gc
      for (let i = 0; i < 3; i++) {
        const t = tally(reqs, await runRound(hg, reqs), solo);
        if (i === 0) continue;
        tallies.push(t);
        gc();
        await new Promise((resolve) => setTimeout(resolve, 100));
        gc();
        rss.push(process.memoryUsage().rss);
      }
      process.stdout.write(JSON.stringify({ solo, tallies, rss }));
    } finally {
      hg.dispose();
    }
  })().catch((e) => {
    console.error(e);
    process.exit(1);
  });
}

// As a worker: load a session, run one round, post its tally against the given solo digests.
if (!isMainThread && workerData?.stress) {
  (async () => {
    const hg = await loadSession();
    try {
      const reqs = makeRequests(workerData.seed);
      const outcomes = await runRound(hg, reqs);
      parentPort?.postMessage(tally(reqs, outcomes, workerData.solo));
    } finally {
      hg.dispose();
    }
  })().catch((e) => parentPort?.postMessage({ error: `${e.code ?? ''} ${e.stack ?? e}` }));
}
