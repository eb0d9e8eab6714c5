/**
 * The embeddings / head resize HealthGPT's own code applies when no trained rows are loaded
 * (llava/demo/utils.py add_special_tokens_and_resize_model, run by com_infer.py and
 * com_infer_phi4.py): `resize_token_embeddings(len(tokenizer))` keeps rows [0, min(old, new)) of
 * embed_tokens and of lm_head (Phi-3 / Phi-4 do not tie them, so both are resized), then the
 * last `num_new_tokens` rows of each are set to the mean over dim 0 of the rows before them.
 * With the new tokens right after the tokenizer's own (`keep` of them), that is: rows [0, keep)
 * as in the checkpoint, rows [keep, rows) all equal to the mean of rows [0, keep). Rows of the
 * checkpoint past the tokenizer (Phi-3's 32011..32063) are dropped.
 */
import { convertFail, type LazyTensor } from './tensor.js';

export function resizeWithMean(t: LazyTensor, keep: number, rows: number): LazyTensor {
  const [old, width] = t.shape as [number, number];
  if (t.shape.length !== 2) convertFail(`'${t.name}' (${t.file}) has shape [${t.shape.join(', ')}], expected [rows, hidden]`);
  if (keep < 1 || keep > old) convertFail(`'${t.name}' (${t.file}) has ${old} rows, fewer than the tokenizer's ${keep} tokens`);
  if (rows <= keep) convertFail(`resize of '${t.name}': ${rows} rows leave no room after the tokenizer's ${keep}`);
  return {
    name: t.name,
    dtype: t.dtype,
    shape: [rows, width],
    file: t.file,
    async readF32() {
      const src = await t.readF32();
      const out = new Float32Array(rows * width);
      out.set(src.subarray(0, keep * width));
      // the mean in float64: one rounding to float32, whatever the row count
      const sum = new Float64Array(width);
      for (let r = 0; r < keep; r++) {
        const o = r * width;
        for (let c = 0; c < width; c++) sum[c] += src[o + c]!;
      }
      const mean = new Float32Array(width);
      for (let c = 0; c < width; c++) mean[c] = sum[c]! / keep;
      for (let r = keep; r < rows; r++) out.set(mean, r * width);
      return out;
    },
  };
}
