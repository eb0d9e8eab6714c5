/**
 * `healthgpt demo`: the main job on a fresh machine, on a small random-weight model the
 * project makes itself (no real weights can be had offline). It shows what the engine can do
 * so far, end to end through the public pieces: write a phi3 GGUF, read it back, quantize it
 * to llama.cpp's formats, and check and time the kernels on one of its layers.
 */
import { Command } from 'commander';
import { existsSync, mkdirSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { GGUFFile } from '../gguf/file.js';
import { ggmlType } from '../gguf/constants.js';
import { LanguageModel } from '../model/model.js';
import { native } from '../native.js';
import { quantizeFile } from '../quantize/quantize.js';
import type { QuantizeTarget } from '../quantize/plan.js';
import { PHI3_TINY, randomNormal, writeRandomPhi3 } from '../synthetic/phi3.js';
import { demoRelease } from './demo-release.js';
import { formatBytes, table } from './format.js';

export function cacheDir(): string {
  const base = process.env.HEALTHGPT_CACHE ?? join(process.env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'healthgpt');
  mkdirSync(base, { recursive: true });
  return base;
}

async function layerCheck(file: string, tensor: string, x: Float32Array, reference: Float32Array | undefined) {
  const f = GGUFFile.open(file);
  try {
    const i = f.tensorIndex(tensor);
    const t = f.info.tensors[i];
    const data = await f.tensorData(i);
    const [k, rows] = t.shape;
    const addon = native();
    const y = await addon.matmul(t.typeId, data, rows, k, x, 1);
    const times: number[] = [];
    for (let r = 0; r < 20; r++) {
      const t0 = process.hrtime.bigint();
      await addon.matmul(t.typeId, data, rows, k, x, 1);
      times.push(Number(process.hrtime.bigint() - t0) / 1e6);
    }
    times.sort((a, b) => a - b);
    let err = 0;
    let norm = 0;
    if (reference)
      for (let j = 0; j < y.length; j++) {
        err += (y[j] - reference[j]) ** 2;
        norm += reference[j] ** 2;
      }
    return { type: t.type, bytes: t.bytes, y, relErr: reference ? Math.sqrt(err / norm) : 0, ms: times[10] };
  } finally {
    f.close();
  }
}

export function demoCommand(): Command {
  return new Command('demo')
    .description('run the engine end to end on a small random-weight model it makes itself')
    .action(async () => {
      const dir = join(cacheDir(), 'demo');
      mkdirSync(dir, { recursive: true });
      const say = (s: string) => process.stdout.write(s + '\n');
      say('healthgpt demo: random weights that exercise the engine, not a medical model.');
      const cpu = native().cpu();
      say(`cpu kernels: ${cpu.active} (${cpu.features || 'no SIMD'})\n`);

      const f32 = join(dir, 'phi3-tiny-f32.gguf');
      if (!existsSync(f32)) {
        const t0 = Date.now();
        await writeRandomPhi3(f32, PHI3_TINY);
        say(`made ${f32} in ${Date.now() - t0} ms`);
      }
      const src = GGUFFile.open(f32);
      const params = src.info.tensors.reduce((s, t) => s + t.shape.reduce((a, b) => a * b, 1), 0);
      say(`model: phi3, ${PHI3_TINY.layers} layers, hidden ${PHI3_TINY.hidden}, ${params.toLocaleString('en')} parameters, ${src.info.tensors.length} tensors, ${formatBytes(src.info.fileSize)}`);
      src.close();

      const tensor = 'blk.0.attn_qkv.weight';
      const x = randomNormal(PHI3_TINY.hidden, 7);
      const ref = await layerCheck(f32, tensor, x, undefined);
      const rows = [['file type', 'size', 'quantize ms', `${tensor} type`, 'rel. error vs f32', 'matvec ms (from JS)']];
      rows.push(['f32', formatBytes(src.info.fileSize), '-', ref.type, '0', ref.ms.toFixed(3)]);
      for (const target of ['f16', 'q8_0', 'q4_0', 'q4_k_m'] as QuantizeTarget[]) {
        const out = join(dir, `phi3-tiny-${target}.gguf`);
        const r = await quantizeFile(f32, out, target);
        const c = await layerCheck(out, tensor, x, ref.y);
        const size = GGUFFile.open(out);
        rows.push([target, formatBytes(size.info.fileSize), (r.seconds * 1000).toFixed(0), `${c.type} (${ggmlType(c.type)!.blockSize}/block)`, c.relErr.toExponential(2), c.ms.toFixed(3)]);
        size.close();
      }
      say('\n' + table(rows, [false, true, true, false, true, true]));

      // the language model end to end: chat template, tokenizer, decoder, sampler, streaming
      const modelFile = join(dir, 'phi3-tiny-q4_k_m.gguf');
      const model = await LanguageModel.load(modelFile);
      try {
        const question = 'What is shown in the chest x ray?';
        say(`\nchat (phi3_instruct template) on ${modelFile}:\n> ${question}`);
        const t0 = performance.now();
        let n = 0;
        process.stdout.write('< ');
        // a random model strings byte tokens into invalid UTF-8 (printed as U+FFFD): the demo
        // masks them out, which also shows the sampler's logit mask at work
        const tok = model.tokenizer;
        const bytes = Array.from({ length: tok.size }, (_, id) => id).filter((id) => /^<0x[0-9A-F]{2}>$/.test(tok.tokenText(id)));
        const logitMask = (logits: Float32Array) => {
          for (const id of bytes) logits[id] = -Infinity;
        };
        for await (const piece of model.chat([{ role: 'user', content: question }], { maxTokens: 24, logitMask })) {
          process.stdout.write(piece);
          n++;
        }
        const ms = performance.now() - t0;
        say(`\n(${n} text pieces in ${ms.toFixed(0)} ms, ${model.finishReason}; random weights: the words mean nothing)`);
      } finally {
        model.dispose();
      }
      // the released file layouts, converted as the real release is, each part run once
      await demoRelease(dir, say);
      say(`\nfiles in ${dir}; inspect one with: npx healthgpt info ${modelFile}`);
      say('image questions (CLIP + H-LoRA) and image generation (VQGAN) are not in the engine yet.');
    });
}
