/**
 * HealthGPT end to end: one language model with its two H-LoRA plugins, the CLIP vision tower
 * and (for image generation) the VQGAN, wired as HealthGPT's released inference does
 * (com_infer.py / gen_infer.py, docs/model.md):
 *
 * - ask: phi3_instruct (or phi4_instruct) chat, user turn `<image>\n{question}`, CLIP hidden
 *   state -2, the comprehension projector and plugin, ends at the model's end-of-sequence ids
 *   (generation_config.json's, recorded by the converter);
 * - generateImage: user turn `<image>\n{instruction}` (no image for report2cxr), `<start_index>`
 *   after the open assistant role, CLIP hidden state 1, the generation projector and plugin,
 *   then exactly latent^2 `<idx_k>` tokens (a logit mask enforces it) and `<end_index>`; the
 *   indices go through the VQGAN decoder to a PNG. Several inputs (`images`) are generated
 *   together: concurrent requests of the language model, batched into one pass per token
 *   when the model holds enough sequences (HealthGPTLoadOptions.sequences).
 *
 * Projectors: a plugin file's own (mm.0 / mm.2) when it has one, else the vision file's
 * (mm.0 / mm.2 for comprehension, mm.gen.0 / mm.gen.2 for generation). Projected features are
 * kept per (pixel content hash, tap) in a small LRU, so a second question about an image runs
 * neither CLIP nor its prefill again (the language model reuses the matching KV prefix).
 * All model work runs off the JS thread; an AbortSignal stops within one token and leaves the
 * session usable.
 */
import { HealthGPTError } from '../errors.js';
import { GGUFFile } from '../gguf/file.js';
import { GENERATION_TASKS, isGenerationTask, taskMessage, type GenerationTask } from '../generate/tasks.js';
import { findImageTokens, imageIndices, imageTokenMask, type ImageTokenIds } from '../generate/image-tokens.js';
import { encodePng, loadPixelValues, type ImageDecodeOptions, type ImageInput } from '../image/index.js';
import { LanguageModel, type FinishReason, type GenerateOptions, type GpuOption, type KvType, type PluginOptions, type PromptPiece } from '../model/model.js';
import { validateSampling, type SamplingOptions } from '../model/sampler.js';
import { IMAGE_PLACEHOLDER, countImages, tokenizeImagePrompt } from '../prompt/multimodal.js';
import { renderChat, templateFor, type ChatMessage, type ChatTemplate } from '../prompt/template.js';
import { VisionTower, type VisionTap } from '../vision/clip.js';
import { Vqgan } from '../vqgan/decoder.js';
import { FeatureCache, pixelHash } from './image-cache.js';
import { AnswerText } from './answer-text.js';
import { expandLoadOptions } from './model-folder.js';

export interface HealthGPTLoadOptions {
  /**
   * the language model GGUF (phi3 layout, HealthGPT vocabulary), or a folder from `healthgpt
   * convert` / `pull` (its healthgpt.json names every part), or `m3` / `l14` once pulled; the
   * options below then replace the folder's parts (lib/session/model-folder.ts)
   */
  model: string;
  /** the CLIP vision tower GGUF (mmproj layout with mm.gen.*); with a folder, its vision.gguf */
  vision?: string;
  /** H-LoRA plugin files; comprehension for ask, generation for generateImage */
  plugins?: { comprehension?: string; generation?: string };
  /** the VQGAN GGUF, needed by generateImage */
  vqgan?: string;
  /** threads of each part's pool; default one per core */
  threads?: number;
  /** positions the KV cache holds; default the model's trained context */
  contextSize?: number;
  /** requests decoded together (LoadOptions.sequences: KV cache slots); default 1 */
  sequences?: number;
  /** KV cache precision (LoadOptions.kvType): 'f16' (default), 'f32' or 'q8_0' (half of f16's memory) */
  kvType?: KvType;
  /** where the language model, the vision tower and the VQGAN run (LoadOptions.gpu); default false (the CPU) */
  gpu?: GpuOption;
  /** LoadOptions.gpuLayers */
  gpuLayers?: number;
  pluginOptions?: PluginOptions;
  /** projected images kept (LRU); default 8, 0 disables the cache */
  imageCacheSize?: number;
}

/** An image: a file path or an encoded file's bytes (PNG, JPEG, WebP, TIFF, DICOM). */
export type SessionImage = ImageInput;

export interface Turn {
  role: 'user' | 'assistant';
  content: string;
  /** a user turn's images; `<image>` in content marks where each goes, else they lead the turn */
  images?: SessionImage[];
}

export interface SamplingRequest extends Omit<SamplingOptions, 'logitMask'> {
  signal?: AbortSignal;
}

export interface AskOptions extends SamplingRequest {
  question: string;
  image?: SessionImage;
  images?: SessionImage[];
  /** earlier turns of the conversation, oldest first */
  history?: Turn[];
  /** tokens to generate at most; default 512 */
  maxTokens?: number;
  /** replaces the template's system text */
  system?: string;
  /** decoding of DICOM / 16-bit inputs (window etc.) */
  imageOptions?: ImageDecodeOptions;
  /** each answer token's log-probability, before its text is yielded (LanguageModel.generate) */
  onLogprobs?: GenerateOptions['onLogprobs'];
  /** with onLogprobs: the most likely alternatives listed per token (0..20) */
  topLogprobs?: number;
  /** called once the prompt is built, with its length in positions (tokens and image patches) */
  onPrompt?: (positions: number) => void;
}

export interface AskTimings {
  /** CLIP + projector (0 when every image came from the cache) */
  encode_ms: number;
  /** from the request to the first generated token's logits (prompt evaluation) */
  prefill_ms: number;
  /** the rest of the generation */
  decode_ms: number;
}

export interface AskResult {
  /** the text as HealthGPT decodes it: decode(tokens, skip_special_tokens=True) (lib/session/answer-text.ts) */
  answer: string;
  /** generated token ids (the stop token excluded) */
  tokens: number[];
  finishReason: FinishReason;
  /** the stop token that ended the answer (finishReason 'stop'), else undefined */
  stopToken?: number;
  timings: AskTimings;
}

export interface GenerateImageOptions extends SamplingRequest {
  task: GenerationTask;
  image?: SessionImage;
  /** several inputs of one task, generated together: one result per input, in order (instead of image) */
  images?: SessionImage[];
  /** report2cxr's report text */
  report?: string;
  /** replaces the task's instruction */
  instruction?: string;
  /** called after each image token: (done, total), over all the inputs together */
  onToken?: (done: number, total: number) => void;
  imageOptions?: ImageDecodeOptions;
}

export interface GenerateImageResult {
  png: Buffer;
  indices: Int32Array;
  /** height * width * 3 bytes */
  rgb: Uint8Array;
  width: number;
  height: number;
  timings: AskTimings & { vqgan_ms: number };
}

const LOAD_KEYS = new Set(['model', 'vision', 'plugins', 'vqgan', 'threads', 'contextSize', 'sequences', 'kvType', 'gpu', 'gpuLayers', 'pluginOptions', 'imageCacheSize']);
const SAMPLING_KEYS = ['temperature', 'topK', 'topP', 'minP', 'repeatPenalty', 'repeatLastN', 'seed', 'signal'];
const ASK_KEYS = new Set([...SAMPLING_KEYS, 'question', 'image', 'images', 'history', 'maxTokens', 'system', 'imageOptions', 'onLogprobs', 'topLogprobs', 'onPrompt']);
const GEN_KEYS = new Set([...SAMPLING_KEYS, 'task', 'image', 'images', 'report', 'instruction', 'onToken', 'imageOptions']);

function invalid(message: string): HealthGPTError {
  return new HealthGPTError('ERR_INVALID_ARG', message);
}

function checkKeys(o: object, allowed: Set<string>, what: string): void {
  for (const k of Object.keys(o)) if (!allowed.has(k)) throw invalid(`${what}: unknown option "${k}" (known: ${[...allowed].join(', ')})`);
}

function checkPath(v: unknown, name: string): void {
  if (typeof v !== 'string' || v === '') throw invalid(`${name} must be a file path, got ${v === '' ? '""' : String(v)}`);
}

function checkImage(v: unknown, name: string): void {
  if (!(typeof v === 'string' && v !== '') && !(v instanceof Uint8Array)) throw invalid(`${name} must be a file path or the bytes of an image file, got ${v === '' ? '""' : String(v)}`);
}

function validateLoadOptions(o: HealthGPTLoadOptions): void {
  if (typeof o !== 'object' || o === null) throw invalid(`options must be an object, got ${String(o)}`);
  checkKeys(o, LOAD_KEYS, 'HealthGPT.load');
  checkPath(o.model, 'model');
  checkPath(o.vision, 'vision');
  if (typeof o.plugins !== 'object' || o.plugins === null || Array.isArray(o.plugins)) throw invalid(`plugins must be an object {comprehension?, generation?}, got ${String(o.plugins)}`);
  for (const [k, v] of Object.entries(o.plugins)) {
    if (k !== 'comprehension' && k !== 'generation') throw invalid(`plugins.${k}: only "comprehension" and "generation" are known`);
    checkPath(v, `plugins.${k}`);
  }
  if (o.plugins.comprehension === undefined && o.plugins.generation === undefined) throw invalid('plugins must name a comprehension or a generation plugin file (or both)');
  if (o.vqgan !== undefined) checkPath(o.vqgan, 'vqgan');
  for (const k of ['threads', 'contextSize', 'imageCacheSize'] as const) {
    const v = o[k];
    if (v !== undefined && (!Number.isInteger(v) || v < 0)) throw invalid(`${k} must be a non-negative integer, got ${String(v)}`);
  }
}

/** A plugin file's hlora.plugin, or undefined where the header does not say (the loader then reports what is wrong). */
function pluginRole(file: string): string | undefined {
  try {
    const g = GGUFFile.open(file);
    try {
      const v = g.info.metadata['hlora.plugin'];
      return typeof v === 'string' ? v : undefined;
    } finally {
      g.close();
    }
  } catch {
    return undefined;
  }
}

function validateSamplingRequest(o: SamplingRequest, what: string): void {
  if (o.signal !== undefined && !(o.signal instanceof AbortSignal)) throw invalid(`${what}: signal must be an AbortSignal, got ${String(o.signal)}`);
  validateSampling(o);
}

interface PreparedImage {
  pixels: Float32Array;
  hash: string;
}

export class HealthGPT {
  readonly model: LanguageModel;
  readonly vision: VisionTower;
  readonly vqgan: Vqgan | undefined;
  readonly template: ChatTemplate;
  private readonly cache: FeatureCache;
  private imageIds: ImageTokenIds | undefined;
  /** how many times CLIP ran (tests and diagnostics) */
  encodeCount = 0;
  private disposed = false;

  private constructor(model: LanguageModel, vision: VisionTower, vqgan: Vqgan | undefined, cacheSize: number) {
    this.model = model;
    this.vision = vision;
    this.vqgan = vqgan;
    this.cache = new FeatureCache(cacheSize);
    this.template = templateFor(model.metadata);
  }

  /** Loads the parts named by `options`, or by one folder or release name (`HealthGPT.load('healthgpt-m3/')`). */
  static async load(nameOrOptions: string | HealthGPTLoadOptions): Promise<HealthGPT> {
    const options = expandLoadOptions(nameOrOptions) as HealthGPTLoadOptions & Required<Pick<HealthGPTLoadOptions, 'vision' | 'plugins'>>;
    validateLoadOptions(options);
    const threads = options.threads ?? 0;
    const plugins: Record<string, string> = {};
    for (const [k, v] of Object.entries(options.plugins)) if (v !== undefined) plugins[k] = v;
    // a plugin file says which it is: the generation one in the comprehension place would answer nonsense
    for (const [role, file] of Object.entries(plugins)) {
      const said = pluginRole(file);
      if (said !== undefined && said !== role) throw invalid(`plugins.${role}: ${file} is the ${JSON.stringify(said)} plugin (its hlora.plugin), not the ${role} one`);
    }
    const parts: { dispose(): void }[] = [];
    try {
      const model = await LanguageModel.load(options.model, {
        threads,
        contextSize: options.contextSize,
        sequences: options.sequences,
        kvType: options.kvType,
        gpu: options.gpu,
        gpuLayers: options.gpuLayers,
        plugins,
        pluginOptions: options.pluginOptions,
      });
      parts.push(model);
      const gpu = options.gpu ?? false;
      const vision = await VisionTower.load(options.vision, { threads, gpu });
      parts.push(vision);
      const vqgan = options.vqgan === undefined ? undefined : await Vqgan.load(options.vqgan, { threads, gpu });
      if (vqgan) parts.push(vqgan);
      const nEmbd = model.info.nEmbd;
      for (const tap of ['comprehension', 'generation'] as const) {
        const file = plugins[tap];
        if (file === undefined) continue;
        // a plugin's own projector replaces the vision file's (the engine checks it takes the tower's width)
        const own = await vision.loadProjector(file, tap);
        const dim = tap === 'comprehension' ? vision.info.comprehensionProjectorDim : vision.info.generationProjectorDim;
        if (own && dim !== nEmbd) throw new HealthGPTError('ERR_INVALID_FILE', `${file}: its projector gives ${dim} values per patch, the model ${options.model} takes ${nEmbd}`);
        if (dim === 0) throw new HealthGPTError('ERR_INVALID_FILE', `neither ${file} nor ${options.vision} has a ${tap} projector`);
        if (dim !== nEmbd) throw new HealthGPTError('ERR_INVALID_FILE', `${options.vision}: the ${tap} projector gives ${dim} values per patch, the model ${options.model} takes ${nEmbd}`);
      }
      if (vqgan && plugins.generation !== undefined) {
        const ids = findImageTokens(model.tokenizer.vocab.tokenToId);
        if (ids.codebookSize !== vqgan.info.nEmbed)
          throw new HealthGPTError('ERR_INVALID_FILE', `${options.model} has ${ids.codebookSize} <idx_k> tokens but ${options.vqgan}'s codebook has ${vqgan.info.nEmbed} entries`);
      }
      return new HealthGPT(model, vision, vqgan, options.imageCacheSize ?? 8);
    } catch (err) {
      for (const p of parts.reverse()) p.dispose();
      throw err;
    }
  }

  private live(): void {
    if (this.disposed) throw new HealthGPTError('ERR_DISPOSED', 'the HealthGPT session has been disposed');
  }

  private needPlugin(name: VisionTap): void {
    if (!this.model.plugins.includes(name)) throw new HealthGPTError('ERR_NO_PLUGIN', `no ${name} plugin was loaded (HealthGPT.load plugins.${name})`);
  }

  private async prepare(image: SessionImage, options: ImageDecodeOptions | undefined): Promise<PreparedImage> {
    const px = await loadPixelValues(image, { ...options, size: this.vision.info.imageSize });
    return { pixels: px.data, hash: pixelHash(px.data) };
  }

  /** Projected features of an image at a tap, from the cache or CLIP + projector. */
  private async features(img: PreparedImage, tap: VisionTap, signal: AbortSignal | undefined): Promise<{ rows: Float32Array; ms: number }> {
    const key = `${img.hash}:${tap}`;
    const hit = this.cache.get(key);
    if (hit) return { rows: hit, ms: 0 };
    if (signal?.aborted) throw new HealthGPTError('ABORT_ERR', 'the operation was aborted');
    const t0 = performance.now();
    const rows = await this.vision.encodeProject(img.pixels, tap);
    this.live();
    this.encodeCount++;
    this.cache.set(key, rows);
    return { rows, ms: performance.now() - t0 };
  }

  /** Token runs and image features for a rendered prompt whose `<image>` slots take `images` in order. */
  private async pieces(text: string, images: PreparedImage[], tap: VisionTap, signal: AbortSignal | undefined): Promise<{ prompt: PromptPiece[]; tokenCount: number; encodeMs: number }> {
    const parts = tokenizeImagePrompt(this.model.tokenizer, text);
    const prompt: PromptPiece[] = [];
    let tokenCount = 0;
    let encodeMs = 0;
    for (const p of parts) {
      if (p.kind === 'tokens') {
        for (const t of p.tokens) prompt.push(t); // a spread of a long prompt overflows the call stack
        tokenCount += p.tokens.length;
      } else {
        const f = await this.features(images[p.index]!, tap, signal);
        encodeMs += f.ms;
        prompt.push(f.rows);
      }
    }
    return { prompt, tokenCount, encodeMs };
  }

  /** A user turn's text with one `<image>` per image (leading the turn when the text has none). */
  private static placeImages(content: string, n: number, what: string): string {
    const marked = countImages(content);
    if (marked === 0) return `${`${IMAGE_PLACEHOLDER}\n`.repeat(n)}${content}`;
    if (marked !== n) throw invalid(`${what} has ${marked} <image> marks but ${n} image(s)`);
    return content;
  }

  private async conversation(o: AskOptions): Promise<{ messages: ChatMessage[]; images: PreparedImage[] }> {
    const messages: ChatMessage[] = [];
    const images: PreparedImage[] = [];
    const history = o.history ?? [];
    if (!Array.isArray(history)) throw invalid(`history must be an array of turns, got ${String(history)}`);
    for (const [i, t] of history.entries()) {
      if (typeof t !== 'object' || t === null) throw invalid(`history[${i}] must be a turn {role, content, images?}, got ${String(t)}`);
      if (t.role !== 'user' && t.role !== 'assistant') throw invalid(`history[${i}].role must be "user" or "assistant", got ${String(t.role)}`);
      if (typeof t.content !== 'string') throw invalid(`history[${i}].content must be a string, got ${typeof t.content}`);
      const imgs = t.images ?? [];
      if (!Array.isArray(imgs)) throw invalid(`history[${i}].images must be an array, got ${String(imgs)}`);
      if (t.role === 'assistant' && imgs.length) throw invalid(`history[${i}]: an assistant turn has no images`);
      if (t.role === 'assistant' && countImages(t.content)) throw invalid(`history[${i}]: an assistant turn has no <image> marks`);
      imgs.forEach((im, j) => checkImage(im, `history[${i}].images[${j}]`));
      for (const im of imgs) images.push(await this.prepare(im, o.imageOptions));
      messages.push({ role: t.role, content: t.role === 'user' ? HealthGPT.placeImages(t.content, imgs.length, `history[${i}].content`) : t.content });
    }
    const now = [...(o.image !== undefined ? [o.image] : []), ...(o.images ?? [])];
    for (const im of now) images.push(await this.prepare(im, o.imageOptions));
    messages.push({ role: 'user', content: HealthGPT.placeImages(o.question, now.length, 'question') });
    return { messages, images };
  }

  private validateAsk(o: AskOptions): void {
    if (typeof o !== 'object' || o === null) throw invalid(`ask options must be an object, got ${String(o)}`);
    checkKeys(o, ASK_KEYS, 'ask');
    if (typeof o.question !== 'string' || o.question.trim() === '') throw invalid(`question must be a non-empty string, got ${JSON.stringify(o.question)}`);
    if (o.image !== undefined) checkImage(o.image, 'image');
    if (o.images !== undefined) {
      if (!Array.isArray(o.images)) throw invalid(`images must be an array, got ${String(o.images)}`);
      o.images.forEach((im, i) => checkImage(im, `images[${i}]`));
    }
    if (o.maxTokens !== undefined && (!Number.isInteger(o.maxTokens) || o.maxTokens < 1)) throw invalid(`maxTokens must be a positive integer, got ${String(o.maxTokens)}`);
    if (o.system !== undefined && typeof o.system !== 'string') throw invalid(`system must be a string, got ${typeof o.system}`);
    if (o.onPrompt !== undefined && typeof o.onPrompt !== 'function') throw invalid(`onPrompt must be a function, got ${typeof o.onPrompt}`);
    validateSamplingRequest(o, 'ask');
  }

  /**
   * Where the answer ends: the ids the converted model's generation config lists (as
   * transformers' generate() stops; Phi-3: <|endoftext|>, <|assistant|>, <|end|>; Phi-4:
   * <|im_end|>), else, for a file converted without them, its end-of-generation tokens.
   */
  private stopTokens(): number[] {
    return this.model.defaultStopTokens();
  }

  /**
   * The prompt ask() feeds the model: token ids, and the projected features (Float32Array,
   * nPatches rows) where each `<image>` stood; encodeMs is the CLIP + projector time.
   */
  async askPrompt(options: AskOptions): Promise<{ prompt: PromptPiece[]; encodeMs: number }> {
    this.live();
    this.validateAsk(options);
    const { messages, images } = await this.conversation(options);
    const text = renderChat(this.template, messages, options.system);
    const { prompt, encodeMs } = await this.pieces(text, images, 'comprehension', options.signal);
    return { prompt, encodeMs };
  }

  /** Streams the answer to a question about zero or more images; returns why it ended. */
  ask(options: AskOptions): AsyncGenerator<string, FinishReason, void> {
    return this.askRun(options, { tokens: [], timings: { encode_ms: 0, prefill_ms: 0, decode_ms: 0 } });
  }

  /**
   * ask() with its tokens and timings written into `out`, an object of this request alone
   * (concurrent requests on one session never read each other's).
   */
  private async *askRun(options: AskOptions, out: AskRecord): AsyncGenerator<string, FinishReason, void> {
    this.live();
    this.validateAsk(options);
    this.needPlugin('comprehension');
    const { prompt, encodeMs } = await this.askPrompt(options);
    this.live();
    options.onPrompt?.(prompt.reduce<number>((n, p) => n + (typeof p === 'number' ? 1 : p.length / this.model.info.nEmbd), 0));
    const tPrefill = performance.now();
    const { timings, tokens } = out;
    timings.encode_ms = encodeMs;
    let tFirst: number | undefined;
    const decoder = new AnswerText(this.model.tokenizer);
    const gen = this.model.generate(prompt, {
      temperature: 0,
      ...pickSampling(options),
      maxTokens: options.maxTokens ?? 512,
      stopTokens: this.stopTokens(),
      plugin: 'comprehension',
      signal: options.signal,
      onLogprobs: options.onLogprobs,
      topLogprobs: options.topLogprobs,
      onStop: (t) => (out.stopToken = t),
    });
    try {
      for (;;) {
        const step = await gen.next();
        if (tFirst === undefined) {
          tFirst = performance.now();
          timings.prefill_ms = tFirst - tPrefill;
        }
        if (step.done) {
          const tail = decoder.flush();
          if (tail) yield tail;
          return step.value;
        }
        tokens.push(step.value);
        const piece = decoder.push(step.value);
        if (piece) yield piece;
      }
    } finally {
      timings.decode_ms = tFirst === undefined ? 0 : performance.now() - tFirst;
      await gen.return('abort');
    }
  }

  /** ask() gathered: the whole answer, its tokens and timings. */
  async answer(options: AskOptions): Promise<AskResult> {
    const out: AskRecord = { tokens: [], timings: { encode_ms: 0, prefill_ms: 0, decode_ms: 0 } };
    let answer = '';
    const gen = this.askRun(options, out);
    let finishReason: FinishReason = 'length';
    for (;;) {
      const s = await gen.next();
      if (s.done) {
        finishReason = s.value;
        break;
      }
      answer += s.value;
    }
    return { answer, tokens: out.tokens, finishReason, stopToken: out.stopToken, timings: out.timings };
  }

  private validateGenerate(o: GenerateImageOptions): void {
    if (typeof o !== 'object' || o === null) throw invalid(`generateImage options must be an object, got ${String(o)}`);
    checkKeys(o, GEN_KEYS, 'generateImage');
    if (!isGenerationTask(o.task)) throw invalid(`task must be one of ${Object.keys(GENERATION_TASKS).join(', ')}, got ${String(o.task)}`);
    if (o.image !== undefined) checkImage(o.image, 'image');
    if (o.images !== undefined) {
      if (!Array.isArray(o.images) || o.images.length === 0) throw invalid(`images must be a non-empty array, got ${Array.isArray(o.images) ? '[]' : String(o.images)}`);
      if (o.image !== undefined) throw invalid('give image or images, not both');
      o.images.forEach((im, i) => checkImage(im, `images[${i}]`));
    }
    if (o.onToken !== undefined && typeof o.onToken !== 'function') throw invalid(`onToken must be a function, got ${typeof o.onToken}`);
    validateSamplingRequest(o, 'generateImage');
  }

  /**
   * Generates an image for a task (greedy unless sampling options say otherwise). With
   * `images`, one per input, generated together (the language model batches them when it
   * holds several sequences; the VQGAN decodes each as its tokens are done); the first failure
   * stops the others.
   */
  generateImage(options: GenerateImageOptions & { images: SessionImage[] }): Promise<GenerateImageResult[]>;
  generateImage(options: GenerateImageOptions): Promise<GenerateImageResult>;
  async generateImage(options: GenerateImageOptions): Promise<GenerateImageResult | GenerateImageResult[]> {
    this.live();
    this.validateGenerate(options);
    const inputs = options.images ?? [options.image];
    const message = taskMessage(options.task, { hasImage: inputs[0] !== undefined, report: options.report, instruction: options.instruction });
    this.needPlugin('generation');
    const vqgan = this.vqgan;
    if (!vqgan) throw new HealthGPTError('ERR_NO_VQGAN', 'generateImage needs a VQGAN file (HealthGPT.load vqgan)');
    const count = vqgan.info.latent * vqgan.info.latent;
    // one signal for all: the caller's abort, or the first failure
    const stop = new AbortController();
    const onAbort = (): void => stop.abort(options.signal?.reason);
    if (options.signal?.aborted) onAbort();
    options.signal?.addEventListener('abort', onAbort, { once: true });
    let done = 0;
    const onToken = options.onToken && ((): void => options.onToken?.(++done, count * inputs.length));
    try {
      const results = await Promise.all(
        inputs.map((image) =>
          this.generateOne(options, message, image, vqgan, stop.signal, onToken).catch((err: unknown) => {
            stop.abort(err);
            throw err;
          }),
        ),
      );
      return options.images ? results : results[0]!;
    } finally {
      options.signal?.removeEventListener('abort', onAbort);
    }
  }

  /** One input of generateImage: its prompt, its image tokens, its VQGAN decode. */
  private async generateOne(
    options: GenerateImageOptions,
    message: string,
    image: SessionImage | undefined,
    vqgan: Vqgan,
    signal: AbortSignal,
    onToken: (() => void) | undefined,
  ): Promise<GenerateImageResult> {
    const ids = (this.imageIds ??= findImageTokens(this.model.tokenizer.vocab.tokenToId));
    const count = vqgan.info.latent * vqgan.info.latent;
    const images = image !== undefined ? [await this.prepare(image, options.imageOptions)] : [];
    const text = renderChat(this.template, [{ role: 'user', content: message }]) + '<start_index>';
    const { prompt, tokenCount, encodeMs } = await this.pieces(text, images, 'generation', signal);
    this.live();
    const last = prompt[prompt.length - 1];
    if (last !== ids.start) throw new HealthGPTError('ERR_VOCAB', `the prompt does not end with <start_index> (id ${ids.start}): the tokenizer split it`);
    // the whole image must fit, refused now rather than after minutes of decoding a truncated
    // one: every image token is fed back (<end_index> is sampled after the last, never fed)
    const { nCtx, nEmbd } = this.model.info;
    const positions = prompt.reduce<number>((n, p) => n + (typeof p === 'number' ? 1 : p.length / nEmbd), 0);
    if (positions + count > nCtx) throw new HealthGPTError('ERR_CONTEXT', `the prompt takes ${positions} positions and the image's ${count} tokens ${count} more, but the context holds ${nCtx}`);
    const tPrefill = performance.now();
    let tFirst = tPrefill;
    const tokens: number[] = [];
    const gen = this.model.generate(prompt, {
      temperature: 0,
      ...pickSampling(options),
      maxTokens: count + 1,
      stopTokens: [ids.end],
      plugin: 'generation',
      signal,
      logitMask: imageTokenMask(ids, tokenCount, count),
    });
    for await (const t of gen) {
      if (tokens.length === 0) tFirst = performance.now();
      tokens.push(t);
      if (tokens.length <= count) onToken?.();
    }
    this.live();
    const tDecoded = performance.now();
    const indices = imageIndices(tokens, ids, count);
    const out = await vqgan.decode(indices);
    const tVq = performance.now();
    const png = await encodePng({ width: out.width, height: out.height, data: out.rgb });
    return {
      png,
      indices,
      rgb: out.rgb,
      width: out.width,
      height: out.height,
      timings: { encode_ms: encodeMs, prefill_ms: tFirst - tPrefill, decode_ms: tDecoded - tFirst, vqgan_ms: tVq - tDecoded },
    };
  }

  /** Frees every part; later calls throw ERR_DISPOSED. */
  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.cache.clear();
    this.model.dispose();
    this.vision.dispose();
    this.vqgan?.dispose();
  }
}

/** What one ask() request gathers besides its text (its own object, never the session's). */
interface AskRecord {
  tokens: number[];
  timings: AskTimings;
  /** the stop token that ended the answer */
  stopToken?: number;
}

function pickSampling(o: SamplingRequest): SamplingOptions {
  const out: Record<string, unknown> = {};
  for (const k of SAMPLING_KEYS) if (k !== 'signal' && (o as Record<string, unknown>)[k] !== undefined) out[k] = (o as Record<string, unknown>)[k];
  return out as SamplingOptions;
}
