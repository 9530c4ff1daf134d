// /webhooks: endpoints and the events they want. The signing secret is shown
// once, at creation. Each endpoint's recent delivery attempts are visible,
// so a failing receiver can be debugged without reading gateway logs.
import { z } from 'zod';
import type { ApiDeps } from '../http/deps.js';
import { EVENT_TYPES } from '../store/events.js';
import type { WebhookRow } from '../store/webhooks.js';
import { newId, newToken } from '../util/ids.js';
import { webhookUrlProblem } from '../webhooks/url-policy.js';
import { isoDoc, iso, listDoc, pageOf, pageParams } from './common.js';
import { badRequest, notFound } from './errors.js';
import { defineRoute, type Route } from './registry.js';

const attemptDoc = z.object({
  id: z.number().int(),
  event_id: z.string(),
  status: z.enum(['pending', 'delivered', 'failed']),
  attempts: z.number().int(),
  http_status: z.number().int().nullable(),
  error: z.string().nullable(),
  created_at: isoDoc,
  updated_at: isoDoc,
  next_attempt_at: isoDoc.nullable(),
});

const webhookDoc = z.object({
  id: z.string(),
  url: z.string(),
  events: z.array(z.enum(EVENT_TYPES)),
  created_at: isoDoc,
  recent_attempts: z.array(attemptDoc),
});

export function webhookRoutes(deps: ApiDeps): Route[] {
  const { store, config } = deps;
  const now = deps.clock ?? Date.now;

  const attempts = (id: string, limit: number) =>
    store.webhooks.recent(id, limit).map((a) => ({
      id: a.id,
      event_id: `evt_${a.event_id}`,
      status: a.status,
      attempts: a.attempts,
      http_status: a.last_status,
      error: a.last_error,
      created_at: iso(a.created_at)!,
      updated_at: iso(a.updated_at)!,
      next_attempt_at: a.status === 'pending' ? iso(a.next_attempt_at) : null,
    }));
  const view = (w: WebhookRow, recent: number) => ({
    id: w.id,
    url: w.url,
    events: JSON.parse(w.events) as string[],
    created_at: iso(w.created_at)!,
    recent_attempts: attempts(w.id, recent),
  });
  const get = (id: string) => {
    const w = store.webhooks.get(id);
    if (!w) throw notFound('webhook', id);
    return w;
  };

  return [
    defineRoute({
      method: 'get',
      path: '/webhooks',
      scope: 'admin',
      tag: 'webhooks',
      summary: 'List webhooks (with their last 5 delivery attempts)',
      description: 'Admin only: webhook URLs often carry tokens of their own.',
      query: z.object(pageParams),
      responses: { 200: { description: 'Webhooks', schema: listDoc(webhookDoc) } },
      handler: (c, { query: q }) => c.json(pageOf(store.webhooks.list().map((w) => view(w, 5)), q.page, q.per_page)),
    }),
    defineRoute({
      method: 'post',
      path: '/webhooks',
      scope: 'admin',
      tag: 'webhooks',
      summary: 'Add a webhook',
      description:
        'Each event is POSTed as {id, type, created_at, message_id, recipient, data} with X-Relaygate-Timestamp and ' +
        'X-Relaygate-Signature: sha256=HEX(HMAC-SHA256(secret, timestamp + "." + body)); failures are retried with backoff for 24 h. ' +
        'Loopback and private addresses are allowed; link-local and cloud metadata addresses are refused (webhooks.allowLinkLocal).',
      body: z.object({
        url: z.string().min(1).max(2048),
        events: z.array(z.enum(EVENT_TYPES)).min(1).optional().meta({ description: 'Event types to receive; default: all' }),
        secret: z.string().min(1).max(256).optional().meta({ description: 'Signing secret; generated (and returned once) when omitted' }),
      }),
      responses: {
        201: { description: 'The webhook, with its secret (shown only now)', schema: webhookDoc.extend({ secret: z.string() }) },
      },
      handler: (c, { body }) => {
        const problem = webhookUrlProblem(body.url, config.webhooks.allowLinkLocal);
        if (problem) throw badRequest('invalid_webhook_url', `url: ${problem}`, 'url');
        const row: WebhookRow = {
          id: `wh_${newId(now())}`,
          url: body.url,
          events: JSON.stringify([...new Set(body.events ?? EVENT_TYPES)]),
          secret: body.secret ?? `whsec_${newToken(24)}`,
          created_at: now(),
        };
        store.webhooks.add(row);
        deps.onWebhookChange?.();
        return c.json({ ...view(row, 0), secret: row.secret }, 201);
      },
    }),
    defineRoute({
      method: 'get',
      path: '/webhooks/{id}',
      scope: 'admin',
      tag: 'webhooks',
      summary: 'One webhook with its last 50 delivery attempts',
      params: { id: 'Webhook id' },
      responses: { 200: { description: 'The webhook', schema: webhookDoc }, 404: { description: 'Unknown webhook' } },
      handler: (c) => c.json(view(get(c.req.param('id')!), 50)),
    }),
    defineRoute({
      method: 'delete',
      path: '/webhooks/{id}',
      scope: 'admin',
      tag: 'webhooks',
      summary: 'Remove a webhook (pending deliveries to it are dropped)',
      params: { id: 'Webhook id' },
      responses: {
        200: { description: 'Removed', schema: z.object({ id: z.string(), deleted: z.literal(true) }) },
        404: { description: 'Unknown webhook' },
      },
      handler: (c) => {
        const w = get(c.req.param('id')!);
        store.webhooks.remove(w.id);
        return c.json({ id: w.id, deleted: true as const });
      },
    }),
  ];
}
