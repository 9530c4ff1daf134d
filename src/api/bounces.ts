// /bounces: failed recipients (bounced or expired) with class and the remote
// reply, as JSON or as the CSV failed-address export mail admins load into
// spreadsheets.
import { z } from 'zod';
import type { ApiDeps } from '../http/deps.js';
import { decodeMimeWords } from '../util/mime-words.js';
import { isoDoc, listBody, listDoc, pageParams, range, timeRange, iso } from './common.js';
import { defineRoute, type Route } from './registry.js';

export const BOUNCE_CLASSES = ['bad-mailbox', 'bad-domain', 'mailbox-full', 'message-too-large', 'policy', 'spam', 'other'] as const;

const bounceDoc = z.object({
  email: z.string(),
  status: z.enum(['bounced', 'expired']),
  bounce_class: z.string().nullable(),
  reply: z.string().nullable(),
  attempts: z.number().int(),
  message_id: z.string(),
  domain: z.string(),
  from: z.string(),
  subject: z.string().nullable(),
  at: isoDoc,
});

const CSV_COLUMNS = ['email', 'status', 'bounce_class', 'reply', 'attempts', 'message_id', 'domain', 'from', 'subject', 'at'] as const;

/** RFC 4180 quoting; free-text cells that a spreadsheet would run as a formula get a leading quote (CSV injection). */
function csvCell(v: unknown, freeText: boolean): string {
  let s = v === null || v === undefined ? '' : String(v);
  if (freeText && /^[=+\-@\t\r]/.test(s)) s = `'${s}`;
  return /[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

const CSV_PAGE = 5000;

export function bounceRoutes(deps: ApiDeps): Route[] {
  const { store } = deps;
  type Row = ReturnType<typeof store.queue.bounces>['rows'][number];
  const view = (r: Row) => ({
    email: r.email,
    status: r.status,
    bounce_class: r.bounce_class,
    reply: r.last_reply,
    attempts: r.attempts,
    message_id: r.message_id,
    domain: r.domain,
    from: r.mail_from,
    subject: r.subject === null ? null : decodeMimeWords(r.subject),
    at: iso(r.updated_at)!,
  });
  return [
    defineRoute({
      method: 'get',
      path: '/bounces',
      scope: 'read',
      tag: 'bounces',
      summary: 'Failed recipients (bounced or expired), newest first',
      description: 'format=csv returns every matching row (no pagination) as text/csv with a header line.',
      query: z.object({
        ...timeRange,
        class: z.enum(BOUNCE_CLASSES).optional().meta({ description: 'Only bounces of this class' }),
        domain: z.string().max(253).optional(),
        format: z.enum(['json', 'csv']).default('json'),
        ...pageParams,
      }),
      responses: {
        200: { description: 'JSON page of failed recipients, or the CSV export', schema: listDoc(bounceDoc) },
      },
      handler: (c, { query: q }) => {
        const r = range(q);
        const f = { since: r.since ?? 0, until: r.until ?? Number.MAX_SAFE_INTEGER, bounceClass: q.class ?? null, domain: q.domain?.toLowerCase() ?? null };
        if (q.format === 'json') {
          const { rows, total } = store.queue.bounces({ ...f, limit: q.per_page, offset: (q.page - 1) * q.per_page });
          return c.json(listBody(rows.map(view), q.page, q.per_page, total));
        }
        const lines = [CSV_COLUMNS.join(',')];
        for (let offset = 0; ; offset += CSV_PAGE) {
          const { rows } = store.queue.bounces({ ...f, limit: CSV_PAGE, offset });
          for (const row of rows) {
            const v = view(row);
            lines.push(CSV_COLUMNS.map((k) => csvCell(v[k], k === 'reply' || k === 'subject')).join(','));
          }
          if (rows.length < CSV_PAGE) break;
        }
        return c.body(`${lines.join('\r\n')}\r\n`, 200, {
          'Content-Type': 'text/csv; charset=utf-8',
          'Content-Disposition': 'attachment; filename="bounces.csv"',
        });
      },
    }),
  ];
}
