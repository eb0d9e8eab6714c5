// The random Phi-3-mini-shaped models the benchmarks share (tools/bench.mjs in every file
// type, bench-hlora.mjs, bench-generate.mjs and bench-batch.mjs in Q4_0, with their plugins),
// made once into the cache: one recipe, so the files hold the same weights and a second
// benchmark never quantizes 2 GB again.
import { existsSync, mkdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

export const BENCH_MODEL_VERSION = 2; // bump when the recipe below changes

/** Uniform random values of the given standard deviation (xorshift32: fast; values do not matter for speed). */
export function fillRandom(out, seed, std) {
  let s = seed >>> 0 || 0x9e3779b9;
  const scale = (std * Math.sqrt(3)) / 2147483648;
  for (let i = 0; i < out.length; i++) {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    out[i] = s * scale; // s as int32: uniform on [-2^31, 2^31)
  }
}

/** SentencePiece pieces so llama.cpp loads the file: specials, bytes, then letter strings. */
export function benchSpmVocab(n) {
  const tokens = ['<unk>', '<s>', '</s>'];
  for (let b = 0; b < 256; b++) tokens.push(`<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`);
  const letters = 'etaoinshrdlucmfwypvbgkjqxz'.split('');
  tokens.push('▁');
  // every string of 1, 2, 3, ... letters, with and without the word-start mark, until n
  for (let level = ['']; tokens.length < n; ) {
    level = level.flatMap((p) => letters.map((c) => p + c));
    for (const p of [...level.map((x) => `▁${x}`), ...level]) {
      if (tokens.length >= n) break;
      tokens.push(p);
    }
  }
  return {
    tokens,
    scores: Float32Array.from(tokens, (_, i) => (i < 259 ? 0 : -i)),
    types: Int32Array.from(tokens, (_, i) => (i === 0 ? 2 : i < 3 ? 3 : i < 259 ? 6 : 1)),
  };
}

/**
 * Writes a phi3 GGUF of `shape` (lib/synthetic/phi3.ts's) with random matrices quantized as
 * `healthgpt quantize <target>` would type them (lib/quantize/plan.ts: q4_0, q8_0, or the
 * k-quant mixes q4_k_m, q5_k_m, q6_k) and f32 norms near 1, each tensor drawn and quantized
 * in slices as the writer reaches it (at most ~16M floats in memory, never the F32 model).
 * Every layer holds the first layer's matrices (each written out again, so a token still
 * reads every byte once): the reference k-quant quantizers take most of an hour for the 3.8 B
 * values of 32 distinct layers on 2 cores, minutes for one, and no kernel's speed depends
 * on the values. Where the plan types a tensor of a later layer differently (q4_k_m's
 * mixes), it is drawn and quantized on its own.
 * `addVocab(writer)` adds the vocabulary. `lib(path)` loads a module of the compiled library (dist/).
 */
export async function writeRandomPhi3Quantized(lib, path, shape, target, addVocab, log) {
  const { GGUFWriter } = lib('gguf/writer.js');
  const { ggmlType, tensorBytes } = lib('gguf/constants.js');
  const { addPhi3Hparams, phi3Tensors } = lib('synthetic/phi3.js');
  const { FILE_TYPE, planQuantization } = lib('quantize/plan.js');
  const { native } = lib('native.js');
  const started = Date.now();
  const w = new GGUFWriter();
  addPhi3Hparams(w, shape, 'healthgpt bench: random weights (not a trained model)');
  w.addKV('general.file_type', FILE_TYPE[target], 'u32');
  w.addKV('general.quantization_version', 2, 'u32');
  addVocab(w);
  const tensors = phi3Tensors(shape);
  const plan = planQuantization(
    tensors.map((t) => ({ ...t, type: 'f32' })),
    target,
    shape.layers,
    { blockSize: (n) => ggmlType(n).blockSize },
    () => true,
  );
  /** @type {Map<string, Buffer>} */
  const firstLayer = new Map();
  tensors.forEach((t, i) => {
    if (t.shape.length === 1) {
      const ones = new Float32Array(t.shape[0]);
      fillRandom(ones, 1000 + i, 0.1);
      for (let k = 0; k < ones.length; k++) ones[k] += 1;
      w.addTensor(t.name, t.shape, ggmlType('f32').id, new Uint8Array(ones.buffer));
      return;
    }
    const type = ggmlType(plan[i].to).id;
    const [k, rows] = t.shape;
    // the first layer's tensor of this name and type, when this is a later layer's
    const inLayer = /^blk\.\d+\.(.*)$/.exec(t.name);
    const key = inLayer && `${inLayer[1]}:${type}`;
    w.addTensor(t.name, t.shape, type, () => {
      const kept = key && firstLayer.get(key);
      if (kept) return kept;
      const out = Buffer.allocUnsafe(tensorBytes(type, t.shape));
      const rowBytes = out.length / rows;
      const step = Math.max(1, Math.floor((16 << 20) / k));
      const f = new Float32Array(step * k);
      for (let r = 0; r < rows; r += step) {
        const n = Math.min(step, rows - r);
        const slice = f.subarray(0, n * k);
        fillRandom(slice, (i + 1) * 1_000_003 + r, 1 / Math.sqrt(k));
        native()
          .quantizeRow(type, slice)
          .copy(out, r * rowBytes);
      }
      if (key) firstLayer.set(key, out);
      log(`  ${i + 1}/${tensors.length} tensors (${t.name}, drawn and quantized)`);
      return out;
    });
  });
  await w.write(path);
  log(`  done in ${((Date.now() - started) / 1000).toFixed(0)} s, ${(statSync(path).size / 1e9).toFixed(2)} GB`);
}

/** writeRandomPhi3Quantized for Q4_0, the type the H-LoRA and generation benches use. */
export async function writeRandomPhi3Q4(lib, path, shape, addVocab, log) {
  await writeRandomPhi3Quantized(lib, path, shape, 'q4_0', addVocab, log);
}

/**
 * The shared file of a type (`target` as `healthgpt quantize` takes it): Phi-3-mini's shape
 * and HealthGPT's vocabulary size, bench vocabulary. `layers` makes a shallower model of the
 * same widths (bench --quick).
 */
export async function ensureBenchModel(lib, dir, log, target = 'q4_0', layers = /** @type {number | undefined} */ (undefined)) {
  const { PHI3_MINI } = lib('synthetic/phi3.js');
  const { addSpmVocab } = lib('tokenizer/vocab-gguf.js');
  const s = layers ? { ...PHI3_MINI, layers } : PHI3_MINI;
  const depth = layers ? `-${layers}l` : '';
  const path = join(dir, `phi3-mini${depth}-random-${target}-v${BENCH_MODEL_VERSION}-${s.vocab}.gguf`);
  if (existsSync(path)) return path;
  mkdirSync(dir, { recursive: true });
  log(`making ${path} (Phi-3-mini shape${layers ? `, ${layers} layers` : ''}, random weights, ${target}; once) ...`);
  const v = benchSpmVocab(s.vocab);
  await writeRandomPhi3Quantized(lib, path, s, target, (w) => addSpmVocab(w, { pieces: v.tokens, scores: v.scores, types: v.types, unknownId: 0, bosId: 1, eosId: 2 }), log);
  return path;
}

const GB = 1e9;
const PLUGIN_VERSION = 1; // bump when lib/synthetic/hlora's recipe changes

/**
 * Random Q4_0 weights in the Phi-3-mini shape with HealthGPT's vocabulary (its image tokens:
 * image generation, bench-generate.mjs and bench-batch.mjs).
 */
export async function ensureHealthGPTVocabModel(lib, dir, log) {
  const { GGUFWriter } = lib('gguf/writer.js');
  const { PHI3_MINI } = lib('synthetic/phi3.js');
  const { syntheticSpmVocab } = lib('synthetic/vocab.js');
  const { addSpmVocab } = lib('tokenizer/vocab-gguf.js');
  const s = PHI3_MINI;
  const path = join(dir, `phi3-mini-healthgpt-vocab-random-q4_0-v${BENCH_MODEL_VERSION}.gguf`);
  if (existsSync(path)) return { path, shape: s };
  mkdirSync(dir, { recursive: true });
  log(`making ${path} (Phi-3-mini shape, HealthGPT vocabulary, random weights, Q4_0; once) ...`);
  // ensureBenchModel's file holds these very weights (the same recipe and seeds) under another
  // vocabulary: copy them when it is there (seconds, not minutes of quantizing)
  const benchBase = join(dir, `phi3-mini-random-q4_0-v${BENCH_MODEL_VERSION}-${s.vocab}.gguf`);
  if (!existsSync(benchBase)) {
    await writeRandomPhi3Q4(lib, path, s, (w) => addSpmVocab(w, syntheticSpmVocab(s.vocab)), log);
    return { path, shape: s };
  }
  const started = Date.now();
  const { addPhi3Hparams } = lib('synthetic/phi3.js');
  const { GGUFFile } = lib('gguf/file.js');
  const w = new GGUFWriter();
  addPhi3Hparams(w, s, 'healthgpt bench: random weights (not a trained model)');
  w.addKV('general.file_type', 2, 'u32');
  w.addKV('general.quantization_version', 2, 'u32');
  addSpmVocab(w, syntheticSpmVocab(s.vocab));
  const src = GGUFFile.open(benchBase);
  log(`  weights copied from ${benchBase}`);
  for (const [i, t] of src.info.tensors.entries()) w.addTensor(t.name, t.shape, t.typeId, () => src.tensorData(i));
  await w.write(path);
  src.close();
  log(`  done in ${((Date.now() - started) / 1000).toFixed(0)} s, ${(statSync(path).size / GB).toFixed(2)} GB`);
  return { path, shape: s };
}

/** A small F32 model with HealthGPT's vocabulary (hidden 256, 2 layers): smoke tests, seconds to make. */
export async function ensureTinyHealthGPTVocabModel(lib, dir, log) {
  const { PHI3_TINY, writeRandomPhi3 } = lib('synthetic/phi3.js');
  const { HEALTHGPT_VOCAB_SIZE } = lib('synthetic/vocab.js');
  const s = { ...PHI3_TINY, vocab: HEALTHGPT_VOCAB_SIZE, context: 2048 };
  const path = join(dir, `phi3-tiny-healthgpt-vocab-random-f32-v${BENCH_MODEL_VERSION}.gguf`);
  if (!existsSync(path)) {
    mkdirSync(dir, { recursive: true });
    log(`making ${path} (tiny, HealthGPT vocabulary, F32) ...`);
    await writeRandomPhi3(path, s);
  }
  return { path, shape: s };
}

/** A random H-LoRA plugin of `spec`'s shape (lib/synthetic/hlora M3_COMPREHENSION / M3_GENERATION) for a base of `shape`, F16. */
export async function ensurePlugin(lib, dir, shape, spec, log) {
  const { writeRandomHLoraPlugin } = lib('synthetic/hlora.js');
  const key = `${shape.layers}x${shape.hidden}x${shape.ffn}x${shape.heads}x${shape.kvHeads}`;
  const path = join(dir, `hlora-${spec.name}-r${spec.rank}-f16-v${PLUGIN_VERSION}-${key}.gguf`);
  if (existsSync(path)) return path;
  mkdirSync(dir, { recursive: true });
  log(`making ${path} (random ${spec.name} plugin, r=${spec.rank}, ${spec.experts} experts, F16; once) ...`);
  await writeRandomHLoraPlugin(path, shape, spec, 'f16');
  return path;
}
