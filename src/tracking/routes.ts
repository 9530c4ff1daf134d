// Tracking endpoints (SPEC §7). A redirect target always comes from our own
// database via an unguessable token, never from the URL: no open redirect.
import { getConnInfo } from '@hono/node-server/conninfo';
import { Hono, type Context } from 'hono';
import { html } from 'hono/html';
import ipaddr from 'ipaddr.js';
import type { Logger } from 'pino';
import type { Config } from '../config/schema.js';
import type { Metrics } from '../metrics.js';
import type { Store } from '../store/index.js';
import type { TokenInfo } from '../store/tracking.js';
import { ipInCidr } from '../smtp/listener.js';
import { locationFor } from '../util/location.js';
import { classifyHit } from './hit-classify.js';
import type { HitRecorder } from './recorder.js';

export interface TrackingDeps {
  config: Config;
  store: Store;
  recorder: HitRecorder;
  logger: Logger;
  metrics?: Metrics;
  clock?: () => number;
}

/** 43-byte transparent 1×1 GIF89a. */
export const PIXEL = Buffer.from('R0lGODlhAQABAIAAAP///wAAACH5BAEAAAAALAAAAAABAAEAAAICRAEAOw==', 'base64');
const TOKEN_RE = /^[A-Za-z0-9_-]{22}$/;
const SCANNER_WINDOW_MS = 5000;


export function clientIp(c: Context, trusted: string[]): string {
  let ip = '';
  try {
    ip = getConnInfo(c).remote.address ?? '';
  } catch {
    ip = '';
  }
  if (ip && trusted.length && trusted.some((cidr) => ipInCidr(ip, cidr))) {
    // Walk X-Forwarded-For from the right: the first hop that is not one of our proxies is the client.
    const hops = (c.req.header('x-forwarded-for') ?? '')
      .split(',')
      .map((s) => s.trim())
      .filter((s) => ipaddr.isValid(s));
    for (let i = hops.length - 1; i >= 0; i--) {
      if (!trusted.some((cidr) => ipInCidr(hops[i], cidr))) return hops[i];
    }
  }
  return ip;
}

const notFound = (c: Context) =>
  c.html(html`<!doctype html><title>Not found</title><p>This link is not valid.</p>`, 404, {
    'Cache-Control': 'no-store',
  });

export function trackingRoutes(deps: TrackingDeps): Hono {
  const app = new Hono();
  const now = deps.clock ?? Date.now;
  const lookup = (token: string, kind: TokenInfo['kind']): TokenInfo | undefined => {
    if (!TOKEN_RE.test(token)) return undefined;
    const t = deps.store.tracking.lookup(token);
    return t && t.kind === kind ? t : undefined;
  };

  function hit(c: Context, token: TokenInfo, kind: 'open' | 'click') {
    const at = now();
    const userAgent = c.req.header('user-agent') ?? '';
    const ip = clientIp(c, deps.config.http.trustedProxies);
    const cls = classifyHit({
      userAgent,
      ip,
      kind,
      at,
      deliveredAt: deps.store.tracking.deliveredAt(token.recipient_id) ?? undefined,
      linkIndex: token.link_index ?? undefined,
      priorClickLinkIndexes: kind === 'click' ? deps.store.tracking.recentClickLinks(token.recipient_id, at - SCANNER_WINDOW_MS) : undefined,
    });
    deps.recorder.add({
      token,
      at,
      ip,
      userAgent,
      isBot: cls.isBot,
      isProxy: cls.isProxy,
      detail: { ...cls.ua, ...(cls.reason ? { flag_reason: cls.reason } : {}) },
    });
    deps.metrics?.trackingHits.inc({ kind, result: cls.isBot ? 'bot' : cls.isProxy ? 'proxy' : 'human' });
  }

  app.get('/t/c/:token', (c) => {
    const token = lookup(c.req.param('token'), 'c');
    if (!token?.url) {
      deps.metrics?.trackingHits.inc({ kind: 'click', result: 'unknown' });
      return notFound(c);
    }
    hit(c, token, 'click');
    return c.body(null, 302, { Location: locationFor(token.url), 'Cache-Control': 'no-store, private', 'Referrer-Policy': 'no-referrer' });
  });

  app.get('/t/o/:token', (c) => {
    const token = lookup(c.req.param('token'), 'o');
    if (!token) {
      deps.metrics?.trackingHits.inc({ kind: 'open', result: 'unknown' });
      return notFound(c);
    }
    hit(c, token, 'open');
    return c.body(new Uint8Array(PIXEL), 200, {
      'Content-Type': 'image/gif',
      'Content-Length': String(PIXEL.length),
      'Cache-Control': 'no-store, private',
    });
  });

  // GET only shows a confirmation: mail scanners follow links, and must not unsubscribe anyone (RFC 8058 §2).
  app.get('/t/u/:token', (c) => {
    const token = lookup(c.req.param('token'), 'u');
    if (!token) return notFound(c);
    return c.html(
      html`<!doctype html><html><head><meta charset="utf-8"><title>Unsubscribe</title></head>
<body><h1>Unsubscribe</h1><p>Stop receiving mail from ${token.domain} at ${token.email}?</p>
<form method="post"><input type="hidden" name="List-Unsubscribe" value="One-Click"><button type="submit">Unsubscribe</button></form></body></html>`,
      200,
      { 'Cache-Control': 'no-store' },
    );
  });

  app.post('/t/u/:token', async (c) => {
    const token = lookup(c.req.param('token'), 'u');
    if (!token) return notFound(c);
    const at = now();
    const added = deps.store.tracking.unsubscribe(token, at, {
      ip: clientIp(c, deps.config.http.trustedProxies),
      user_agent: c.req.header('user-agent') ?? '',
    });
    deps.logger.info({ msg_id: token.message_id, rcpt: token.email, new: added }, 'unsubscribed');
    return c.html(
      html`<!doctype html><html><head><meta charset="utf-8"><title>Unsubscribed</title></head>
<body><h1>You are unsubscribed</h1><p>${token.email} will no longer receive mail from ${token.domain}.</p></body></html>`,
      200,
      { 'Cache-Control': 'no-store' },
    );
  });

  return app;
}
