/**
 * Our converter (lib/convert/clip.ts, `healthgpt convert --vision`) on a Hugging Face CLIP
 * folder plus a LLaVA-style projector (mm_projector.safetensors: model.mm_projector.{0,2}.
 * {weight,bias}), for record.py:
 *
 *   npx vite-node tools/mmproj-golden/convert-ours.ts -- HF_DIR PROJECTOR OUT TYPE
 */
import { openCheckpoint } from '../../lib/convert/checkpoint.js';
import { convertClip, type ProjectorTensors } from '../../lib/convert/clip.js';

async function convertWithProjector(dir: string, projector: string, out: string, type: 'f32' | 'f16' | 'bf16' | 'q8_0'): Promise<void> {
  const ckpt = await openCheckpoint(projector);
  try {
    const by = new Map(ckpt.tensors.map((t) => [t.name, t]));
    const get = (k: string) => {
      const t = by.get(`model.mm_projector.${k}`);
      if (!t) throw new Error(`${projector}: no model.mm_projector.${k}`);
      return t;
    };
    const comprehension: ProjectorTensors = {
      'mm.0.weight': get('0.weight'),
      'mm.0.bias': get('0.bias'),
      'mm.2.weight': get('2.weight'),
      'mm.2.bias': get('2.bias'),
    };
    await convertClip(dir, out, { type, comprehension });
  } finally {
    await ckpt.close();
  }
}

const args = process.argv.slice(2).filter((a) => a !== '--');
if (args.length !== 4) throw new Error('usage: convert-ours.ts HF_DIR PROJECTOR OUT TYPE');
convertWithProjector(args[0]!, args[1]!, args[2]!, args[3] as 'f32').catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
