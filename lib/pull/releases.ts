/**
 * What `healthgpt pull` fetches for each released model (docs/model.md "The two released models"):
 * the base language model, the CLIP tower and HealthGPT's own files, each from its Hugging
 * Face repository. Only the files the converter reads are taken (weights in safetensors where
 * the repository has them, configs, tokenizer files), never a whole repository.
 */
import type { HubFile } from './hub.js';

export type ReleaseName = 'm3' | 'l14';

export interface ReleasePart {
  /** where the converter looks for it: --llm, --vision, --plugins */
  role: 'llm' | 'vision' | 'plugins';
  repo: string;
  revision: string;
  /** picks the files to fetch from the repository's listing */
  select: (files: readonly HubFile[]) => HubFile[];
}

const TOKENIZER_AND_CONFIG = new Set([
  'config.json',
  'generation_config.json',
  'tokenizer.model',
  'tokenizer.json',
  'tokenizer_config.json',
  'special_tokens_map.json',
  'added_tokens.json',
  'vocab.json',
  'merges.txt',
  'preprocessor_config.json',
]);

/** Top-level safetensors weights (and their index) plus configs and tokenizer files. */
function hfModel(files: readonly HubFile[]): HubFile[] {
  const top = files.filter((f) => !f.path.includes('/'));
  const safetensors = top.filter((f) => f.path.endsWith('.safetensors') || f.path === 'model.safetensors.index.json');
  // a repository without safetensors: its PyTorch weights (read by our allow-listed unpickler)
  const weights = safetensors.length > 0 ? safetensors : top.filter((f) => /^pytorch_model(-\d+-of-\d+)?\.bin$/.test(f.path) || f.path === 'pytorch_model.bin.index.json');
  return [...weights, ...top.filter((f) => TOKENIZER_AND_CONFIG.has(f.path))];
}

const named =
  (...names: string[]) =>
  (files: readonly HubFile[]) =>
    files.filter((f) => names.includes(f.path));

export const RELEASES: Readonly<Record<ReleaseName, readonly ReleasePart[]>> = {
  m3: [
    { role: 'llm', repo: 'microsoft/Phi-3-mini-4k-instruct', revision: 'main', select: hfModel },
    { role: 'vision', repo: 'openai/clip-vit-large-patch14-336', revision: 'main', select: hfModel },
    { role: 'plugins', repo: 'lintw/HealthGPT-M3', revision: 'main', select: named('com_hlora_weights.bin', 'gen_hlora_weights.bin', 'fusion_layer_weights.bin') },
  ],
  l14: [
    { role: 'llm', repo: 'microsoft/phi-4', revision: 'main', select: hfModel },
    { role: 'vision', repo: 'openai/clip-vit-large-patch14-336', revision: 'main', select: hfModel },
    { role: 'plugins', repo: 'lintw/HealthGPT-L14', revision: 'main', select: named('com_hlora_weights_phi4.bin') },
  ],
};

/**
 * The VQGAN (taming GumbelVQ f8, 8192 codes) is not on the Hugging Face Hub: HealthGPT's README
 * points at the taming-transformers authors' own file share, which publishes no checksums.
 * `pull` says so and `convert --vqgan` takes the `last.ckpt` the user downloaded.
 */
export const VQGAN_SOURCE = 'https://heibox.uni-heidelberg.de/d/2e5662443a6b4307b470/ (VQGAN OpenImages f=8, 8192, GumbelQuantization: last.ckpt)';
