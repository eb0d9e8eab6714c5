/**
 * `healthgpt serve`'s HTTP server (fastify): OpenAI's chat completions and images endpoints
 * over one HealthGPT session, plus /v1/models and /health. Safe defaults: it listens on
 * 127.0.0.1, and anywhere else only with an API key (Bearer); without a key it answers
 * requests for a loopback host from no foreign web page (lib/server/local-guard.ts); bodies and images are bounded
 * (413); as many requests run as the model holds sequences (decoded together, one batch per
 * token), at most `queue` more wait (429 with Retry-After); each request has a deadline
 * (504); a client that disconnects stops its request. Logs are fastify's (pino, JSON lines)
 * and hold no prompt text unless logPrompts, and never image content.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { createServer, STATUS_CODES } from 'node:http';
import type { Socket } from 'node:net';
import multipart from '@fastify/multipart';
import { HealthGPTError } from '../errors.js';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyServerOptions } from 'fastify';
import { Admission } from './admission.js';
import { chatCompletions } from './chat.js';
import type { ServedSession, ServerContext } from './context.js';
import { ApiError, apiErrorOf } from './errors.js';
import { ImageSource } from './image-source.js';
import { imageEdits, imageGenerations } from './images.js';
import { checkLocalRequest } from './local-guard.js';

export interface ServerOptions {
  session: ServedSession;
  /** the name /v1/models lists and requests give as `model` */
  modelId: string;
  /** default 127.0.0.1; any other address needs apiKey */
  host?: string;
  /** default 8080; 0 picks a free port */
  port?: number;
  /** clients send `Authorization: Bearer <apiKey>` (every path but /health) */
  apiKey?: string;
  /** folders whose files requests may name as images */
  allowDirs?: string[];
  /** largest request body in bytes (JSON with data: URLs, or a multipart upload); default 32 MiB */
  bodyLimit?: number;
  /** largest image in pixels; default 25e6 */
  maxPixels?: number;
  /** requests that may wait for the model beyond those it runs (one per sequence the model holds); default 16 */
  queue?: number;
  /** per-request deadline from arrival, ms; default 600000 */
  timeoutMs?: number;
  logPrompts?: boolean;
  /** fastify's logger option (pino); default: info level on stdout */
  logger?: FastifyServerOptions['logger'];
}

export interface RunningServer {
  app: FastifyInstance;
  /** http://host:port */
  url: string;
  /** stops listening, stops requests in flight; the session stays the caller's */
  close(): Promise<void>;
}

const LOOPBACK = /^(127(\.\d{1,3}){3}|::1|localhost)$/;

function sameKey(given: string, key: string): boolean {
  const h = (s: string) => createHash('sha256').update(s).digest();
  return timingSafeEqual(h(given), h(key));
}

/**
 * What the HTTP parser refuses before fastify sees a request (a malformed request line, headers
 * too large, a body that did not arrive within --timeout), answered in OpenAI's error shape.
 */
function clientError(err: Error & { code?: string }, socket: Socket): void {
  if (err.code === 'ECONNRESET' || socket.destroyed) return; // nobody to answer
  const [status, message, code] =
    err.code === 'ERR_HTTP_REQUEST_TIMEOUT'
      ? [408, 'the request did not arrive within the time the server allows (--timeout)', 'request_timeout']
      : err.code === 'HPE_HEADER_OVERFLOW'
        ? [431, 'the request headers are too large', 'headers_too_large']
        : [400, 'the request is not valid HTTP', 'invalid_http'];
  const body = JSON.stringify(new ApiError(status, message, code).body());
  if (socket.writable) socket.write(`HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`);
  socket.destroy(err);
}

/** How long close() lets requests finish before it cuts their connections. */
const CLOSE_GRACE_MS = 5000;

export async function startServer(o: ServerOptions): Promise<RunningServer> {
  const host = o.host ?? '127.0.0.1';
  if (!LOOPBACK.test(host) && !o.apiKey) throw new HealthGPTError('ERR_INVALID_ARG', `listening on ${host} (not this machine alone) needs an API key: --api-key or HEALTHGPT_API_KEY`);
  if (o.apiKey !== undefined && o.apiKey.length < 8) throw new HealthGPTError('ERR_INVALID_ARG', 'the API key must be at least 8 characters');
  for (const k of ['bodyLimit', 'maxPixels', 'queue', 'timeoutMs'] as const) {
    const v = o[k];
    if (v !== undefined && (!Number.isSafeInteger(v) || v < (k === 'queue' ? 0 : 1)))
      throw new HealthGPTError('ERR_INVALID_ARG', `${k} must be a ${k === 'queue' ? 'non-negative' : 'positive'} integer, got ${String(v)}`);
  }
  const bodyLimit = o.bodyLimit ?? 32 << 20;
  const shutdown = new AbortController();
  const ctx: ServerContext = {
    session: o.session,
    modelId: o.modelId,
    images: await ImageSource.create(o.allowDirs),
    // as many run as the model decodes together (its sequences); the model would queue the rest in order anyway
    admission: new Admission(o.session.model.info.nSeq, o.queue ?? 16),
    timeoutMs: o.timeoutMs ?? 600_000,
    maxPixels: o.maxPixels ?? 25_000_000,
    logPrompts: o.logPrompts ?? false,
    shutdown: shutdown.signal,
  };

  const app = Fastify({
    logger: o.logger ?? { level: 'info' },
    bodyLimit,
    return503OnClosing: true,
    // The deadline counts from arrival, upload included: a client that stops sending its body
    // is cut off (408) when the whole request has not come in time, checked every second (the
    // handler's own deadline starts only once the body is read).
    serverFactory: (handler) => createServer({ requestTimeout: ctx.timeoutMs, connectionsCheckingInterval: 1000 }, handler),
    clientErrorHandler: clientError,
    // a URL that does not decode, say: refused in OpenAI's shape like everything else
    frameworkErrors: (err, _req, reply) => (reply as FastifyReply).code(400).send(new ApiError(400, err.message, 'invalid_url').body()),
  });
  await app.register(multipart, { limits: { fileSize: bodyLimit, files: 1, fields: 16, fieldSize: 1 << 20, parts: 32 } });

  app.setErrorHandler((err, req, reply) => {
    const { error, internal } = apiErrorOf(err);
    if (internal) req.log.error({ err }, 'request failed');
    else req.log.info({ status: error.status, code: error.code }, error.message);
    return reply.code(error.status).headers(error.headers).send(error.body());
  });
  app.setNotFoundHandler((req, reply) => {
    const e = new ApiError(404, `Unknown request URL: ${req.method} ${req.url}`, 'unknown_url');
    return reply.code(404).send(e.body());
  });
  if (o.apiKey !== undefined) {
    const key = o.apiKey;
    app.addHook('onRequest', async (req) => {
      if (req.url === '/health') return;
      const m = /^Bearer (.+)$/.exec(req.headers.authorization ?? '');
      if (!m || !sameKey(m[1]!, key)) throw new ApiError(401, 'a valid API key is required: Authorization: Bearer <key>', 'invalid_api_key');
    });
  } else {
    app.addHook('onRequest', async (req) => checkLocalRequest(req));
  }

  app.get('/health', async (_req, reply) => reply.send({ status: 'ok', model: ctx.modelId, running: ctx.admission.running, waiting: ctx.admission.waiting, queue: ctx.admission.queue }));
  const model = () => ({ id: ctx.modelId, object: 'model', created: 0, owned_by: 'healthgpt' });
  app.get('/v1/models', async () => ({ object: 'list', data: [model()] }));
  app.get<{ Params: { id: string } }>('/v1/models/:id', async (req) => {
    if (req.params.id !== ctx.modelId) throw new ApiError(404, `The model '${req.params.id}' does not exist`, 'model_not_found', 'model');
    return model();
  });
  app.post('/v1/chat/completions', (req, reply) => chatCompletions(ctx, req, reply));
  app.post('/v1/images/edits', (req, reply) => imageEdits(ctx, req, reply));
  app.post('/v1/images/generations', (req, reply) => imageGenerations(ctx, req, reply));

  let url: string;
  try {
    url = await app.listen({ host, port: o.port ?? 8080 });
  } catch (err) {
    await app.close();
    throw new HealthGPTError('ERR_LISTEN', `cannot listen on ${host}:${o.port ?? 8080}: ${(err as Error).message}`, { cause: err });
  }
  return {
    app,
    url,
    close: async () => {
      shutdown.abort(new Error('the server is shutting down'));
      // requests end within a token of the abort; a connection still open after the grace
      // (a client that stopped mid-upload, say) would hold the close: it is cut
      const grace = setTimeout(() => app.server.closeAllConnections(), CLOSE_GRACE_MS);
      try {
        await app.close();
      } finally {
        clearTimeout(grace);
      }
    },
  };
}
