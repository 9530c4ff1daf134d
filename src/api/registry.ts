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

export async function readJson(c: Context): Promise<unknown> {
  const text = await c.req.text();
  if (!text.trim()) throw new ApiError(400, 'invalid_json', 'Request body is empty; expected a JSON document');
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
