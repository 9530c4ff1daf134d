// /domains: the same domain service the CLI uses (SPEC §3), so `domain add`
// and POST /domains print the same records and verify returns one document.
import { z } from 'zod';
import type { ApiDeps } from '../http/deps.js';
import { isoDoc, listDoc, pageOf, pageParams } from './common.js';
import { badRequest } from './errors.js';
import { defineRoute, type Route } from './registry.js';

const recordDoc = z.object({ type: z.string(), name: z.string(), value: z.string(), purpose: z.string(), note: z.string().optional() });

const domainDoc = z.object({
  domain: z.string(),
  created_at: isoDoc,
  verified: z.boolean(),
  verified_at: isoDoc.nullable(),
  tracking_host: z.string().nullable(),
  tracking_host_verified: z.boolean(),
  dkim: z.array(z.object({ selector: z.string(), algorithm: z.enum(['rsa', 'ed25519']), status: z.string(), retire_at: isoDoc.nullable() })),
  records: z.array(recordDoc).meta({ description: 'DNS records to publish' }),
  last_verification: z.unknown().nullable(),
});

const verifyDoc = z.object({
  domain: z.string(),
  verified: z.boolean(),
  records: z.array(
    z.object({
      type: z.string(),
      name: z.string(),
      expected: z.string(),
      found: z.array(z.string()),
      status: z.enum(['pass', 'fail', 'missing']),
      purpose: z.string().meta({ description: 'spf, dkim, return-path, dmarc (advisory) or tracking' }),
      error: z.string().optional(),
      detail: z.string().optional(),
    }),
  ),
});

export function domainRoutes(deps: ApiDeps): Route[] {
  const svc = deps.domains;
  const name = (c: { req: { param(k: string): string | undefined } }) => c.req.param('name')!;
  return [
    defineRoute({
      method: 'get',
      path: '/domains',
      scope: 'read',
      tag: 'domains',
      summary: 'List sending domains',
      query: z.object(pageParams),
      responses: { 200: { description: 'Domains with their DNS records and status', schema: listDoc(domainDoc) } },
      handler: (c, { query: q }) => c.json(pageOf(svc.list(), q.page, q.per_page)),
    }),
    defineRoute({
      method: 'post',
      path: '/domains',
      scope: 'admin',
      tag: 'domains',
      summary: 'Add a sending domain (generates its DKIM key)',
      body: z.object({
        domain: z.string().min(1).max(253).optional().meta({ description: 'The domain name (required; "name" is accepted too)' }),
        name: z.string().min(1).max(253).optional(),
        selector: z.string().max(63).optional().meta({ description: 'DKIM selector, default rg1' }),
        algorithm: z.enum(['rsa', 'ed25519']).optional().meta({ description: 'Default rsa (2048 bit); ed25519 domains also get an RSA key' }),
        tracking_host: z.string().max(253).nullable().optional(),
      }),
      responses: {
        201: { description: 'The domain and the DNS records to publish', schema: domainDoc },
        409: { description: 'The domain already exists' },
      },
      handler: (c, { body }) => {
        const domain = body.domain ?? body.name;
        if (!domain) throw badRequest('invalid_request', 'domain: required', 'domain');
        const added = svc.add(domain, { selector: body.selector, algorithm: body.algorithm, trackingHost: body.tracking_host ?? null });
        return c.json(svc.get(added.domain), 201);
      },
    }),
    defineRoute({
      method: 'get',
      path: '/domains/{name}',
      scope: 'read',
      tag: 'domains',
      summary: 'One domain',
      params: { name: 'Domain name' },
      responses: { 200: { description: 'The domain', schema: domainDoc }, 404: { description: 'Unknown domain' } },
      handler: (c) => c.json(svc.get(name(c))),
    }),
    defineRoute({
      method: 'patch',
      path: '/domains/{name}',
      scope: 'admin',
      tag: 'domains',
      summary: 'Set or clear the tracking host',
      params: { name: 'Domain name' },
      body: z.object({ tracking_host: z.string().max(253).nullable() }),
      responses: { 200: { description: 'The domain', schema: domainDoc }, 404: { description: 'Unknown domain' } },
      handler: (c, { body }) => c.json(svc.setTrackingHost(name(c), body.tracking_host)),
    }),
    defineRoute({
      method: 'delete',
      path: '/domains/{name}',
      scope: 'admin',
      tag: 'domains',
      summary: 'Remove a domain (and its keys and credentials)',
      params: { name: 'Domain name' },
      responses: {
        200: { description: 'Removed', schema: z.object({ domain: z.string(), deleted: z.literal(true) }) },
        404: { description: 'Unknown domain' },
      },
      handler: (c) => {
        const d = svc.get(name(c));
        svc.remove(d.domain);
        return c.json({ domain: d.domain, deleted: true as const });
      },
    }),
    defineRoute({
      method: 'post',
      path: '/domains/{name}/verify',
      scope: 'admin',
      tag: 'domains',
      summary: 'Check the published DNS records now',
      description: 'SPF, DKIM, return-path MX, DMARC (advisory) and the tracking CNAME when set. Same document as `relaygate domain verify NAME --json`.',
      params: { name: 'Domain name' },
      responses: { 200: { description: 'Verification result', schema: verifyDoc }, 404: { description: 'Unknown domain' } },
      handler: async (c) => c.json(await svc.verify(name(c))),
    }),
  ];
}
