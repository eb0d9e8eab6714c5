/**
 * An OpenAI chat completion request as the session's ask(): system / developer messages
 * become the system text, user and assistant messages the conversation, the last user message
 * the question; `image_url` parts become the turn's images, each at its place in the text.
 * Unknown fields are ignored; fields that would change the answer and are not supported
 * (n > 1, tools, penalties, structured output) are refused rather than silently dropped.
 */
import { MAX_TOP_LOGPROBS } from '../model/logprobs.js';
import { IMAGE_PLACEHOLDER } from '../prompt/multimodal.js';
import type { AskOptions, SessionImage, Turn } from '../session/healthgpt.js';
import { ApiError, badRequest } from './errors.js';
import type { ImageSource } from './image-source.js';

export interface ChatRequest {
  ask: Omit<AskOptions, 'signal' | 'onLogprobs' | 'onPrompt'>;
  stream: boolean;
  includeUsage: boolean;
  logprobs: boolean;
  stop: string[];
  /** how many images the request carries (for the log) */
  imageCount: number;
}

type Body = Record<string, unknown>;

const isObject = (v: unknown): v is Body => typeof v === 'object' && v !== null && !Array.isArray(v);

/** The model a request names must be the one served (404 otherwise, as OpenAI answers). */
export function checkModel(model: unknown, served: string): void {
  if (model === undefined) return;
  if (typeof model !== 'string') throw badRequest('model must be a string', 'model');
  if (model !== served) throw new ApiError(404, `The model '${model}' does not exist: this server serves '${served}' (GET /v1/models)`, 'model_not_found', 'model');
}

function optNumber(b: Body, key: string, ok: (v: number) => boolean, what: string): number | undefined {
  const v = b[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'number' || !Number.isFinite(v) || !ok(v)) throw badRequest(`${key} must be ${what}, got ${JSON.stringify(v)}`, key);
  return v;
}

/** A message's text parts joined, its images marked where they stand. */
async function content(v: unknown, param: string, images: ImageSource | undefined, out: SessionImage[]): Promise<string> {
  if (typeof v === 'string') return checkText(v, param);
  if (!Array.isArray(v)) throw badRequest(`${param} must be a string or an array of content parts`, param);
  const pieces: string[] = [];
  for (const [i, part] of v.entries()) {
    const p = `${param}[${i}]`;
    if (!isObject(part)) throw badRequest(`${p} must be a content part object`, p);
    if (part.type === 'text') {
      if (typeof part.text !== 'string') throw badRequest(`${p}.text must be a string`, `${p}.text`);
      pieces.push(checkText(part.text, `${p}.text`));
    } else if (part.type === 'image_url') {
      if (!images) throw badRequest(`${p}: only user messages carry images`, p);
      const ref = part.image_url;
      const url = isObject(ref) ? ref.url : ref;
      out.push(await images.resolve(url, `${p}.image_url.url`));
      pieces.push(IMAGE_PLACEHOLDER);
    } else {
      throw badRequest(`${p}.type must be "text" or "image_url", got ${JSON.stringify(part.type)}`, `${p}.type`);
    }
  }
  return pieces.join('\n');
}

function checkText(text: string, param: string): string {
  if (text.includes(IMAGE_PLACEHOLDER)) throw badRequest(`${param} contains "${IMAGE_PLACEHOLDER}": send images as image_url parts`, param);
  return text;
}

export async function parseChatRequest(body: unknown, served: string, images: ImageSource): Promise<ChatRequest> {
  if (!isObject(body)) throw badRequest('the request body must be a JSON object');
  checkModel(body.model, served);
  for (const key of ['tools', 'functions', 'tool_choice', 'function_call', 'audio', 'prediction'])
    if (body[key] !== undefined && body[key] !== null) throw badRequest(`${key} is not supported by this server`, key, 'unsupported_parameter');
  const format = body.response_format;
  if (format !== undefined && format !== null && !(isObject(format) && format.type === 'text'))
    throw badRequest('response_format: only {"type": "text"} is supported', 'response_format', 'unsupported_parameter');
  if (body.n !== undefined && body.n !== null && body.n !== 1) throw badRequest('n: only 1 choice per request is supported', 'n', 'unsupported_parameter');
  for (const key of ['frequency_penalty', 'presence_penalty'])
    if (body[key] !== undefined && body[key] !== null && body[key] !== 0) throw badRequest(`${key}: only 0 is supported`, key, 'unsupported_parameter');

  const messages = body.messages;
  if (!Array.isArray(messages) || messages.length === 0) throw badRequest('messages must be a non-empty array', 'messages');
  const system: string[] = [];
  const turns: Turn[] = [];
  let imageCount = 0;
  for (const [i, m] of messages.entries()) {
    const param = `messages[${i}]`;
    if (!isObject(m)) throw badRequest(`${param} must be an object {role, content}`, param);
    const role = m.role;
    if (role === 'system' || role === 'developer') {
      if (turns.length) throw badRequest(`${param}: ${role} messages must come before the conversation`, `${param}.role`);
      system.push(await content(m.content, `${param}.content`, undefined, []));
    } else if (role === 'user' || role === 'assistant') {
      const imgs: SessionImage[] = [];
      const text = await content(m.content, `${param}.content`, role === 'user' ? images : undefined, imgs);
      imageCount += imgs.length;
      turns.push(imgs.length ? { role, content: text, images: imgs } : { role, content: text });
    } else {
      throw badRequest(`${param}.role must be "system", "developer", "user" or "assistant", got ${JSON.stringify(role)}`, `${param}.role`);
    }
  }
  const last = turns.pop();
  if (last?.role !== 'user') throw badRequest('the last message must be a user message', 'messages');
  if (last.content.trim() === '' && !last.images?.length) throw badRequest('the last user message is empty', 'messages');

  const maxTokens = optNumber(body, 'max_completion_tokens', Number.isInteger, 'a positive integer') ?? optNumber(body, 'max_tokens', Number.isInteger, 'a positive integer');
  if (maxTokens !== undefined && maxTokens < 1) throw badRequest(`max_tokens must be a positive integer, got ${maxTokens}`, 'max_tokens');
  const temperature = optNumber(body, 'temperature', (v) => v >= 0 && v <= 2, 'a number in [0, 2]');
  const topP = optNumber(body, 'top_p', (v) => v > 0 && v <= 1, 'a number in (0, 1]');
  const seed = optNumber(body, 'seed', Number.isSafeInteger, 'an integer');
  const logprobs = body.logprobs ?? false;
  if (typeof logprobs !== 'boolean') throw badRequest('logprobs must be a boolean', 'logprobs');
  const top = optNumber(body, 'top_logprobs', (v) => Number.isInteger(v) && v >= 0 && v <= MAX_TOP_LOGPROBS, `an integer in 0..${MAX_TOP_LOGPROBS}`);
  if (top !== undefined && !logprobs) throw badRequest('top_logprobs needs logprobs: true', 'top_logprobs');

  let stop: string[] = [];
  if (typeof body.stop === 'string') stop = [body.stop];
  else if (Array.isArray(body.stop)) stop = body.stop as string[];
  else if (body.stop !== undefined && body.stop !== null) throw badRequest('stop must be a string or an array of strings', 'stop');
  if (stop.length > 4 || stop.some((s) => typeof s !== 'string' || s === '')) throw badRequest('stop must hold at most 4 non-empty strings', 'stop');

  const stream = body.stream ?? false;
  if (typeof stream !== 'boolean') throw badRequest('stream must be a boolean', 'stream');
  const so = body.stream_options;
  const includeUsage = isObject(so) && so.include_usage === true;

  const ask: ChatRequest['ask'] = { question: last.content, history: turns };
  if (last.images?.length) ask.images = last.images;
  if (system.length) ask.system = system.join('\n');
  if (maxTokens !== undefined) ask.maxTokens = maxTokens;
  if (temperature !== undefined) ask.temperature = temperature;
  if (topP !== undefined) ask.topP = topP;
  if (seed !== undefined) ask.seed = seed;
  if (top !== undefined) ask.topLogprobs = top;
  return { ask, stream, includeUsage, logprobs, stop, imageCount };
}
