/**
 * Without an API key the server trusts this machine alone, and a browser on it is not a
 * trusted client: a web page could post to 127.0.0.1 (a form needs no CORS preflight) or reach
 * it through DNS rebinding. So keyless requests must name a loopback host and, if they carry
 * an Origin, a loopback origin (403 otherwise). With a key, the key decides.
 */
import type { FastifyRequest } from 'fastify';
import { ApiError } from './errors.js';

const LOOPBACK_HOST = /^(localhost|127(\.\d{1,3}){3}|\[::1\])(:\d+)?$/i;

export function checkLocalRequest(req: FastifyRequest): void {
  if (!LOOPBACK_HOST.test(req.headers.host ?? '')) throw new ApiError(403, 'without an API key this server answers requests for localhost / 127.0.0.1 only (Host header)', 'host_not_allowed');
  const origin = req.headers.origin;
  if (origin === undefined) return;
  let host: string;
  try {
    host = new URL(origin).host;
  } catch {
    host = '';
  }
  if (!LOOPBACK_HOST.test(host)) throw new ApiError(403, 'without an API key this server answers pages of this machine only (Origin header)', 'origin_not_allowed');
}
