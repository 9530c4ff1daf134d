// Who may call what: every route refuses a missing key (401) and each key
// without its scope (403), and works with the right one. The route list comes
// from openapi.json, so a new route without a case here fails the test.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import pino from 'pino';
import { createApiKey } from '../../src/auth/api-keys.js';
import { createApiRoutes } from '../../src/api/index.js';
import { createDomainService } from '../../src/domains/service.js';
import type { ApiDeps } from '../../src/http/deps.js';
import { createMetrics } from '../../src/metrics.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { apiClient, type Call } from './client.js';

let t: TestGateway;
let api: Call;
const keys: Record<'send' | 'read' | 'admin', string> = { send: '', read: '', admin: '' };

before(async () => {
  t = await startTestGateway({ http: { rateLimit: 1000 } });
  await createDomainService({ config: t.config, store: t.gw.store }).add('example.test');
  api = apiClient(t.httpUrl);
  for (const s of ['send', 'read', 'admin'] as const) keys[s] = createApiKey(t.gw.store, s, [s]).key;
});
after(async () => {
  await t?.stop();
});

interface Case {
  method: string;
  route: string;
  scope: 'send' | 'read' | 'admin';
  path: () => string;
  body?: () => unknown;
  ok: number;
  /** Keeps what the call created, for later cases. */
  then?: (json: any) => void;
}

const ids: Record<string, string> = {};
const msg = { from: 'app@example.test', to: ['x@nowhere.test'], text: 'hi' };

const CASES: Case[] = [
  { method: 'POST', route: '/messages', scope: 'send', path: () => '/messages', body: () => msg, ok: 202, then: (j) => (ids.message = j.id) },
  { method: 'POST', route: '/messages/batch', scope: 'send', path: () => '/messages/batch', body: () => ({ ...msg, to: undefined, recipients: [{ to: 'y@nowhere.test' }] }), ok: 202 },
  { method: 'GET', route: '/messages', scope: 'read', path: () => '/messages', ok: 200 },
  { method: 'GET', route: '/messages/{id}', scope: 'read', path: () => `/messages/${ids.message}`, ok: 200 },
  { method: 'GET', route: '/stats', scope: 'read', path: () => '/stats', ok: 200 },
  { method: 'GET', route: '/stats/links', scope: 'read', path: () => '/stats/links', ok: 200 },
  { method: 'GET', route: '/bounces', scope: 'read', path: () => '/bounces', ok: 200 },
  { method: 'GET', route: '/suppressions', scope: 'read', path: () => '/suppressions', ok: 200 },
  { method: 'POST', route: '/suppressions', scope: 'admin', path: () => '/suppressions', body: () => ({ email: 's@x.test' }), ok: 201 },
  { method: 'DELETE', route: '/suppressions/{email}', scope: 'admin', path: () => '/suppressions/s%40x.test', ok: 200 },
  { method: 'GET', route: '/domains', scope: 'read', path: () => '/domains', ok: 200 },
  { method: 'POST', route: '/domains', scope: 'admin', path: () => '/domains', body: () => ({ domain: 'second.test', algorithm: 'ed25519' }), ok: 201 },
  { method: 'GET', route: '/domains/{name}', scope: 'read', path: () => '/domains/second.test', ok: 200 },
  { method: 'PATCH', route: '/domains/{name}', scope: 'admin', path: () => '/domains/second.test', body: () => ({ tracking_host: 'track.second.test' }), ok: 200 },
  { method: 'POST', route: '/domains/{name}/verify', scope: 'admin', path: () => '/domains/second.test/verify', ok: 200 },
  { method: 'DELETE', route: '/domains/{name}', scope: 'admin', path: () => '/domains/second.test', ok: 200 },
  { method: 'GET', route: '/webhooks', scope: 'admin', path: () => '/webhooks', ok: 200 },
  { method: 'POST', route: '/webhooks', scope: 'admin', path: () => '/webhooks', body: () => ({ url: 'http://127.0.0.1:9/hook', events: ['bounced'] }), ok: 201, then: (j) => (ids.webhook = j.id) },
  { method: 'GET', route: '/webhooks/{id}', scope: 'admin', path: () => `/webhooks/${ids.webhook}`, ok: 200 },
  { method: 'DELETE', route: '/webhooks/{id}', scope: 'admin', path: () => `/webhooks/${ids.webhook}`, ok: 200 },
  { method: 'GET', route: '/api-keys', scope: 'admin', path: () => '/api-keys', ok: 200 },
  { method: 'POST', route: '/api-keys', scope: 'admin', path: () => '/api-keys', body: () => ({ name: 'ci', scopes: ['read'] }), ok: 201, then: (j) => (ids.key = j.id) },
  { method: 'DELETE', route: '/api-keys/{id}', scope: 'admin', path: () => `/api-keys/${ids.key}`, ok: 200 },
];

describe('scopes, route by route', () => {
  test('the cases cover every route in openapi.json', async () => {
    const doc = await api('GET', '/openapi.json');
    const documented = Object.entries(doc.json.paths as Record<string, object>)
      .flatMap(([p, ops]) => Object.keys(ops).map((m) => `${m.toUpperCase()} ${p}`))
      .filter((r) => r !== 'GET /openapi.json')
      .sort();
    assert.deepEqual(CASES.map((c) => `${c.method} ${c.route}`).sort(), documented);
  });

  for (const c of CASES) {
    test(`${c.method} ${c.route} (${c.scope})`, async () => {
      const body = c.body?.();
      const none = await api(c.method, c.path(), { body });
      assert.equal(none.status, 401, none.text);
      assert.equal(none.json.error.code, 'missing_api_key');
      assert.equal(none.headers.get('www-authenticate'), 'Bearer realm="relaygate"');
      for (const wrong of (['send', 'read', 'admin'] as const).filter((s) => s !== c.scope && s !== 'admin')) {
        const r = await api(c.method, c.path(), { key: keys[wrong], body });
        assert.equal(r.status, 403, `${wrong}: ${r.text}`);
        assert.equal(r.json.error.code, 'insufficient_scope');
        assert.ok(r.headers.get('x-ratelimit-remaining'));
      }
      const ok = await api(c.method, c.path(), { key: keys[c.scope], body });
      assert.equal(ok.status, c.ok, ok.text);
      c.then?.(ok.json);
    });
  }

  test('admin implies send and read; X-API-Key works; unknown and revoked keys are 401', async () => {
    assert.equal((await api('POST', '/messages', { key: keys.admin, body: msg })).status, 202);
    assert.equal((await api('GET', '/stats', { key: keys.admin })).status, 200);
    const viaHeader = await api('GET', '/stats', { headers: { 'X-API-Key': keys.read } });
    assert.equal(viaHeader.status, 200);
    const bad = await api('GET', '/stats', { key: 'rg_not-a-real-key' });
    assert.equal(bad.status, 401);
    assert.equal(bad.json.error.code, 'invalid_api_key');
    const created = await api('POST', '/api-keys', { key: keys.admin, body: { name: 'temp', scopes: ['read'] } });
    assert.match(created.json.key, /^rg_/);
    assert.equal((await api('GET', '/stats', { key: created.json.key })).status, 200);
    assert.equal((await api('DELETE', `/api-keys/${created.json.id}`, { key: keys.admin })).status, 200);
    assert.equal((await api('GET', '/stats', { key: created.json.key })).status, 401);
    assert.equal((await api('DELETE', `/api-keys/${created.json.id}`, { key: keys.admin })).status, 404);
    const listed = (await api('GET', '/api-keys', { key: keys.admin })).json.data.find((k: any) => k.id === created.json.id);
    assert.ok(listed.revoked_at);
    assert.equal(listed.key, undefined);
    const badScope = await api('POST', '/api-keys', { key: keys.admin, body: { name: 'x', scopes: ['root'] } });
    assert.equal(badScope.status, 400);
    assert.equal(badScope.json.error.field, 'scopes[0]');
  });
});

describe('errors', () => {
  test('unknown routes are JSON 404s; malformed JSON is a 400', async () => {
    const r = await api('GET', '/nope', { key: keys.read });
    assert.equal(r.status, 404);
    assert.equal(r.json.error.code, 'not_found');
    const bad = await api('POST', '/suppressions', { key: keys.admin, raw: '{nope' });
    assert.equal(bad.status, 400);
    assert.equal(bad.json.error.code, 'invalid_json');
    const empty = await api('POST', '/suppressions', { key: keys.admin, raw: '' });
    assert.equal(empty.status, 400);
  });

  test('openapi.json is public and describes the request schemas', async () => {
    const r = await api('GET', '/openapi.json');
    assert.equal(r.status, 200);
    assert.equal(r.json.openapi, '3.1.0');
    const post = r.json.paths['/messages'].post;
    assert.equal(post['x-required-scope'], 'send');
    const props = post.requestBody.content['application/json'].schema.properties;
    for (const f of ['from', 'to', 'cc', 'bcc', 'reply_to', 'subject', 'html', 'text', 'headers', 'attachments', 'tags', 'metadata', 'track', 'send_at']) {
      assert.ok(props[f], f);
    }
    assert.ok(r.json.paths['/messages/batch'].post.requestBody.content['application/json'].schema.properties.recipients);
    assert.ok(r.json.paths['/messages'].get.parameters.some((p: any) => p.name === 'per_page' && p.in === 'query'));
    assert.ok(r.json.paths['/messages'].post.parameters.some((p: any) => p.name === 'Idempotency-Key'));
    assert.ok(r.headers.get('x-ratelimit-limit'));
  });
});

describe('limits (in-process app)', () => {
  function app(extra: { rateLimit?: number; maxBodySize?: number }) {
    const config = { ...t.config, http: { ...t.config.http, ...extra } };
    const deps: ApiDeps = {
      config,
      store: t.gw.store,
      pipeline: undefined as never,
      domains: createDomainService({ config, store: t.gw.store }),
      metrics: createMetrics(),
      logger: pino({ level: 'silent' }),
    };
    return createApiRoutes(deps);
  }

  test('over http.rateLimit per key: 429 with Retry-After; every response carries X-RateLimit-*', async () => {
    const a = app({ rateLimit: 3 });
    const get = (key?: string) => a.request('/stats', { headers: key ? { authorization: `Bearer ${key}` } : {} });
    const seen: number[] = [];
    for (let i = 0; i < 3; i++) {
      const r = await get(keys.read);
      assert.equal(r.status, 200);
      assert.equal(r.headers.get('x-ratelimit-limit'), '3');
      seen.push(Number(r.headers.get('x-ratelimit-remaining')));
      const reset = Number(r.headers.get('x-ratelimit-reset'));
      assert.ok(reset >= Math.floor(Date.now() / 1000) && reset <= Date.now() / 1000 + 2, String(reset));
    }
    assert.deepEqual(seen, [2, 1, 0]);
    const limited = await get(keys.read);
    assert.equal(limited.status, 429);
    assert.equal(((await limited.json()) as any).error.code, 'rate_limited');
    assert.ok(Number(limited.headers.get('retry-after')) >= 1);
    assert.equal(limited.headers.get('x-ratelimit-remaining'), '0');
    // Another key has its own budget; refusals carry the headers too.
    const other = await get(keys.admin);
    assert.equal(other.status, 200);
    const forbidden = await a.request('/api-keys', { headers: { authorization: `Bearer ${keys.send}` } });
    assert.equal(forbidden.status, 403);
    assert.equal(forbidden.headers.get('x-ratelimit-limit'), '3');
    const anon = await get();
    assert.equal(anon.status, 401);
    assert.ok(anon.headers.get('x-ratelimit-remaining'));
    await new Promise((r) => setTimeout(r, 1100));
    assert.equal((await get(keys.read)).status, 200);
  });

  test('a body over http.maxBodySize is a 413 JSON error', async () => {
    const a = app({ maxBodySize: 1000 });
    const r = await a.request('/messages', {
      method: 'POST',
      headers: { authorization: `Bearer ${keys.send}`, 'content-type': 'application/json' },
      body: JSON.stringify({ ...msg, text: 'x'.repeat(2000) }),
    });
    assert.equal(r.status, 413);
    assert.equal(((await r.json()) as any).error.code, 'payload_too_large');
  });
});
