// Which tracking applies: config, then the domain's setting, then the message's header.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { simpleParser } from 'mailparser';
import { addCredential } from '../../src/auth/credentials.js';
import { createDomainService } from '../../src/domains/service.js';
import { startMxSink, startTestGateway, submitMail, type MxSink, type TestGateway } from '../helpers/gateway.js';

let t: TestGateway;
let mx: MxSink;
let auth: { user: string; pass: string };
let domains: ReturnType<typeof createDomainService>;

before(async () => {
  t = await startTestGateway({ tracking: { textLinks: true } });
  domains = createDomainService({ config: t.config, store: t.gw.store });
  domains.add('example.test');
  const c = (await addCredential(t.gw.store, 'example.test', {})) as { username: string; password: string };
  auth = { user: c.username, pass: c.password };
  t.dns.set('dest.test', [{ type: 'MX', exchange: 'mx.dest.test', priority: 10 }]);
  t.dns.set('mx.dest.test', [{ type: 'A', address: '127.0.0.9' }]);
  mx = await startMxSink('127.0.0.9', t.mxPort);
});
after(async () => {
  await mx?.close();
  await t?.stop();
});

async function send(headers: Record<string, string> = {}) {
  const n = mx.received.length;
  await submitMail({ port: t.smtpPort, auth, to: 'kim@dest.test', html: '<p><a href="https://h.test/">h</a></p>', text: 'Read https://p.test/plain. Thanks\n', headers });
  await mx.waitFor(n + 1);
  return simpleParser(mx.received[n].body);
}

test('tracking.textLinks rewrites URLs in the text part, and the redirect goes to the real URL', async () => {
  const p = await send();
  const m = /(http:\/\/127\.0\.0\.1:\d+\/t\/c\/[A-Za-z0-9_-]{22})\. Thanks/.exec(p.text ?? '');
  assert.ok(m, p.text);
  const res = await fetch(m[1], { redirect: 'manual' });
  assert.equal(res.headers.get('location'), 'https://p.test/plain');
  assert.match(p.html as string, /\/t\/c\//);
});

test('a domain set to none sends untracked; the message header still wins over the domain', async () => {
  domains.setTrack('example.test', 'none');
  const plain = await send();
  assert.ok(!String(plain.html).includes('/t/'), 'no tracking under the domain setting');
  assert.equal(plain.text, 'Read https://p.test/plain. Thanks\n');
  const opted = await send({ 'X-Relaygate-Track': 'opens' });
  assert.match(opted.html as string, /\/t\/o\//);
  assert.ok(!String(opted.html).includes('/t/c/'));
  domains.setTrack('example.test', 'default');
  assert.equal(domains.get('example.test').track, null);
  assert.throws(() => domains.setTrack('example.test', 'opens,bogus'), /bogus/);
});
