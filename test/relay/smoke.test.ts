import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { addCredential } from '../../src/auth/credentials.js';
import { createDomainService } from '../../src/domains/service.js';
import { startMxSink, startTestGateway, submitMail, until, type MxSink, type TestGateway } from '../helpers/gateway.js';

let t: TestGateway;
let mx: MxSink;
let cred: { username: string; password: string };

before(async () => {
  t = await startTestGateway();
  await createDomainService({ config: t.config, store: t.gw.store }).add('example.test');
  cred = (await addCredential(t.gw.store, 'example.test', {})) as any;
  t.dns.set('dest.test', [{ type: 'MX', exchange: 'mx.dest.test', priority: 10 }]);
  t.dns.set('mx.dest.test', [{ type: 'A', address: '127.0.0.5' }]);
  mx = await startMxSink('127.0.0.5', t.mxPort);
});
after(async () => {
  await mx?.close();
  await t?.stop();
});

test('a message submitted over SMTP reaches the MX', async () => {
  const r = await submitMail({ port: t.smtpPort, auth: { user: cred.username, pass: cred.password }, to: 'bob@dest.test', html: '<p><a href="https://x.test/a">x</a></p>' });
  assert.match(r.response, /^250 2\.0\.0 Ok: queued as \S+/);
  const [m] = await mx.waitFor(1);
  assert.equal(m.from, 'app@example.test');
  assert.deepEqual(m.to, ['bob@dest.test']);
  assert.match(m.body.toString(), /DKIM-Signature:/i);
  assert.match(m.body.toString(), /\/t\/c\//);
  const rows = await until(() => {
    const rs = t.gw.store.queue.recipientsOf(r.id);
    return rs.every((x) => x.status === 'delivered') ? rs : null;
  }, 'delivered state');
  assert.equal(rows[0].attempts, 1);
});

test('the queued event says how the message is signed, or that it goes unsigned', async () => {
  const signed = await submitMail({ port: t.smtpPort, auth: { user: cred.username, pass: cred.password }, to: 'dkim@dest.test' });
  const ev = t.gw.store.events.forMessage(signed.id).find((e) => e.type === 'queued')!;
  assert.equal(JSON.parse(ev.data!).dkim, 'd=example.test s=rg1');

  // A domain whose keys are all gone still sends, unsigned, and the log says so.
  const domain = t.gw.store.tenants.domain('example.test')!;
  const keys = t.gw.store.tenants.keys(domain.id);
  for (const k of keys) t.gw.store.tenants.setKeyStatus(k.id, 'pending', null);
  try {
    const unsigned = await submitMail({ port: t.smtpPort, auth: { user: cred.username, pass: cred.password }, to: 'nodkim@dest.test' });
    const ev2 = t.gw.store.events.forMessage(unsigned.id).find((e) => e.type === 'queued')!;
    assert.match(JSON.parse(ev2.data!).dkim, /^unsigned: no active DKIM key for example\.test$/);
    const got = await until(() => mx.received.find((m) => m.to.includes('nodkim@dest.test')), 'unsigned delivery');
    assert.ok(!/^DKIM-Signature:/im.test(got.body.toString()));
  } finally {
    for (const k of keys) t.gw.store.tenants.setKeyStatus(k.id, 'active', null);
  }
});
