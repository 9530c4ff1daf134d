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
