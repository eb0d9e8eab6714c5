/**
 * The image endpoints, returning `b64_json` PNGs as OpenAI's images API does:
 * - POST /v1/images/edits (multipart: `image`, `prompt`): the prompt names a task (ct2mri,
 *   mri2ct, super-resolution, reconstruct) or is an instruction of its own;
 * - POST /v1/images/generations (JSON: `prompt`): report-to-CXR from the report text.
 * One image per request (n = 1); there are no URLs to host results at.
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import { GENERATION_TASKS, isGenerationTask, type GenerationTask } from '../generate/tasks.js';
import type { GenerateImageOptions } from '../session/healthgpt.js';
import { checkModel } from './chat-request.js';
import type { ServerContext } from './context.js';
import { ApiError, badRequest } from './errors.js';
import { RequestScope } from './request-scope.js';

/** Tasks an edit may name (every one but report-to-CXR, which takes no image). */
const EDIT_TASKS = Object.keys(GENERATION_TASKS).filter((t) => GENERATION_TASKS[t as GenerationTask].image);

type Fields = Record<string, unknown>;

/** An integer field: a JSON number, or a multipart field's digits (not true, [] or ""). */
function intField(v: unknown): number | undefined {
  const n = typeof v === 'number' ? v : typeof v === 'string' && /^\s*-?\d+\s*$/.test(v) ? Number(v) : Number.NaN;
  return Number.isSafeInteger(n) ? n : undefined;
}

/** n, response_format and size as OpenAI clients send them; only what we can do passes. */
function checkImageFields(f: Fields, ctx: ServerContext): void {
  checkModel(f.model, ctx.modelId);
  if (f.n !== undefined && intField(f.n) !== 1) throw badRequest('n: only 1 image per request is supported', 'n', 'unsupported_parameter');
  if (f.response_format !== undefined && f.response_format !== 'b64_json')
    throw badRequest('response_format: only "b64_json" is supported (the server hosts no URLs)', 'response_format', 'unsupported_parameter');
  const side = ctx.session.vqgan?.info.resolution;
  if (f.size !== undefined && f.size !== 'auto' && side !== undefined && f.size !== `${side}x${side}`)
    throw badRequest(`size: this model makes ${side}x${side} images, got ${JSON.stringify(f.size)}`, 'size', 'unsupported_parameter');
  if (f.seed !== undefined && intField(f.seed) === undefined) throw badRequest('seed must be an integer', 'seed');
}

async function respond(ctx: ServerContext, req: FastifyRequest, reply: FastifyReply, options: GenerateImageOptions, endpoint: string): Promise<FastifyReply> {
  const scope = await RequestScope.open(reply, ctx.admission, ctx.timeoutMs, ctx.shutdown);
  const t0 = performance.now();
  try {
    const r = await ctx.session.generateImage({ ...options, imageOptions: { maxPixels: ctx.maxPixels }, signal: scope.signal });
    req.log.info({ endpoint, task: options.task, ms: Math.round(performance.now() - t0), ...(ctx.logPrompts ? { instruction: options.instruction, report: options.report } : {}) }, 'image generated');
    return reply.send({
      created: Math.floor(Date.now() / 1000),
      data: [{ b64_json: r.png.toString('base64') }],
      output_format: 'png',
      size: `${r.width}x${r.height}`,
    });
  } catch (err) {
    if (scope.ended === 'client-gone') req.log.info({ endpoint, task: options.task, ms: Math.round(performance.now() - t0), aborted: 'client disconnected' }, 'image request stopped');
    throw scope.failure(err);
  } finally {
    scope.close();
  }
}

const seedOf = (f: Fields): { seed?: number } => (f.seed === undefined ? {} : { seed: intField(f.seed) });

/**
 * What reading a multipart body threw, as the client's error: the parser's own (a missing
 * boundary, a body cut short) carry no status and would otherwise read as the server's fault.
 */
function multipartError(err: unknown): unknown {
  if (err instanceof ApiError) return err;
  const e = err as { code?: unknown; statusCode?: unknown; message?: unknown };
  // the parser's limit of one file: a second image, said as the handler says it
  if (e?.code === 'FST_FILES_LIMIT') return badRequest('one image per request', 'image', 'unsupported_parameter');
  if (typeof e?.statusCode === 'number') return err; // size limits (413) and the like, as they are
  return badRequest(`the multipart body cannot be read: ${String(e?.message ?? err)}`, null, 'invalid_multipart');
}

export async function imageEdits(ctx: ServerContext, req: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> {
  if (!req.isMultipart()) throw badRequest('images/edits takes multipart/form-data with an image file and a prompt');
  const fields: Fields = {};
  let image: Buffer | undefined;
  try {
    for await (const part of req.parts()) {
      if (part.type === 'file') {
        if (part.fieldname !== 'image' && part.fieldname !== 'image[]')
          throw badRequest(`unexpected file field "${part.fieldname}" (only "image"; masks are not supported)`, part.fieldname, 'unsupported_parameter');
        if (image) throw badRequest('one image per request', 'image', 'unsupported_parameter');
        image = await part.toBuffer();
      } else {
        fields[part.fieldname] = part.value;
      }
    }
  } catch (err) {
    throw multipartError(err);
  }
  if (!image || image.length === 0) throw badRequest('image: an image file is required', 'image');
  checkImageFields(fields, ctx);
  const prompt = fields.prompt;
  if (typeof prompt !== 'string' || prompt.trim() === '') throw badRequest(`prompt must name a task (${EDIT_TASKS.join(', ')}) or give an instruction`, 'prompt');
  const named = prompt.trim().toLowerCase();
  if (named === 'report2cxr') throw badRequest('report2cxr takes no image: use POST /v1/images/generations with the report as prompt', 'prompt');
  // a task's name picks its instruction; any other prompt is the instruction itself
  const options: GenerateImageOptions = isGenerationTask(named) ? { task: named, image } : { task: 'reconstruct', instruction: prompt, image };
  return respond(ctx, req, reply, { ...options, ...seedOf(fields) }, 'images.edits');
}

export async function imageGenerations(ctx: ServerContext, req: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> {
  const body = req.body;
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw badRequest('the request body must be a JSON object');
  const f = body as Fields;
  checkImageFields(f, ctx);
  if (typeof f.prompt !== 'string' || f.prompt.trim() === '') throw badRequest('prompt must be the report text to draw a chest X-ray from', 'prompt');
  return respond(ctx, req, reply, { task: 'report2cxr', report: f.prompt, ...seedOf(f) }, 'images.generations');
}
