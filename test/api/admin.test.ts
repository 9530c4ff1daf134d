// Webhooks (signed, retried, SSRF-guarded), suppressions and domains over the API.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import pino from 'pino';
import { createApiRoutes } from '../../src/api/index.js';
import { createApiKey } from '../../src/auth/api-keys.js';
import { createDomainService } from '../../src/domains/service.js';
import type { ApiDeps } from '../../src/http/deps.js';
import { createMetrics } from '../../src/metrics.js';
import { startMxSink, startTestGateway, until, type MxSink, type TestGateway } from '../helpers/gateway.js';
import { apiClient, type Call } from './client.js';

let t: TestGateway;
let mx: MxSink;
let api: Call;
let admin: string;

interface Hit {
  headers: http.IncomingHttpHeaders;
  body: string;
  status: number;
}

/** A webhook receiver on loopback that answers 500 to its first `failures` calls. */
async function receiver(failures: number) {
  const hits: Hit[] = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      const status = hits.length < failures ? 500 : 200;
      hits.push({ headers: req.headers, body: Buffer.concat(chunks).toString(), status });
      res.writeHead(status).end();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    hits,
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`,
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}

before(async () => {
  t = await startTestGateway({ http: { rateLimit: 1000 } });
  await createDomainService({ config: t.config, store: t.gw.store }).add('example.test');
  t.dns.set('dest.test', [{ type: 'MX', exchange: 'mx.dest.test', priority: 10 }]);
  t.dns.set('mx.dest.test', [{ type: 'A', address: '127.0.0.7' }]);
  mx = await startMxSink('127.0.0.7', t.mxPort);
  api = apiClient(t.httpUrl);
  admin = createApiKey(t.gw.store, 'admin', ['admin']).key;
});
after(async () => {
  await mx?.close();
  await t?.stop();
});

describe('webhooks', () => {
  test('a receiver that fails twice gets the signed event on the third try; attempts are visible', async () => {
    const rx = await receiver(2);
    try {
      const created = await api('POST', '/webhooks', { key: admin, body: { url: rx.url, events: ['delivered'] } });
      assert.equal(created.status, 201, created.text);
      const { id, secret } = created.json;
      assert.match(id, /^wh_/);
      assert.match(secret, /^whsec_.{20,}/);
      assert.deepEqual(created.json.events, ['delivered']);

      const sent = await api('POST', '/messages', {
        key: admin,
        body: { from: 'app@example.test', to: 'hook@dest.test', text: 'x', metadata: { user_id: '42' } },
      });
      assert.equal(sent.status, 202);
      await until(() => rx.hits.some((h) => h.status === 200), 'webhook delivered', 25_000);
      assert.equal(rx.hits.length, 3);
      const ok = rx.hits[2];
      const ts = String(ok.headers['x-relaygate-timestamp']);
      assert.ok(Math.abs(Number(ts) - Date.now() / 1000) < 60);
      const expected = `sha256=${createHmac('sha256', secret).update(`${ts}.${ok.body}`).digest('hex')}`;
      assert.equal(ok.headers['x-relaygate-signature'], expected);
      const event = JSON.parse(ok.body);
      assert.equal(event.type, 'delivered');
      assert.equal(event.message_id, sent.json.id);
      assert.equal(event.recipient, 'hook@dest.test');
      assert.match(event.id, /^evt_/);
      assert.ok(!Number.isNaN(Date.parse(event.created_at)));
      assert.deepEqual(event.data.metadata, { user_id: '42' });
      assert.match(event.data.reply, /^250/);

      const one = await until(async () => {
        const r = await api('GET', `/webhooks/${id}`, { key: admin });
        return r.json.recent_attempts[0]?.status === 'delivered' && r;
      }, 'attempt recorded');
      assert.equal(one.json.secret, undefined);
      const attempt = one.json.recent_attempts[0];
      assert.equal(attempt.attempts, 3);
      assert.equal(attempt.http_status, 200);
      assert.equal(attempt.event_id, event.id);
      const list = await api('GET', '/webhooks', { key: admin });
      assert.equal(list.json.data.find((w: any) => w.id === id).secret, undefined);
      assert.equal((await api('DELETE', `/webhooks/${id}`, { key: admin })).status, 200);
      assert.equal((await api('GET', `/webhooks/${id}`, { key: admin })).status, 404);
    } finally {
      await rx.close();
    }
  });

  test('a given secret is used as is', async () => {
    const r = await api('POST', '/webhooks', { key: admin, body: { url: 'http://10.1.2.3/hook', secret: 'my-own-secret' } });
    assert.equal(r.status, 201);
    assert.equal(r.json.secret, 'my-own-secret');
    assert.equal(r.json.events.length, 10);
    await api('DELETE', `/webhooks/${r.json.id}`, { key: admin });
  });

  test('link-local and metadata URLs are refused unless webhooks.allowLinkLocal', async () => {
    for (const url of ['http://169.254.169.254/latest/meta-data/', 'http://[fe80::1]/x', 'http://metadata.google.internal/x', 'ftp://127.0.0.1/x', 'not a url']) {
      const r = await api('POST', '/webhooks', { key: admin, body: { url } });
      assert.equal(r.status, 400, url);
      assert.equal(r.json.error.field, 'url', url);
    }
    const badEvent = await api('POST', '/webhooks', { key: admin, body: { url: 'http://127.0.0.1/x', events: ['exploded'] } });
    assert.equal(badEvent.json.error.field, 'events[0]');

    const config = { ...t.config, webhooks: { ...t.config.webhooks, allowLinkLocal: true } };
    const deps: ApiDeps = {
      config,
      store: t.gw.store,
      pipeline: undefined as never,
      domains: createDomainService({ config, store: t.gw.store }),
      metrics: createMetrics(),
      logger: pino({ level: 'silent' }),
    };
    const res = await createApiRoutes(deps).request('/webhooks', {
      method: 'POST',
      headers: { authorization: `Bearer ${admin}` },
      body: JSON.stringify({ url: 'http://169.254.169.254/x', events: ['bounced'] }),
    });
    assert.equal(res.status, 201);
    t.gw.store.webhooks.remove(((await res.json()) as any).id);
  });
});

describe('suppressions', () => {
  test('a suppressed address is accepted but not delivered; it can be listed and removed', async () => {
    const add = await api('POST', '/suppressions', { key: admin, body: { email: 'Quiet@Dest.test', domain: 'example.test' } });
    assert.equal(add.status, 201, add.text);
    assert.deepEqual(add.json.data.map((s: any) => [s.domain, s.email, s.reason]), [['example.test', 'quiet@dest.test', 'manual']]);
    const sent = await api('POST', '/messages', { key: admin, body: { from: 'app@example.test', to: ['quiet@dest.test'], text: 'x' } });
    assert.deepEqual(sent.json.recipients, [{ email: 'quiet@dest.test', status: 'suppressed' }]);
    const list = await api('GET', '/suppressions?domain=example.test', { key: admin });
    assert.equal(list.json.pagination.total, 1);
    assert.equal(list.json.data[0].email, 'quiet@dest.test');
    assert.match(list.json.data[0].created_at, /Z$/);
    const unknownDomain = await api('POST', '/suppressions', { key: admin, body: { email: 'a@b.test', domain: 'nope.test' } });
    assert.equal(unknownDomain.status, 404);
    const badEmail = await api('POST', '/suppressions', { key: admin, body: { email: 'nope' } });
    assert.equal(badEmail.status, 400);
    assert.equal(badEmail.json.error.field, 'email');
    assert.equal((await api('DELETE', '/suppressions/quiet%40dest.test', { key: admin })).status, 200);
    assert.equal((await api('DELETE', '/suppressions/quiet%40dest.test', { key: admin })).status, 404);
  });
});

describe('domains', () => {
  test('add, read, verify against published DNS, remove', async () => {
    const add = await api('POST', '/domains', { key: admin, body: { domain: 'Mail.Second.test' } });
    assert.equal(add.status, 201, add.text);
    assert.equal(add.json.domain, 'mail.second.test');
    const dkim = add.json.records.find((r: any) => r.name === 'rg1._domainkey.mail.second.test');
    assert.equal(dkim.type, 'TXT');
    assert.match(dkim.value, /^v=DKIM1; k=rsa; p=/);
    assert.equal((await api('POST', '/domains', { key: admin, body: { domain: 'mail.second.test' } })).status, 409);
    assert.equal((await api('POST', '/domains', { key: admin, body: { domain: 'not a domain' } })).status, 400);

    for (const r of add.json.records) {
      if (r.type === 'TXT') t.dns.add(r.name, { type: 'TXT', data: r.value });
    }
    const v = await api('POST', '/domains/mail.second.test/verify', { key: admin });
    assert.equal(v.status, 200, v.text);
    assert.equal(v.json.domain, 'mail.second.test');
    assert.equal(typeof v.json.verified, 'boolean');
    for (const r of v.json.records) {
      for (const k of ['type', 'name', 'expected', 'found', 'status']) assert.ok(k in r, k);
      assert.ok(['pass', 'fail', 'missing'].includes(r.status));
    }
    assert.equal(v.json.records.find((r: any) => r.name === dkim.name).status, 'pass');
    assert.equal(v.json.records.find((r: any) => r.purpose === 'return-path').status, 'missing');

    const one = await api('GET', '/domains/mail.second.test', { key: admin });
    assert.equal(one.json.last_verification.domain, 'mail.second.test');
    const list = await api('GET', '/domains', { key: admin });
    assert.deepEqual(list.json.data.map((d: any) => d.domain), ['example.test', 'mail.second.test']);
    assert.equal((await api('DELETE', '/domains/mail.second.test', { key: admin })).status, 200);
    const gone = await api('GET', '/domains/mail.second.test', { key: admin });
    assert.equal(gone.status, 404);
    assert.equal(gone.json.error.code, 'domain_not_found');
    assert.equal((await api('POST', '/domains/mail.second.test/verify', { key: admin })).status, 404);
  });
});
