// /api-keys (admin): the same keys `relaygate apikey create|list|revoke` manage.
// A key is shown once, at creation; only its SHA-256 digest is stored.
import { z } from 'zod';
import { createApiKey, parseScopes, publicApiKey, SCOPES } from '../auth/api-keys.js';
import type { ApiDeps } from '../http/deps.js';
import { isoDoc, listDoc, pageOf, pageParams } from './common.js';
import { notFound } from './errors.js';
import { defineRoute, type Route } from './registry.js';

const keyDoc = z.object({
  id: z.string(),
  name: z.string(),
  prefix: z.string().meta({ description: 'First characters of the key, to recognise it' }),
  scopes: z.array(z.enum(SCOPES)),
  created_at: isoDoc,
  revoked_at: isoDoc.nullable(),
});

export function apiKeyRoutes(deps: ApiDeps): Route[] {
  const { store } = deps;
  return [
    defineRoute({
      method: 'get',
      path: '/api-keys',
      scope: 'admin',
      tag: 'api-keys',
      summary: 'List API keys (never the keys themselves)',
      query: z.object(pageParams),
      responses: { 200: { description: 'API keys, revoked ones included', schema: listDoc(keyDoc) } },
      handler: (c, { query: q }) => c.json(pageOf(store.tenants.apiKeys().map(publicApiKey), q.page, q.per_page)),
    }),
    defineRoute({
      method: 'post',
      path: '/api-keys',
      scope: 'admin',
      tag: 'api-keys',
      summary: 'Create an API key',
      body: z.object({
        name: z.string().min(1).max(100),
        scopes: z
          .array(z.enum(SCOPES))
          .min(1)
          .default(['send', 'read'])
          .meta({ description: 'send: POST messages; read: GET messages, stats, bounces, suppressions, domains; admin: everything' }),
      }),
      responses: { 201: { description: 'The key, shown only now', schema: keyDoc.extend({ key: z.string() }) } },
      handler: (c, { body }) => {
        const created = createApiKey(store, body.name, parseScopes(body.scopes));
        const row = store.tenants.apiKeys().find((k) => k.id === created.id)!;
        return c.json({ ...publicApiKey(row), key: created.key }, 201);
      },
    }),
    defineRoute({
      method: 'delete',
      path: '/api-keys/{id}',
      scope: 'admin',
      tag: 'api-keys',
      summary: 'Revoke an API key (takes effect at once)',
      params: { id: 'Key id (key_...)' },
      responses: {
        200: { description: 'Revoked', schema: z.object({ id: z.string(), revoked: z.literal(true) }) },
        404: { description: 'Unknown or already revoked key' },
      },
      handler: (c) => {
        const id = c.req.param('id')!;
        if (!store.tenants.revokeApiKey(id)) throw notFound('api key', id);
        return c.json({ id, revoked: true as const });
      },
    }),
  ];
}
