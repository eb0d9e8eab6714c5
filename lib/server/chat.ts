/**
 * POST /v1/chat/completions: the session's ask() as OpenAI's chat completion, whole or as
 * server-sent events (`chat.completion.chunk` objects, then `data: [DONE]`). The first piece
 * of the answer is awaited before any header goes out, so a bad image or a full queue still
 * gets its proper status; an error after that arrives as an `{error}` event.
 */
import { randomUUID } from 'node:crypto';
import { once } from 'node:events';
import { PassThrough } from 'node:stream';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { TokenLogprob, TokenLogprobs } from '../model/logprobs.js';
import type { FinishReason } from '../model/model.js';
import { StopText } from '../model/stop-text.js';
import { parseChatRequest } from './chat-request.js';
import type { ServerContext } from './context.js';
import { apiErrorOf } from './errors.js';
import { RequestScope } from './request-scope.js';

interface LogprobEntry {
  token: string;
  logprob: number;
  bytes: number[];
}

const OPENAI_FINISH: Record<Exclude<FinishReason, 'abort'>, string> = { stop: 'stop', length: 'length', context: 'length' };

export async function chatCompletions(ctx: ServerContext, req: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> {
  const chat = await parseChatRequest(req.body, ctx.modelId, ctx.images);
  const scope = await RequestScope.open(reply, ctx.admission, ctx.timeoutMs, ctx.shutdown);
  const tokenizer = ctx.session.model.tokenizer;
  const entry = (t: TokenLogprob): LogprobEntry => {
    const bytes = tokenizer.tokenToPiece(t.token, true);
    return { token: Buffer.from(bytes).toString('utf8'), logprob: t.logprob, bytes: [...bytes] };
  };
  const toOpenAI = (t: TokenLogprobs) => ({ ...entry(t), top_logprobs: t.top.map(entry) });

  let promptTokens = 0;
  let completionTokens = 0;
  let pendingLogprobs: ReturnType<typeof toOpenAI>[] = [];
  const t0 = performance.now();
  const gen = ctx.session.ask({
    ...chat.ask,
    imageOptions: { maxPixels: ctx.maxPixels },
    signal: scope.signal,
    onPrompt: (n) => (promptTokens = n),
    // every token passes here: it is counted for `usage`, listed when logprobs were asked for
    onLogprobs: (t) => {
      completionTokens++;
      if (chat.logprobs) pendingLogprobs.push(toOpenAI(t));
    },
  });
  const stops = new StopText(chat.stop);
  /** the next piece of text to send, or the finish reason */
  const next = async (): Promise<{ text: string; finish?: string }> => {
    for (;;) {
      const s = await gen.next();
      if (s.done) return { text: stops.flush(), finish: OPENAI_FINISH[s.value as Exclude<FinishReason, 'abort'>] ?? 'stop' };
      const out = stops.push(s.value);
      if (out.stopped) {
        await gen.return('stop');
        return { text: out.text, finish: 'stop' };
      }
      if (out.text) return { text: out.text };
    }
  };
  const takeLogprobs = () => {
    const out = pendingLogprobs;
    pendingLogprobs = [];
    return chat.logprobs ? { content: out, refusal: null } : null;
  };
  const id = `chatcmpl-${randomUUID()}`;
  const created = Math.floor(Date.now() / 1000);
  const usage = () => ({ prompt_tokens: promptTokens, completion_tokens: completionTokens, total_tokens: promptTokens + completionTokens });
  const logDone = (finish: string, extra: Record<string, unknown> = {}) =>
    req.log.info(
      {
        endpoint: 'chat.completions',
        stream: chat.stream,
        images: chat.imageCount,
        ...usage(),
        finish_reason: finish,
        ms: Math.round(performance.now() - t0),
        ...(ctx.logPrompts ? { question: chat.ask.question, system: chat.ask.system } : {}),
        ...extra,
      },
      'chat completion',
    );

  let first: { text: string; finish?: string };
  try {
    first = await next();
  } catch (err) {
    scope.close();
    throw scope.failure(err);
  }

  if (!chat.stream) {
    try {
      let text = first.text;
      let finish = first.finish;
      while (finish === undefined) {
        const piece = await next();
        text += piece.text;
        finish = piece.finish;
      }
      logDone(finish);
      return reply.send({
        id,
        object: 'chat.completion',
        created,
        model: ctx.modelId,
        choices: [{ index: 0, message: { role: 'assistant', content: text, refusal: null }, logprobs: takeLogprobs(), finish_reason: finish }],
        usage: usage(),
      });
    } catch (err) {
      throw scope.failure(err);
    } finally {
      scope.close();
    }
  }

  const sse = new PassThrough();
  sse.on('error', () => undefined); // a client gone mid-write: the scope's signal handles it
  // a client that reads slowly is written to as it drains, not into a growing buffer here (the
  // generation runs on into its own token buffer, bounded by max_tokens, and frees the model)
  const send = async (data: unknown): Promise<void> => {
    if (sse.destroyed || sse.writableEnded) return;
    if (!sse.write(`data: ${typeof data === 'string' ? data : JSON.stringify(data)}\n\n`)) await once(sse, 'drain', { signal: scope.signal });
  };
  const chunk = (delta: Record<string, unknown>, finish: string | null, logprobs = takeLogprobs()) => ({
    id,
    object: 'chat.completion.chunk',
    created,
    model: ctx.modelId,
    choices: [{ index: 0, delta, logprobs, finish_reason: finish }],
  });
  reply.header('content-type', 'text/event-stream; charset=utf-8').header('cache-control', 'no-cache').header('x-accel-buffering', 'no');
  void reply.send(sse);
  try {
    await send(chunk({ role: 'assistant', content: '' }, null, null));
    let piece = first;
    for (;;) {
      if (piece.text) await send(chunk({ content: piece.text }, null));
      if (piece.finish !== undefined) {
        await send(chunk({}, piece.finish));
        if (chat.includeUsage) await send({ id, object: 'chat.completion.chunk', created, model: ctx.modelId, choices: [], usage: usage() });
        await send('[DONE]');
        logDone(piece.finish);
        break;
      }
      piece = await next();
    }
  } catch (err) {
    const why = scope.ended;
    if (why === 'client-gone') logDone('abort', { aborted: 'client disconnected' });
    else {
      const { error, internal } = apiErrorOf(scope.failure(err));
      if (internal) req.log.error({ err }, 'chat completion failed mid-stream');
      else logDone('error', { status: error.status, code: error.code });
      await send(error.body()).catch(() => undefined);
    }
  } finally {
    scope.close();
    sse.end();
  }
  return reply;
}
