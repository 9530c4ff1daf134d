// /stats and /stats/links: read from the hourly rollups that every event bumps
// as it is written (store/events.ts), never from the event log, so a 30-day
// query costs the same with 1M events as with 10.
import { z } from 'zod';
import type { ApiDeps } from '../http/deps.js';
import type { StatsFilter } from '../store/stats.js';
import { isoDoc, listDoc, pageOf, pageParams, range, timeRange, iso } from './common.js';
import { badRequest } from './errors.js';
import { defineRoute, type Route } from './registry.js';

const COUNTERS = [
  'accepted',
  'queued',
  'scheduled',
  'delivered',
  'deferred',
  'bounced',
  'expired',
  'suppressed',
  'opened',
  'opened_unique',
  'clicked',
  'clicked_unique',
  'opened_flagged',
  'clicked_flagged',
  'unsubscribed',
] as const;

type Totals = Record<(typeof COUNTERS)[number], number> & { open_rate: number; click_rate: number; click_to_open_rate: number };

/**
 * Rates are fractions (0.25 = 25 %) of unique human opens/clicks: hits flagged as
 * link scanners or privacy proxies are counted apart (opened_flagged, clicked_flagged).
 */
export function withRates(counts: Record<string, number>): Totals {
  const t = Object.fromEntries(COUNTERS.map((k) => [k, counts[k] ?? 0])) as Totals;
  const ratio = (a: number, b: number) => (b > 0 ? a / b : 0);
  t.open_rate = ratio(t.opened_unique, t.delivered);
  t.click_rate = ratio(t.clicked_unique, t.delivered);
  t.click_to_open_rate = ratio(t.clicked_unique, t.opened_unique);
  return t;
}

const DAY = 86_400_000;
const MAX_PERIODS = 5000;

const statsQuery = z.object({
  ...timeRange,
  domain: z.string().max(253).optional(),
  tag: z.string().max(128).optional(),
  interval: z.enum(['day', 'hour']).default('day').meta({ description: 'Width of each series period (UTC)' }),
});

const totalsDoc = z.object({
  ...Object.fromEntries(COUNTERS.map((k) => [k, z.number().int()])),
  open_rate: z.number().meta({ description: 'opened_unique / delivered' }),
  click_rate: z.number().meta({ description: 'clicked_unique / delivered' }),
  click_to_open_rate: z.number().meta({ description: 'clicked_unique / opened_unique' }),
});

const linkDoc = z.object({
  url: z.string(),
  clicks: z.number().int(),
  clicks_unique: z.number().int(),
  first_at: isoDoc,
  last_at: isoDoc,
});

export function statsRoutes(deps: ApiDeps): Route[] {
  const now = deps.clock ?? Date.now;
  const { store } = deps;
  return [
    defineRoute({
      method: 'get',
      path: '/stats',
      scope: 'read',
      tag: 'stats',
      summary: 'Totals and a day/hour series',
      description: 'Default range: the last 30 days. Counters count recipients (accepted, delivered…) and hits (opened, clicked).',
      query: statsQuery,
      responses: {
        200: {
          description: 'Totals and series',
          schema: z.object({
            since: isoDoc,
            until: isoDoc,
            interval: z.enum(['day', 'hour']),
            totals: totalsDoc,
            series: z.array(totalsDoc.extend({ period: isoDoc })),
          }),
        },
      },
      handler: (c, { query: q }) => {
        const t = now();
        const r = range(q, { until: t });
        const until = r.until!;
        const since = r.since ?? until - 30 * DAY;
        const bucket = q.interval === 'hour' ? 3600 : 86400;
        const first = Math.floor(since / 1000 / bucket) * bucket;
        const periods = Math.ceil((until / 1000 - first) / bucket);
        if (periods > MAX_PERIODS) {
          throw badRequest('invalid_request', `interval: ${periods} ${q.interval}s requested; at most ${MAX_PERIODS} per query`, 'interval');
        }
        const f: StatsFilter = { since, until, domain: q.domain?.toLowerCase() ?? null, tag: q.tag ?? null };
        // Totals are the sum of the series rows: one pass over the rollups instead of two
        // (at 1M events each pass read ~24k rollup rows).
        const byPeriod = new Map<number, Record<string, number>>();
        const totals: Record<string, number> = {};
        for (const row of store.stats.series(f, bucket)) {
          let p = byPeriod.get(row.period);
          if (!p) byPeriod.set(row.period, (p = {}));
          p[row.metric] = row.n;
          totals[row.metric] = (totals[row.metric] ?? 0) + row.n;
        }
        // Every period is listed, empty ones as zeros, so charts need no gap filling.
        const series = [];
        for (let p = first; p * 1000 < until; p += bucket) series.push({ period: iso(p * 1000)!, ...withRates(byPeriod.get(p) ?? {}) });
        return c.json({ since: iso(since), until: iso(until), interval: q.interval, totals: withRates(totals), series });
      },
    }),
    defineRoute({
      method: 'get',
      path: '/stats/links',
      scope: 'read',
      tag: 'stats',
      summary: 'Clicks per URL, for one message or one tag',
      description: 'Only unflagged (human) clicks are counted.',
      query: z.object({
        message_id: z.string().max(64).optional(),
        tag: z.string().max(128).optional(),
        ...pageParams,
      }),
      responses: { 200: { description: 'Per-URL click counts, most clicked first', schema: listDoc(linkDoc) } },
      handler: (c, { query: q }) => {
        const rows = store.stats.links({ messageId: q.message_id, tag: q.tag }).map((r) => ({
          url: r.url,
          clicks: r.clicks,
          clicks_unique: r.clicks_unique,
          first_at: iso(r.first_at),
          last_at: iso(r.last_at),
        }));
        return c.json(pageOf(rows, q.page, q.per_page));
      },
    }),
  ];
}
