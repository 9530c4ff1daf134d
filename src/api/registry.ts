// Every API route is declared once, with its scope and the zod schemas of its
// query and body. The same declaration mounts the Hono handler (which
// validates with those schemas) and generates openapi.json, so the published
// document cannot drift from what the code accepts.
import type { Context, Hono } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import { z } from 'zod';
import type { Scope } from '../auth/api-keys.js';
import type { ApiKeyRow } from '../store/tenants.js';
import { authenticated, requireScope } from './auth.js';
import type { ApiEnv } from './env.js';
import { ApiError, validationError } from './errors.js';

export type Method = 'get' | 'post' | 'patch' | 'delete';

export interface ResponseDoc {
  description: string;
  schema?: z.ZodType;
  /** Default application/json. */
  contentType?: string;
}

export interface RouteInput<B extends z.ZodType, Q extends z.ZodType> {
  body: z.output<B>;
  query: z.output<Q>;
  key: ApiKeyRow;
}

export interface Route<B extends z.ZodType = z.ZodType, Q extends z.ZodType = z.ZodType> {
  method: Method;
  /** OpenAPI form: `/messages/{id}`. */
  path: string;
  scope: Scope;
  tag: string;
  summary: string;
  description?: string;
  body?: B;
  query?: Q;
  /** Descriptions of path parameters. */
  params?: Record<string, string>;
  /** Accepts an Idempotency-Key header. */
  idempotent?: boolean;
  responses: Record<number, ResponseDoc>;
  handler: (c: Context<ApiEnv>, input: RouteInput<B, Q>) => Response | Promise<Response>;
}

export function defineRoute<B extends z.ZodType = z.ZodUnknown, Q extends z.ZodType = z.ZodUnknown>(r: Route<B, Q>): Route {
  return r as unknown as Route;
}

/** A query string as an object; a repeated parameter keeps its last value. */
function queryObject(c: Context): Record<string, string> {
  return c.req.query();
}

/** Deeper JSON is no real request; the schemas' own walks (e.g. metadata's size check) recurse. */
export const MAX_JSON_DEPTH = 64;

/** Deepest `[`/`{` nesting of a JSON text, strings skipped. Stops counting past `limit`. */
export function jsonDepth(text: string, limit = MAX_JSON_DEPTH): number {
  let depth = 0;
  let max = 0;
  for (let i = 0; i < text.length; i++) {
    const ch = text.charCodeAt(i);
    if (ch === 0x22) {
      // Skip the string, escapes included.
      for (i++; i < text.length && text.charCodeAt(i) !== 0x22; i++) if (text.charCodeAt(i) === 0x5c) i++;
    } else if (ch === 0x5b || ch === 0x7b) {
      if (++depth > max) max = depth;
      if (max > limit) return max;
    } else if (ch === 0x5d || ch === 0x7d) {
      depth--;
    }
  }
  return max;
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

export async function readJson(c: Context): Promise<unknown> {
  let text: string;
  try {
    // RFC 8259 §8.1: JSON is UTF-8. A lenient decode would turn bad bytes into U+FFFD and
    // send a message that says something other than what the client sent.
    text = utf8.decode(await c.req.arrayBuffer());
  } catch {
    throw new ApiError(400, 'invalid_json', 'Request body is not valid UTF-8');
  }
  if (!text.trim()) throw new ApiError(400, 'invalid_json', 'Request body is empty; expected a JSON document');
  // Found by the bad-input suite: metadata nested 10,000 deep overflowed the stack in the
  // schema's size check and answered 500; refuse such documents before parsing them.
  if (jsonDepth(text) > MAX_JSON_DEPTH) {
    throw new ApiError(400, 'invalid_json', `Request body is nested deeper than ${MAX_JSON_DEPTH} levels`);
  }
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new ApiError(400, 'invalid_json', `Request body is not valid JSON: ${(e as Error).message}`);
  }
}

export function parseWith<S extends z.ZodType>(schema: S, value: unknown, where: 'body' | 'query'): z.output<S> {
  const r = schema.safeParse(value);
  if (!r.success) throw validationError(r.error, where);
  return r.data;
}

export function mountRoutes(app: Hono<ApiEnv>, routes: Route[], maxBodySize: number): void {
  const limit = bodyLimit({
    maxSize: maxBodySize,
    onError: () => {
      throw new ApiError(413, 'payload_too_large', `Request body exceeds ${maxBodySize} bytes`);
    },
  });
  for (const r of routes) {
    const path = r.path.replace(/\{(\w+)\}/g, ':$1');
    app.on(r.method.toUpperCase(), path, requireScope(r.scope), limit, async (c) => {
      const key = authenticated(c);
      const query = r.query ? parseWith(r.query, queryObject(c), 'query') : {};
      const body = r.body ? parseWith(r.body, await readJson(c), 'body') : undefined;
      return r.handler(c, { body, query, key });
    });
  }
}
