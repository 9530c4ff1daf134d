// openapi.json, generated from the route table (registry.ts): the request
// schemas here are the very zod objects the handlers validate with.
import { z } from 'zod';
import type { Route } from './registry.js';

const jsonSchema = (s: z.ZodType): Record<string, unknown> => {
  const out = z.toJSONSchema(s, { io: 'input', unrepresentable: 'any' }) as Record<string, unknown>;
  delete out.$schema;
  return out;
};

const ErrorSchema = z
  .object({
    error: z.object({
      code: z.string().meta({ description: 'Stable machine-readable code, e.g. invalid_request, missing_api_key' }),
      message: z.string(),
      field: z.string().optional().meta({ description: 'For validation errors: the offending field, e.g. to[0]' }),
    }),
  })
  .meta({ description: 'Every error response' });

const RATE_HEADERS = {
  'X-RateLimit-Limit': { $ref: '#/components/headers/X-RateLimit-Limit' },
  'X-RateLimit-Remaining': { $ref: '#/components/headers/X-RateLimit-Remaining' },
  'X-RateLimit-Reset': { $ref: '#/components/headers/X-RateLimit-Reset' },
};

const errorResponse = (description: string) => ({
  description,
  headers: RATE_HEADERS,
  content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } },
});

const SCOPE_TEXT: Record<string, string> = {
  send: 'send (or admin)',
  read: 'read (or admin)',
  admin: 'admin',
};

export function openApiDocument(routes: Route[], opts: { version: string; serverUrl: string }) {
  const paths: Record<string, Record<string, unknown>> = {};
  for (const r of routes) {
    const parameters: Record<string, unknown>[] = [];
    for (const name of [...r.path.matchAll(/\{(\w+)\}/g)].map((m) => m[1])) {
      parameters.push({ name, in: 'path', required: true, schema: { type: 'string' }, description: r.params?.[name] });
    }
    if (r.query) {
      const q = jsonSchema(r.query) as { properties?: Record<string, Record<string, unknown>>; required?: string[] };
      for (const [name, schema] of Object.entries(q.properties ?? {})) {
        const { description, ...rest } = schema;
        parameters.push({ name, in: 'query', required: q.required?.includes(name) ?? false, schema: rest, description });
      }
    }
    if (r.idempotent) {
      parameters.push({
        name: 'Idempotency-Key',
        in: 'header',
        required: false,
        schema: { type: 'string', maxLength: 255 },
        description: 'A repeated request with the same key (per API key, within 24 h) returns the first response instead of sending again.',
      });
    }
    const responses: Record<string, unknown> = {};
    for (const [status, doc] of Object.entries(r.responses)) {
      responses[status] = {
        description: doc.description,
        headers: RATE_HEADERS,
        ...(doc.schema ? { content: { [doc.contentType ?? 'application/json']: { schema: jsonSchema(doc.schema) } } } : {}),
      };
    }
    responses['400'] ??= errorResponse('Malformed JSON or invalid fields (the message names the field)');
    responses['401'] = errorResponse('Missing or invalid API key');
    responses['403'] ??= errorResponse(`The API key lacks the ${r.scope} scope`);
    responses['429'] = {
      ...errorResponse('Rate limited (http.rateLimit requests per second per key)'),
      headers: { ...RATE_HEADERS, 'Retry-After': { schema: { type: 'integer' }, description: 'Seconds to wait' } },
    };
    const scope = SCOPE_TEXT[r.scope] ?? r.scope;
    (paths[r.path] ??= {})[r.method] = {
      operationId: `${r.method}${r.path.replace(/\{(\w+)\}/g, 'By_$1').replace(/[^A-Za-z0-9]+(.)?/g, (_m, ch: string | undefined) => (ch ?? '').toUpperCase())}`,
      tags: [r.tag],
      summary: r.summary,
      description: `${r.description ? `${r.description}\n\n` : ''}Required scope: ${scope}.`,
      'x-required-scope': r.scope,
      parameters,
      ...(r.body ? { requestBody: { required: true, content: { 'application/json': { schema: jsonSchema(r.body) } } } } : {}),
      responses,
    };
  }
  paths['/openapi.json'] = {
    get: {
      operationId: 'getOpenApi',
      tags: ['meta'],
      summary: 'This document',
      description: 'No API key required.',
      security: [],
      responses: { 200: { description: 'OpenAPI 3.1 document', content: { 'application/json': { schema: { type: 'object' } } } } },
    },
  };
  return {
    openapi: '3.1.0',
    info: {
      title: 'relaygate HTTP API',
      version: opts.version,
      description:
        'Send mail, follow each message, read stats, manage domains, suppressions, webhooks and API keys. ' +
        'Authenticate with "Authorization: Bearer KEY" or "X-API-Key: KEY". Scopes: send (POST messages), ' +
        'read (GET messages, stats, bounces, suppressions, domains), admin (everything, including domain, ' +
        'suppression, webhook and API key changes). Timestamps are ISO 8601 (UTC). Lists are paginated: ' +
        '{"data":[...],"pagination":{"page","per_page","total","has_next"}}.',
    },
    servers: [{ url: opts.serverUrl }],
    security: [{ bearerAuth: [] }, { apiKeyHeader: [] }],
    paths,
    components: {
      securitySchemes: {
        bearerAuth: { type: 'http', scheme: 'bearer' },
        apiKeyHeader: { type: 'apiKey', in: 'header', name: 'X-API-Key' },
      },
      schemas: { Error: jsonSchema(ErrorSchema) },
      headers: {
        'X-RateLimit-Limit': { schema: { type: 'integer' }, description: 'Requests allowed per second for this key' },
        'X-RateLimit-Remaining': { schema: { type: 'integer' }, description: 'Requests left in the current window' },
        'X-RateLimit-Reset': { schema: { type: 'integer' }, description: 'Unix time (seconds) when the window resets' },
      },
    },
  };
}
