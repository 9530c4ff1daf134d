// Shapes shared by the routes: pagination, time filters, ISO timestamps.
import { z } from 'zod';
import { badRequest } from './errors.js';

export const MAX_PER_PAGE = 1000;

export const pageParams = {
  page: z.coerce.number().int().min(1).default(1).meta({ description: 'Page number, from 1' }),
  per_page: z.coerce
    .number()
    .int()
    .min(1)
    .max(MAX_PER_PAGE)
    .default(50)
    .meta({ description: `Items per page, 1-${MAX_PER_PAGE} (default 50)` }),
};

const ISO_DATE = /^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?)?$/i;

/** ISO 8601 (a date alone is UTC midnight; a time without zone is UTC) or Unix seconds. */
export function parseTime(value: string): number | null {
  const v = value.trim();
  if (/^\d{1,12}$/.test(v)) return Number(v) * 1000;
  if (!ISO_DATE.test(v)) return null;
  const zoned = /(Z|[+-]\d{2}:?\d{2})$/i.test(v) || !/[T ]/.test(v) ? v : `${v}Z`;
  const t = Date.parse(zoned.replace(' ', 'T'));
  return Number.isFinite(t) ? t : null;
}

export const timeParam = (description: string) =>
  z
    .string()
    .refine((v) => parseTime(v) !== null, 'expected an ISO 8601 date-time or Unix seconds')
    .optional()
    .meta({ description });

export const timeRange = {
  since: timeParam('From this time (inclusive): ISO 8601 or Unix seconds'),
  until: timeParam('Until this time (exclusive): ISO 8601 or Unix seconds'),
};

/** Converts a since/until pair, refusing an empty or inverted range. */
export function range(q: { since?: string; until?: string }, defaults: { since?: number; until?: number } = {}) {
  const since = q.since !== undefined ? parseTime(q.since)! : defaults.since;
  const until = q.until !== undefined ? parseTime(q.until)! : defaults.until;
  if (since !== undefined && until !== undefined && since >= until) throw badRequest('invalid_request', 'since must be before until', 'since');
  return { since, until };
}

export const iso = (ms: number | null | undefined): string | null => (ms === null || ms === undefined ? null : new Date(ms).toISOString());

export function listBody<T>(data: T[], page: number, perPage: number, total: number) {
  return { data, pagination: { page, per_page: perPage, total, has_next: page * perPage < total } };
}

/** A page of an in-memory list, in the same shape. */
export function pageOf<T>(all: T[], page: number, perPage: number) {
  return listBody(all.slice((page - 1) * perPage, page * perPage), page, perPage, all.length);
}

export const paginationDoc = z.object({
  page: z.number().int(),
  per_page: z.number().int(),
  total: z.number().int(),
  has_next: z.boolean(),
});

export const listDoc = (item: z.ZodType) => z.object({ data: z.array(item), pagination: paginationDoc });

export const isoDoc = z.string().meta({ description: 'ISO 8601 timestamp (UTC)', format: 'date-time' });
