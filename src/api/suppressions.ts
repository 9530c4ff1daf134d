// /suppressions: per sending domain, as SPEC §4 and §7 use them (a suppressed
// recipient is accepted but never delivered).
import { z } from 'zod';
import type { ApiDeps } from '../http/deps.js';
import type { SuppressionRow } from '../store/tenants.js';
import { normaliseDomain, parseAddress } from '../util/address.js';
import { isoDoc, iso, listBody, listDoc, pageParams } from './common.js';
import { ApiError, badRequest, notFound } from './errors.js';
import { defineRoute, type Route } from './registry.js';

const suppressionDoc = z.object({ domain: z.string(), email: z.string(), reason: z.string(), created_at: isoDoc });
const view = (r: SuppressionRow) => ({ domain: r.domain, email: r.email, reason: r.reason, created_at: iso(r.created_at)! });

export function suppressionRoutes(deps: ApiDeps): Route[] {
  const { store } = deps;
  const now = deps.clock ?? Date.now;

  function domainNames(domain: string | undefined, field: string): string[] {
    if (domain === undefined) {
      const all = store.tenants.domains().map((d) => d.name);
      if (!all.length) throw badRequest('invalid_request', `${field}: no domains are configured`, field);
      return all;
    }
    const name = normaliseDomain(domain.trim().toLowerCase());
    if (!name || !store.tenants.domain(name)) throw new ApiError(404, 'domain_not_found', `domain ${domain} is not configured`, { field });
    return [name];
  }

  return [
    defineRoute({
      method: 'get',
      path: '/suppressions',
      scope: 'read',
      tag: 'suppressions',
      summary: 'List suppressed recipients',
      query: z.object({
        domain: z.string().max(253).optional(),
        reason: z.string().max(64).optional().meta({ description: 'e.g. unsubscribe, manual' }),
        ...pageParams,
      }),
      responses: { 200: { description: 'A page of suppressions', schema: listDoc(suppressionDoc) } },
      handler: (c, { query: q }) => {
        const { rows, total } = store.tenants.suppressions({
          domain: q.domain?.toLowerCase() ?? null,
          reason: q.reason ?? null,
          limit: q.per_page,
          offset: (q.page - 1) * q.per_page,
        });
        return c.json(listBody(rows.map(view), q.page, q.per_page, total));
      },
    }),
    defineRoute({
      method: 'post',
      path: '/suppressions',
      scope: 'admin',
      tag: 'suppressions',
      summary: 'Suppress a recipient',
      description: 'Without domain, the address is suppressed on every configured domain.',
      body: z.object({
        email: z.string().min(3).max(320),
        domain: z.string().max(253).optional().meta({ description: 'Sending domain; default: all configured domains' }),
        reason: z.string().min(1).max(64).default('manual'),
      }),
      responses: {
        201: { description: 'The suppressions now in place', schema: z.object({ data: z.array(suppressionDoc), created: z.number().int() }) },
        404: { description: 'Unknown domain' },
      },
      handler: (c, { body }) => {
        const parsed = parseAddress(body.email);
        if (!parsed) throw badRequest('invalid_address', `email: "${body.email.slice(0, 100)}" is not a valid email address`, 'email');
        const at = now();
        let created = 0;
        const data: ReturnType<typeof view>[] = [];
        for (const domain of domainNames(body.domain, 'domain')) {
          if (store.tenants.suppress(domain, parsed.address, body.reason, at)) created++;
          data.push(view(store.tenants.isSuppressed(domain, parsed.address)!));
        }
        return c.json({ data, created }, 201);
      },
    }),
    defineRoute({
      method: 'delete',
      path: '/suppressions/{email}',
      scope: 'admin',
      tag: 'suppressions',
      summary: 'Remove a suppression',
      description: 'On one domain (?domain=) or on all of them.',
      params: { email: 'The suppressed address (URL-encoded)' },
      query: z.object({ domain: z.string().max(253).optional() }),
      responses: {
        200: { description: 'Removed', schema: z.object({ email: z.string(), removed: z.number().int() }) },
        404: { description: 'The address is not suppressed' },
      },
      handler: (c, { query }) => {
        const email = c.req.param('email')!.trim();
        const removed = store.tenants.unsuppress(email, query.domain?.toLowerCase() ?? null);
        if (!removed) throw notFound('suppression', email);
        return c.json({ email: email.toLowerCase(), removed });
      },
    }),
  ];
}
