/**
 * One request's life on the server: its AbortSignal fires when the client disconnects, when
 * the per-request timeout passes, or when the server shuts down; the signal goes into the
 * session, which stops within one model step, and the request's slot is freed for the next.
 */
import type { FastifyReply } from 'fastify';
import type { Admission } from './admission.js';
import { ApiError } from './errors.js';

export type EndReason = 'client-gone' | 'timeout' | 'shutdown';

export class RequestScope {
  readonly signal: AbortSignal;
  private readonly gone = new AbortController();
  private readonly deadline: AbortSignal;
  private release: (() => void) | undefined;

  private constructor(
    reply: FastifyReply,
    timeoutMs: number,
    private readonly shutdown: AbortSignal,
  ) {
    // from the request's arrival: the upload of its body took part of it already
    this.deadline = AbortSignal.timeout(Math.max(1, Math.round(timeoutMs - reply.elapsedTime)));
    // 'close' before the response was finished: the client went away
    reply.raw.once('close', () => {
      if (!reply.raw.writableFinished) this.gone.abort(new Error('the client disconnected'));
    });
    this.signal = AbortSignal.any([this.gone.signal, this.deadline, shutdown]);
  }

  /** Waits for a slot (429 when the queue is full); the timeout counts from the request's arrival. */
  static async open(reply: FastifyReply, admission: Admission, timeoutMs: number, shutdown: AbortSignal): Promise<RequestScope> {
    const scope = new RequestScope(reply, timeoutMs, shutdown);
    try {
      scope.release = await admission.enter(scope.signal);
    } catch (err) {
      throw scope.failure(err);
    }
    if (scope.signal.aborted) {
      scope.close();
      throw scope.failure(scope.signal.reason);
    }
    return scope;
  }

  /** Why the signal fired, if it did. */
  get ended(): EndReason | undefined {
    if (this.gone.signal.aborted) return 'client-gone';
    if (this.deadline.aborted) return 'timeout';
    if (this.shutdown.aborted) return 'shutdown';
    return undefined;
  }

  /** The error to answer with: an abort becomes 504 (timeout), 503 (shutdown) or 499 (nobody listens); others pass. */
  failure(err: unknown): unknown {
    const why = this.ended;
    if (why === 'client-gone') return new ApiError(499, 'the client closed the request', 'client_closed');
    if (why === 'timeout') return new ApiError(504, 'the request took longer than the server allows (--timeout)', 'timeout');
    if (why === 'shutdown') return new ApiError(503, 'the server is shutting down', 'shutting_down');
    return err;
  }

  /** Frees the slot (once). */
  close(): void {
    this.release?.();
    this.release = undefined;
  }
}
