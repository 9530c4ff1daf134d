// /messages: send, batch send, one message's timeline, the filtered list.
import type { ApiDeps } from '../http/deps.js';
import { parseAddress } from '../util/address.js';
import { listBody, listDoc, range } from './common.js';
import { notFound } from './errors.js';
import type { createIdempotency } from './idempotency.js';
import {
  acceptedDoc,
  batchDoc,
  batchSchema,
  listQuery,
  messageDoc,
  messageSummaryDoc,
  sendSchema,
} from './message-schemas.js';
import { messageSummary, messageView } from './message-views.js';
import { defineRoute, type Route } from './registry.js';
import { sendBatch, sendMessage } from './send.js';

export function messageRoutes(deps: ApiDeps, idempotent: ReturnType<typeof createIdempotency>): Route[] {
  const now = deps.clock ?? Date.now;
  const { store } = deps;
  return [
    defineRoute({
      method: 'post',
      path: '/messages',
      scope: 'send',
      tag: 'messages',
      summary: 'Send a message',
      description:
        'Builds a MIME message from the JSON and queues it through the same pipeline as SMTP (From must be within a ' +
        'configured domain; tracking rewrite; DKIM). Answers once the message is durably queued.',
      body: sendSchema,
      idempotent: true,
      responses: {
        202: { description: 'Accepted and queued', schema: acceptedDoc },
        403: { description: 'Key lacks the send scope, or the From domain is not a configured sending domain' },
        413: { description: 'Message larger than smtp.maxMessageSize' },
        422: { description: 'Idempotency-Key already used with a different body by a request that was cut short' },
      },
      handler: (c, { body, key }) =>
        idempotent(c, key, body, async (parts) => ({ status: 202, body: await sendMessage(deps, body, now(), parts) })),
    }),
    defineRoute({
      method: 'post',
      path: '/messages/batch',
      scope: 'send',
      tag: 'messages',
      summary: 'Send one message per recipient with per-recipient variables',
      description: 'Up to 1000 recipients. Recipients that cannot be accepted are listed in rejected[] with the reason; the rest are queued.',
      body: batchSchema,
      idempotent: true,
      responses: {
        202: { description: 'Accepted (possibly partly)', schema: batchDoc },
        422: { description: 'Idempotency-Key already used with a different body by a request that was cut short' },
      },
      handler: (c, { body, key }) => idempotent(c, key, body, async (parts) => ({ status: 202, body: await sendBatch(deps, body, now(), parts) })),
    }),
    defineRoute({
      method: 'get',
      path: '/messages/{id}',
      scope: 'read',
      tag: 'messages',
      summary: 'A message with its recipients and full event timeline',
      params: { id: 'Message id (as in "250 2.0.0 Ok: queued as ID" or the send response)' },
      responses: { 200: { description: 'The message', schema: messageDoc }, 404: { description: 'Unknown message' } },
      handler: (c) => {
        const id = c.req.param('id')!;
        const m = store.queue.message(id);
        if (!m) throw notFound('message', id);
        return c.json(messageView(m, store.queue.recipientsOf(id), store.events.forMessage(id)));
      },
    }),
    defineRoute({
      method: 'get',
      path: '/messages',
      scope: 'read',
      tag: 'messages',
      summary: 'List messages, newest first',
      query: listQuery,
      responses: { 200: { description: 'A page of messages', schema: listDoc(messageSummaryDoc) } },
      handler: (c, { query: q }) => {
        const { since, until } = range(q);
        const { rows, total } = store.queue.listMessages({
          status: q.status,
          tag: q.tag,
          domain: q.domain?.toLowerCase(),
          recipient: q.recipient === undefined ? undefined : (parseAddress(q.recipient)?.address ?? q.recipient.trim()),
          since,
          until,
          limit: q.per_page,
          offset: (q.page - 1) * q.per_page,
        });
        const byMessage = new Map<string, ReturnType<typeof store.queue.recipientsOf>>();
        for (const r of store.queue.recipientsOfMessages(rows.map((m) => m.id))) {
          let list = byMessage.get(r.message_id);
          if (!list) byMessage.set(r.message_id, (list = []));
          list.push(r);
        }
        const data = rows.map((m) => messageSummary(m, byMessage.get(m.id) ?? []));
        return c.json(listBody(data, q.page, q.per_page, total));
      },
    }),
  ];
}
