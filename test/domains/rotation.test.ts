// DKIM key rotation end to end: the new selector signs only once its record
// verifies, and during the grace period mail signed with either selector
// verifies at the receiver (mailauth, DNS answered by the test server).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { authenticate } from 'mailauth';
import { createDomainService } from '../../src/domains/service.js';
import { ROTATION_GRACE_MS } from '../../src/domains/service.js';
import { startMxSink, submitMail, until, type MxSink } from '../helpers/gateway.js';
import { DOMAIN, startRelay, type RelayFixture } from '../helpers/relay.js';
import { verifierResolver } from '../helpers/dns-server.js';

let f: RelayFixture;
let mx: MxSink;
let domains: ReturnType<typeof createDomainService>;
let resolve: (name: string, type: string) => Promise<unknown>;

function publish(records: { type: string; name: string; value: string }[]) {
  for (const r of records) if (r.type === 'TXT') f.t.dns.set(r.name, [{ type: 'TXT', data: r.value }]);
}

before(async () => {
  f = await startRelay({ dns: { publicIps: ['127.0.0.1'] } });
  domains = createDomainService({ config: f.t.config, store: f.t.gw.store });
  publish(domains.get(DOMAIN).records);
  f.t.dns.set('dest.test', [{ type: 'MX', exchange: 'mx.dest.test', priority: 10 }]);
  f.t.dns.set('mx.dest.test', [{ type: 'A', address: '127.0.0.14' }]);
  mx = await startMxSink('127.0.0.14', f.t.mxPort);
  resolve = verifierResolver(f.t.dns.server);
});
after(async () => {
  await f?.stop();
  await mx?.close();
});

async function sendAndVerify(subject: string): Promise<{ body: Buffer; results: [string, string][] }> {
  await submitMail({ port: f.t.smtpPort, auth: f.auth, from: `app@${DOMAIN}`, to: 'bob@dest.test', subject, text: 'hi' });
  const m = await until(() => mx.received.find((x) => x.body.includes(`Subject: ${subject}`)), subject, 10_000);
  return { body: m.body, results: await verify(m.body) };
}

async function verify(body: Buffer): Promise<[string, string][]> {
  const res = await authenticate(body, { ip: '127.0.0.1', helo: 'relay.test', sender: `app@${DOMAIN}`, mta: 'mx.dest.test', resolver: resolve as never, disableArc: true, disableBimi: true });
  return res.dkim.results.map((r: any) => [r.status.result, r.selector]);
}

test('rotate-key: pending until published, then signs; the old selector stays valid for the grace period', async () => {
  assert.equal((await domains.verify(DOMAIN)).verified, true);
  const before = await sendAndVerify('before rotation');
  assert.deepEqual(before.results, [['pass', 'rg1']]);

  const rot = domains.rotateKey(DOMAIN);
  assert.equal(rot.selector, 'rg2');
  assert.equal(rot.replaces, 'rg1');
  assert.equal(rot.grace_days, 7);
  assert.equal(rot.record.name, `rg2._domainkey.${DOMAIN}`);

  // Not published yet: verification leaves it pending and mail is still signed with rg1.
  await domains.verify(DOMAIN);
  assert.deepEqual(domains.get(DOMAIN).dkim.map((k) => [k.selector, k.status]), [['rg1', 'active'], ['rg2', 'pending']]);
  assert.deepEqual((await sendAndVerify('pending rotation')).results, [['pass', 'rg1']]);

  // Published: the next verification switches signing to rg2 and starts rg1's grace period.
  publish([rot.record]);
  const t0 = Date.now();
  assert.equal((await domains.verify(DOMAIN)).verified, true);
  const keys = domains.get(DOMAIN).dkim;
  assert.deepEqual(keys.map((k) => [k.selector, k.status]), [['rg1', 'retiring'], ['rg2', 'active']]);
  const retireAt = Date.parse(keys[0].retire_at!);
  assert.ok(Math.abs(retireAt - (t0 + ROTATION_GRACE_MS)) < 60_000, 'rg1 retires after the stated grace');
  assert.ok(domains.get(DOMAIN).records.some((r) => r.name === `rg1._domainkey.${DOMAIN}`), 'rg1 is still listed to publish');

  const after = await sendAndVerify('after rotation');
  assert.deepEqual(after.results, [['pass', 'rg2']]);
  // Mail signed before the switch (still in flight or in retry queues) verifies too.
  assert.deepEqual(await verify(before.body), [['pass', 'rg1']]);
});
