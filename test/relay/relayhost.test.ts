// delivery.relayHost: every recipient goes to the smarthost, whatever its domain's MX says.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { addCredential } from '../../src/auth/credentials.js';
import { createDomainService } from '../../src/domains/service.js';
import { freePort, startMxSink, startTestGateway, submitMail, until, type MxSink, type TestGateway } from '../helpers/gateway.js';

let t: TestGateway;
let smarthost: MxSink;
let directMx: MxSink;
let auth: { user: string; pass: string };

before(async () => {
  const port = await freePort('127.0.0.12');
  smarthost = await startMxSink('127.0.0.12', port, { authOptional: true, disabledCommands: ['STARTTLS'] });
  t = await startTestGateway({ delivery: { relayHost: `127.0.0.12:${port}` } });
  createDomainService({ config: t.config, store: t.gw.store }).add('example.test');
  const c = (await addCredential(t.gw.store, 'example.test', {})) as { username: string; password: string };
  auth = { user: c.username, pass: c.password };
  t.dns.set('far.test', [{ type: 'MX', exchange: 'mx.far.test', priority: 10 }]);
  t.dns.set('mx.far.test', [{ type: 'A', address: '127.0.0.13' }]);
  directMx = await startMxSink('127.0.0.13', t.mxPort);
});
after(async () => {
  await t?.stop();
  await smarthost?.close();
  await directMx?.close();
});

test('mail for any domain goes to the smarthost, with the submitted envelope', async () => {
  const r = await submitMail({ port: t.smtpPort, auth, to: ['a@far.test', 'b@nomx.test'] });
  await until(() => smarthost.received.flatMap((m) => m.to).length >= 2, 'both recipients at the smarthost');
  assert.deepEqual(smarthost.received.flatMap((m) => m.to).sort(), ['a@far.test', 'b@nomx.test']);
  assert.equal(smarthost.received[0].from, 'app@example.test');
  assert.equal(directMx.received.length, 0, 'the MX of far.test is never used');
  await until(() => t.gw.store.queue.recipientsOf(r.id).every((x) => x.status === 'delivered'), 'delivered');
});
