/**
 * A language model loaded from GGUF: the native decoder (weights mapped, KV cache slots,
 * thread pool) with prompt-prefix reuse, sampling and streaming on top. Concurrent requests
 * run together, one per sequence (LoadOptions.sequences), batched into one pass over the
 * weights per token by the scheduler (lib/model/scheduler.ts); more wait for a free slot, in
 * arrival order. Native work runs off the JS thread; an AbortSignal stops a generation within
 * one token and frees its slot.
 *
 * A generation is a job of the scheduler: it samples each of its logits rows to its end (stop
 * token, maxTokens, the context, an abort) into its own TokenBuffer, whether or not its caller
 * reads on. Its iterator reads that buffer. So an iterator dropped mid-way (never finished, no
 * return()) costs at most its remaining tokens, never the model; return() stops the job at its
 * next token. Everything a request returns lives in that request's objects; the model itself
 * keeps only the KV cache slots (and the positions each holds, for prefix reuse).
 */
import { HealthGPTError, wrapNative } from '../errors.js';
import { GGUFFile, type GGUFInfo } from '../gguf/file.js';
import { gpuId, MAX_THREADS, native, validateGpu, type GpuOption, type NativeModel } from '../native.js';
import { renderChat, templateFor, type ChatMessage, type ChatTemplate } from '../prompt/template.js';
import { Tokenizer, type EncodeOptions } from '../tokenizer/index.js';
import { validateTopLogprobs, type TokenLogprobs } from './logprobs.js';
import { Mutex } from './queue.js';
import { abortError, Evaluation, Generation } from './jobs.js';
import { Scheduler, type Position } from './scheduler.js';
import { Sampler, validateSampling, type SamplingOptions } from './sampler.js';
import { StopText } from './stop-text.js';

export interface PluginOptions {
  /**
   * Re-encode the plugin's adapters at load. 'q8_0' reads about half the bytes of f16 per
   * token (on a Phi-3-mini Q4_0 base: decode +5% for comprehension and +20% for generation,
   * against +13% and +47% with f16). Default: 'q8_0' over a quantized base (whose every
   * product already rounds its activations to 8 bits), else as the file holds them.
   */
  adapterType?: 'f32' | 'f16' | 'bf16' | 'q8_0';
  /** run the router and lora_A as one pass over the input (default true; false for benchmarks) */
  fused?: boolean;
}

export type { GpuOption };

export interface LoadOptions {
  /** positions the KV cache holds; default: the model's trained context */
  contextSize?: number;
  /**
   * requests decoded together (KV cache slots, each of contextSize positions); more wait for
   * a free one. Default 1. A slot's memory is committed as it is written: an unused slot
   * costs address space only, a used one keeps its cache for prefix reuse.
   */
  sequences?: number;
  /** default: one per core */
  threads?: number;
  /**
   * KV cache precision; default f16. 'q8_0' holds keys and values in 8 bits (1.06 bytes a value
   * against f16's 2): half the memory a slot takes and half the bytes a long context's attention
   * reads, with the query rounded to 8 bits for q.K as llama.cpp's q8_0 cache does (a small
   * change in the logits, not bit-equal to f16). Head sizes that are multiples of 32 only
   * (Phi-3's 96, Phi-4's 128); CPU only (with `gpu: 'auto'` a q8_0 cache keeps the model on
   * the CPU).
   */
  kvType?: KvType;
  /** regroup q4_0 weights at load for the matmul kernels (default true: faster; the weights move from the file's mapping into the model's memory). false reads every weight in place, for machines that cannot hold the model in memory. */
  repack?: boolean;
  /**
   * Where the forward pass runs: 'auto' uses CUDA when the engine was built with it, a device
   * is present and the model fits, else the CPU (`backend` says why); 'cuda' fails with the
   * reason when CUDA cannot be used; false (the default) keeps the CPU. The default stays false
   * until the CUDA kernels have been checked on a GPU (README, "CUDA").
   */
  gpu?: GpuOption;
  /** with a GPU: run only the first n layers there, the rest and the output head on the CPU (for cards that cannot hold the model); default all; 0: the CPU alone */
  gpuLayers?: number;
  /** H-LoRA plugin files to load with the model, by the name requests will use, e.g. {comprehension: 'com.gguf', generation: 'gen.gguf'} */
  plugins?: Record<string, string>;
  /** how the plugins above are loaded */
  pluginOptions?: PluginOptions;
}

export interface RequestOptions {
  /** the H-LoRA plugin this request runs with (a name given to load or loadPlugin); default: the base model alone */
  plugin?: string;
}

export interface GenerateOptions extends SamplingOptions, RequestOptions {
  /** tokens to generate at most; default 256 */
  maxTokens?: number;
  /** stop (without emitting it) when one of these is sampled; default: the model's EOS/EOT tokens */
  stopTokens?: number[];
  /** called with the stop token that ended the generation (it is not yielded) */
  onStop?: (token: number) => void;
  signal?: AbortSignal;
  /** called with each generated token's log-probability (lib/model/logprobs.ts) just before it is yielded */
  onLogprobs?: (entry: TokenLogprobs) => void;
  /** with onLogprobs: how many most likely alternatives each entry lists (0..20); default 0 */
  topLogprobs?: number;
}

export interface CompleteOptions extends GenerateOptions {
  /** stop when the text contains one of these (it is not emitted) */
  stop?: string[];
  /** recognise special-token text such as <|user|> in the prompt; default false */
  special?: boolean;
  /** SentencePiece space-prefix placement; default llama.cpp's (chat uses the HF slow tokenizer's) */
  prefixStyle?: EncodeOptions['prefixStyle'];
}

export interface ChatOptions extends CompleteOptions {
  /** replaces the template's system text */
  system?: string;
  /** default: the one the model's vocabulary calls for (phi3_instruct or phi4_instruct) */
  template?: ChatTemplate;
}

export type FinishReason = 'stop' | 'length' | 'context' | 'abort';

/**
 * One piece of a prompt: a token id, or a Float32Array of one or more input embeddings (nEmbd
 * floats each, row after row) that enter the model in place of tokens, e.g. projected image
 * features spliced where `<image>` stood.
 */
export type PromptPiece = number | Float32Array;

function validateLoad(o: LoadOptions): void {
  for (const k of ['contextSize', 'threads', 'gpuLayers'] as const) {
    const v = o[k];
    const max = k === 'threads' ? MAX_THREADS : 0x7fffffff;
    if (v !== undefined && (!Number.isInteger(v) || v < 0 || v > max)) throw new HealthGPTError('ERR_INVALID_ARG', `${k} must be an integer in 0..${max}, got ${String(v)}`);
  }
  if (o.sequences !== undefined && (!Number.isInteger(o.sequences) || o.sequences < 1 || o.sequences > MAX_SEQUENCES))
    throw new HealthGPTError('ERR_INVALID_ARG', `sequences must be an integer in 1..${MAX_SEQUENCES}, got ${String(o.sequences)}`);
  if (o.kvType !== undefined && !Object.hasOwn(KV_TYPES, o.kvType)) throw new HealthGPTError('ERR_INVALID_ARG', `kvType must be one of ${Object.keys(KV_TYPES).join(', ')}, got ${String(o.kvType)}`);
  if (o.repack !== undefined && typeof o.repack !== 'boolean') throw new HealthGPTError('ERR_INVALID_ARG', `repack must be a boolean, got ${String(o.repack)}`);
  validateGpu(o.gpu);
  if (o.gpu === false && o.gpuLayers !== undefined) throw new HealthGPTError('ERR_INVALID_ARG', `gpuLayers (${o.gpuLayers}) needs a GPU, and gpu is false (off)`);
  if (o.plugins !== undefined) {
    if (typeof o.plugins !== 'object' || o.plugins === null || Array.isArray(o.plugins))
      throw new HealthGPTError('ERR_INVALID_ARG', `plugins must be an object of name: path, got ${String(o.plugins)}`);
    for (const [name, path] of Object.entries(o.plugins)) {
      validatePluginName(name);
      if (typeof path !== 'string' || path === '') throw new HealthGPTError('ERR_INVALID_ARG', `plugins.${name} must be a file path, got ${String(path)}`);
    }
  }
  if (o.pluginOptions !== undefined) validatePluginOptions(o.pluginOptions, 'pluginOptions.');
}

/** Slots a model holds at most: beyond this a step's rows stop sharing the weight reads usefully. */
export const MAX_SEQUENCES = 64;

function validatePluginName(name: unknown): asserts name is string {
  if (typeof name !== 'string' || name === '') throw new HealthGPTError('ERR_INVALID_ARG', `a plugin name must be a non-empty string, got ${String(name)}`);
}

/** KV cache types by name, as ggml's type ids */
const KV_TYPES = { f16: 1, f32: 0, q8_0: 8 } as const;
export type KvType = keyof typeof KV_TYPES;

const ADAPTER_TYPES = { f32: 0, f16: 1, bf16: 30, q8_0: 8 } as const;
/** The native adapter type: a ggml id, or -1 for the file's own. */
function adapterTypeId(t: keyof typeof ADAPTER_TYPES | undefined): number {
  return t === undefined ? -1 : ADAPTER_TYPES[t];
}

function validatePluginOptions(o: PluginOptions, prefix = ''): void {
  if (typeof o !== 'object' || o === null) throw new HealthGPTError('ERR_INVALID_ARG', `${prefix || 'plugin options'} must be an object, got ${String(o)}`);
  if (o.adapterType !== undefined && !Object.hasOwn(ADAPTER_TYPES, o.adapterType))
    throw new HealthGPTError(
      'ERR_INVALID_ARG',
      `${prefix}adapterType must be one of ${Object.keys(ADAPTER_TYPES)
        .map((k) => `"${k}"`)
        .join(', ')}, got ${String(o.adapterType)}`,
    );
  if (o.fused !== undefined && typeof o.fused !== 'boolean') throw new HealthGPTError('ERR_INVALID_ARG', `${prefix}fused must be a boolean, got ${String(o.fused)}`);
}

export { abortError };

export class LanguageModel {
  readonly path: string;
  /** GGUF metadata of the model file. */
  readonly metadata: GGUFInfo['metadata'];
  private handle: NativeModel | undefined;
  /** held by each batch step and by plugin loading */
  private readonly lock = new Mutex();
  private readonly scheduler: Scheduler;
  /** plugin name -> native id */
  private readonly pluginIds = new Map<string, number>();
  private tok: Tokenizer | undefined;
  private eog: number[] | undefined;

  /** The base's linears are quantized (not f32/f16/bf16): plugins default to q8_0 adapters. */
  private readonly baseQuantized: boolean;

  private constructor(path: string, handle: NativeModel, metadata: GGUFInfo['metadata'], baseQuantized: boolean) {
    this.path = path;
    this.handle = handle;
    this.metadata = metadata;
    this.baseQuantized = baseQuantized;
    const { nSeq, nVocab } = handle.info();
    this.scheduler = new Scheduler(nSeq, nVocab, () => this.live(), this.lock);
  }

  static async load(path: string, options: LoadOptions = {}): Promise<LanguageModel> {
    validateLoad(options);
    const file = GGUFFile.open(path); // the reader's checks and messages, and the metadata
    const metadata = file.info.metadata;
    const qkv = file.info.tensors.find((t) => t.name === 'blk.0.attn_qkv.weight');
    const baseQuantized = qkv !== undefined && !['f32', 'f16', 'bf16'].includes(qkv.type);
    file.close();
    try {
      const handle = await native().Model.load(path, {
        contextSize: options.contextSize,
        sequences: options.sequences ?? 1,
        threads: options.threads,
        kvType: KV_TYPES[options.kvType ?? 'f16'],
        repack: options.repack === false ? 0 : 1,
        gpu: gpuId(options.gpu),
        gpuLayers: options.gpuLayers ?? -1,
      });
      const model = new LanguageModel(path, handle, metadata, baseQuantized);
      try {
        for (const [name, file] of Object.entries(options.plugins ?? {})) await model.loadPlugin(name, file, options.pluginOptions);
      } catch (err) {
        model.dispose();
        throw err;
      }
      return model;
    } catch (err) {
      throw wrapNative(err, 'load');
    }
  }

  /**
   * Loads an H-LoRA plugin file (README.md, "H-LoRA plugin files") over this model's weights,
   * under `name`: requests pick it with the option `plugin: name`. The base weights are
   * shared; switching plugins between requests costs no reload.
   */
  async loadPlugin(name: string, path: string, options: PluginOptions = {}): Promise<void> {
    validatePluginName(name);
    if (typeof path !== 'string' || path === '') throw new HealthGPTError('ERR_INVALID_ARG', `path must be a file path, got ${String(path)}`);
    validatePluginOptions(options);
    if (this.pluginIds.has(name)) throw new HealthGPTError('ERR_INVALID_ARG', `a plugin named "${name}" is loaded already`);
    const release = await this.lock.acquire();
    try {
      const h = this.live();
      const { id } = await h.loadPlugin(path, {
        adapterType: adapterTypeId(options.adapterType ?? (this.baseQuantized ? 'q8_0' : undefined)),
        fused: options.fused ?? true,
      });
      this.pluginIds.set(name, id);
    } catch (err) {
      throw wrapNative(err, `plugin ${name}`);
    } finally {
      release();
    }
  }

  /** Names of the loaded plugins, in load order. */
  get plugins(): string[] {
    return [...this.pluginIds.keys()];
  }

  /** The native id of a request's plugin option: -1 for none. */
  private pluginId(plugin: unknown): number {
    if (plugin === undefined) return -1;
    const id = typeof plugin === 'string' ? this.pluginIds.get(plugin) : undefined;
    if (id === undefined) {
      const known = this.plugins.map((n) => `"${n}"`).join(', ');
      throw new HealthGPTError('ERR_INVALID_ARG', `plugin must be ${known ? `one of ${known}` : 'omitted (no plugin is loaded)'}, got ${typeof plugin === 'string' ? `"${plugin}"` : String(plugin)}`);
    }
    return id;
  }

  private live(): NativeModel {
    if (!this.handle) throw new HealthGPTError('ERR_DISPOSED', 'the model has been disposed');
    return this.handle;
  }

  /** sizes fixed at load (nSeq: LoadOptions.sequences), and where the forward pass runs (LoadOptions.gpu) */
  get info(): { nVocab: number; nEmbd: number; nCtx: number; nSeq: number; backend: string } {
    return this.live().info();
  }

  /** Requests decoding now (at most info.nSeq) and waiting for a slot. */
  get load(): { running: number; waiting: number } {
    return this.scheduler.load;
  }

  /** Positions run through the model so far (tests and diagnostics: prefix reuse shows as fewer). */
  get evaluated(): number {
    return this.scheduler.evaluated;
  }

  /** The model's tokenizer, built from the GGUF vocabulary; ERR_NO_TOKENIZER when the file has none. */
  get tokenizer(): Tokenizer {
    if (!this.tok) {
      if (typeof this.metadata['tokenizer.ggml.model'] !== 'string')
        throw new HealthGPTError('ERR_NO_TOKENIZER', `${this.path} has no tokenizer (no tokenizer.ggml.model): give token ids instead of text`);
      this.tok = Tokenizer.fromGGUF({ metadata: this.metadata });
    }
    return this.tok;
  }

  tokenize(text: string, options?: EncodeOptions): number[] {
    return this.tokenizer.encode(text, options);
  }

  detokenize(ids: readonly number[]): string {
    return this.tokenizer.decode(ids);
  }

  /**
   * Tokens that end a turn: the ids the model's generation config lists (recorded by the
   * converter), else the vocabulary's end-of-generation tokens, else EOS/EOT ids.
   */
  defaultStopTokens(): number[] {
    if (this.eog) return this.eog;
    const out: number[] = [];
    if (typeof this.metadata['tokenizer.ggml.model'] === 'string') {
      const t = this.tokenizer;
      if (t.eosTokenIds) out.push(...t.eosTokenIds);
      else for (let id = 0; id < t.size; id++) if (t.isEog(id)) out.push(id);
    } else {
      for (const k of ['tokenizer.ggml.eos_token_id', 'tokenizer.ggml.eot_token_id']) {
        const v = this.metadata[k];
        if (typeof v === 'number' && !out.includes(v)) out.push(v);
      }
    }
    return (this.eog = out);
  }

  /** Checks a prompt and splits its embedding arrays into one position per row. */
  private positions(prompt: readonly PromptPiece[]): Position[] {
    if (!Array.isArray(prompt) || prompt.length === 0) throw new HealthGPTError('ERR_INVALID_ARG', 'tokens must be a non-empty array of token ids (or Float32Array embeddings)');
    const { nVocab, nCtx, nEmbd } = this.live().info();
    const out: Position[] = [];
    prompt.forEach((t, i) => {
      if (t instanceof Float32Array) {
        if (t.length === 0 || t.length % nEmbd !== 0) throw new HealthGPTError('ERR_INVALID_ARG', `embeddings at index ${i} hold ${t.length} floats, not a whole number of rows of ${nEmbd}`);
        const bad = t.findIndex((v) => !Number.isFinite(v));
        if (bad >= 0) throw new HealthGPTError('ERR_INVALID_ARG', `embeddings at index ${i} have a non-finite value at ${bad}`);
        // one copy the caller cannot change, its rows views of it: a step hands a run of them
        // to the engine as one view (embeddingRows), not copied again
        const rows = t.slice();
        for (let r = 0; r < rows.length; r += nEmbd) out.push(rows.subarray(r, r + nEmbd));
        return;
      }
      if (!Number.isInteger(t) || t < 0 || t >= nVocab) throw new HealthGPTError('ERR_INVALID_ARG', `token ${String(t)} at index ${i} is not in the vocabulary (0..${nVocab - 1})`);
      out.push(t);
    });
    if (out.length > nCtx) throw new HealthGPTError('ERR_CONTEXT', `the prompt has ${out.length} tokens but the context holds ${nCtx}`);
    return out;
  }

  /** Next-token logits after each position of `prompt` (n x nVocab, row after row). */
  async evaluate(prompt: readonly PromptPiece[], options: RequestOptions = {}): Promise<Float32Array> {
    const job = new Evaluation(this.positions(prompt), this.pluginId(options.plugin), this.live().info().nVocab);
    this.scheduler.submit(job);
    return job.done;
  }

  /**
   * Streams generated token ids after the prompt (token ids and embeddings); returns why it
   * ended. The tokens come from a scheduler job that does not wait for this iterator (above).
   */
  async *generate(prompt: readonly PromptPiece[], options: GenerateOptions = {}): AsyncGenerator<number, FinishReason, void> {
    validateSampling(options);
    const maxTokens = options.maxTokens ?? 256;
    if (!Number.isInteger(maxTokens) || maxTokens < 0) throw new HealthGPTError('ERR_INVALID_ARG', `maxTokens must be a non-negative integer, got ${String(maxTokens)}`);
    if (options.signal !== undefined && !(options.signal instanceof AbortSignal)) throw new HealthGPTError('ERR_INVALID_ARG', 'signal must be an AbortSignal');
    if (options.onLogprobs !== undefined && typeof options.onLogprobs !== 'function') throw new HealthGPTError('ERR_INVALID_ARG', `onLogprobs must be a function, got ${typeof options.onLogprobs}`);
    validateTopLogprobs(options.topLogprobs);
    const { signal } = options;
    const request = new Generation({
      positions: this.positions(prompt),
      plugin: this.pluginId(options.plugin),
      stop: new Set(options.stopTokens ?? this.defaultStopTokens()),
      sampler: new Sampler(options),
      maxTokens,
      signal,
      topLogprobs: options.onLogprobs ? (options.topLogprobs ?? 0) : undefined,
      nCtx: this.live().info().nCtx,
    });
    const { out } = request;
    // an abort ends the request at once: it leaves the queue, or its slot at the next step
    const onAbort = (): void => {
      this.scheduler.withdraw(request);
      request.active();
    };
    signal?.addEventListener('abort', onAbort, { once: true });
    this.scheduler.submit(request);
    try {
      for (;;) {
        if (signal?.aborted) throw abortError(signal);
        const step = await out.take();
        if (step.done) {
          if (request.stopToken !== undefined) options.onStop?.(request.stopToken);
          return step.value;
        }
        // called by the reader, just before the token it describes
        if (step.value.logprobs) options.onLogprobs?.(step.value.logprobs);
        yield step.value.token;
      }
    } finally {
      out.cancelled = true;
      signal?.removeEventListener('abort', onAbort);
    }
  }

  /**
   * Streams the text generated after `prompt`. Characters split across tokens are held back
   * until complete; text that may be the start of a stop string is held back until it is not.
   */
  async *complete(prompt: string, options: CompleteOptions = {}): AsyncGenerator<string, FinishReason, void> {
    const stops = options.stop ?? [];
    if (!Array.isArray(stops) || stops.some((s) => typeof s !== 'string' || s === '')) throw new HealthGPTError('ERR_INVALID_ARG', 'stop must be an array of non-empty strings');
    const tokens = this.tokenize(prompt, { special: options.special ?? false, prefixStyle: options.prefixStyle });
    const decoder = this.tokenizer.streamDecoder();
    const filter = new StopText(stops);
    const gen = this.generate(tokens, options);
    for (;;) {
      const step = await gen.next();
      if (step.done) {
        const rest = filter.flush(decoder.flush());
        if (rest) yield rest;
        return step.value;
      }
      const out = filter.push(decoder.push(step.value));
      if (out.text) yield out.text;
      if (out.stopped) {
        await gen.return('stop');
        return 'stop';
      }
    }
  }

  /** Streams the assistant's reply to a conversation, in the model's chat template. */
  async *chat(messages: readonly ChatMessage[], options: ChatOptions = {}): AsyncGenerator<string, FinishReason, void> {
    const template = options.template ?? templateFor(this.metadata);
    const prompt = renderChat(template, messages, options.system);
    // HealthGPT was trained with the Hugging Face slow tokenizer: its space rule around specials
    return yield* this.complete(prompt, { prefixStyle: 'hf-slow', ...options, special: true });
  }

  /** Frees the native model (weights mapping, KV cache, threads) off the JS thread, once a running job ends. Later calls throw ERR_DISPOSED. */
  dispose(): void {
    this.handle?.dispose();
    this.handle = undefined;
    this.scheduler.clear(new HealthGPTError('ERR_DISPOSED', 'the model has been disposed'));
    this.pluginIds.clear();
  }
}
