// API errors: every failure leaves as {"error":{"code","message"}} (SPEC §8),
// from one error type. Validation errors also name the field, so a client can
// point at the input that was wrong without parsing the message.
import type { Context } from 'hono';
import { HTTPException } from 'hono/http-exception';
import type { Logger } from 'pino';
import type { z } from 'zod';
import { GatewayError, isGatewayError } from '../errors.js';

export class ApiError extends GatewayError {
  readonly extra: Record<string, unknown>;
  constructor(http: number, code: string, message: string, extra: Record<string, unknown> = {}) {
    super(code, message, { http, smtp: http >= 500 ? 451 : 550 });
    this.extra = extra;
  }
}

export const badRequest = (code: string, message: string, field?: string) =>
  new ApiError(400, code, message, field ? { field } : {});
export const notFound = (what: string, id: string) =>
  new ApiError(404, `${what.replace(/ /g, '_')}_not_found`, `${what} ${id} not found`);

/** `["to", 0, "email"]` → `to[0].email`. */
export function fieldPath(path: readonly PropertyKey[], prefix = ''): string {
  let out = prefix;
  for (const p of path) {
    if (typeof p === 'number') out += `[${p}]`;
    else out += out ? `.${String(p)}` : String(p);
  }
  return out || '(body)';
}

export function validationError(error: z.ZodError, where: 'body' | 'query'): ApiError {
  const details = error.issues.slice(0, 20).map((i) => ({ field: fieldPath(i.path), message: i.message }));
  const first = details[0] ?? { field: where, message: 'invalid input' };
  const label = where === 'query' ? `query parameter ${first.field}` : first.field;
  return new ApiError(400, 'invalid_request', `${label}: ${first.message}`, { field: first.field, details });
}

export function errorBody(code: string, message: string, extra: Record<string, unknown> = {}) {
  return { error: { code, message, ...extra } };
}

/** app.onError: GatewayError → its own status; anything unexpected → 500 without internals. */
export function handleError(err: Error, c: Context, log: Logger): Response {
  if (isGatewayError(err)) {
    const extra = err instanceof ApiError ? err.extra : {};
    const status = err.http >= 400 && err.http <= 599 ? err.http : 500;
    if (status >= 500) log.warn({ err, code: err.code }, 'API request failed');
    return c.json(errorBody(err.code, err.message, extra), status as 400);
  }
  if (err instanceof HTTPException) {
    const status = err.status;
    const code = status === 413 ? 'payload_too_large' : status === 400 ? 'bad_request' : `http_${status}`;
    return c.json(errorBody(code, err.message || 'Request refused'), status);
  }
  log.error({ err }, 'API request crashed');
  return c.json(errorBody('internal_error', 'Internal server error'), 500);
}
