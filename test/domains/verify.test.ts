// verifyDomain() against a real DNS server on loopback. Each test uses its own
// domain so the zone entries of one test cannot satisfy another.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { generateDkimKey } from '../../src/dkim/keys.js';
import { recordsFor, type DnsRecord, type DomainDnsInput } from '../../src/domains/records.js';
import { verifyDomain, type RecordCheck } from '../../src/domains/verify.js';
import { startTestDns, type Rr, type TestDns } from '../helpers/dns-server.js';

const HOST = 'mail.relay.test';
const IP = '203.0.113.7';
const rsa = generateDkimKey('rsa');
const ed = generateDkimKey('ed25519');

let dns: TestDns;
before(async () => {
  dns = await startTestDns();
  dns.set(HOST, [{ type: 'A', address: IP }]);
  dns.set('gw.relay.test', [{ type: 'A', address: '198.51.100.80' }]);
});
after(() => dns.close());

let seq = 0;
const input = (over: Partial<DomainDnsInput> = {}): DomainDnsInput => ({
  domain: `d${++seq}.example.test`,
  keys: [
    { selector: 'rg1', algorithm: 'rsa', publicKeyB64: rsa.publicKeyB64 },
    { selector: 'rg2', algorithm: 'ed25519', publicKeyB64: ed.publicKeyB64 },
  ],
  publicIps: [IP],
  hostname: HOST,
  trackingTarget: 'gw.relay.test:8080',
  ...over,
});

const toRr = (r: DnsRecord): Rr => {
  if (r.type === 'MX') {
    const [prio, exchange] = r.value.split(' ');
    return { type: 'MX', priority: Number(prio), exchange };
  }
  if (r.type === 'CNAME') return { type: 'CNAME', domain: r.value };
  if (r.type === 'A' || r.type === 'AAAA') return { type: r.type, address: r.value };
  return { type: 'TXT', data: r.value };
};

/** Publish what recordsFor() tells the user to publish, except the purposes in `skip`. */
function publish(inp: DomainDnsInput, skip: string[] = []) {
  const byName = new Map<string, Rr[]>();
  for (const r of recordsFor(inp)) {
    if (skip.includes(r.purpose)) continue;
    byName.set(r.name, [...(byName.get(r.name) ?? []), toRr(r)]);
  }
  for (const [name, rrs] of byName) dns.set(name, rrs);
}

const run = (inp: DomainDnsInput, timeoutMs = 2000) => verifyDomain(inp, { dnsServers: [dns.server], timeoutMs });
const rec = (res: { records: RecordCheck[] }, purpose: string, nth = 0) => res.records.filter((r) => r.purpose === purpose)[nth];

test('everything published → every record passes and the domain is verified', async () => {
  const inp = input({ trackingHost: 'track.d-all.example.test' });
  publish(inp);
  const res = await run(inp);
  assert.equal(res.domain, inp.domain);
  assert.equal(res.verified, true);
  assert.deepEqual(
    res.records.map((r) => [r.purpose, r.type, r.status]),
    [
      ['spf', 'TXT', 'pass'],
      ['dkim', 'TXT', 'pass'],
      ['dkim', 'TXT', 'pass'],
      ['return-path', 'MX', 'pass'],
      ['dmarc', 'TXT', 'pass'],
      ['tracking', 'CNAME', 'pass'],
    ],
  );
  const expected = recordsFor(inp);
  res.records.forEach((r, i) => {
    assert.equal(r.name, expected[i].name);
    assert.equal(r.expected, expected[i].value);
    assert.equal(r.error, undefined);
  });
  // The RSA record travels as several 255-byte strings; found[] shows it joined.
  assert.deepEqual(rec(res, 'dkim').found, [expected[1].value]);
  assert.deepEqual(rec(res, 'spf').found, [`v=spf1 ip4:${IP} ~all`]);
  assert.deepEqual(rec(res, 'return-path').found, [`10 ${HOST}`]);
  assert.deepEqual(rec(res, 'tracking').found, ['gw.relay.test']);
});

test('SPF split over several TXT strings, among unrelated TXT records, is joined and evaluated', async () => {
  const inp = input();
  publish(inp, ['spf']);
  dns.set(inp.domain, [
    { type: 'TXT', data: 'google-site-verification=abc' },
    { type: 'TXT', data: ['v=spf1 ip4:198.51', '.100.1 ip4:203.0', '.113.0/24 -all'] },
  ]);
  const res = await run(inp);
  assert.equal(rec(res, 'spf').status, 'pass');
  assert.deepEqual(rec(res, 'spf').found, ['v=spf1 ip4:198.51.100.1 ip4:203.0.113.0/24 -all']);
  assert.equal(res.verified, true);
});

test('SPF through an include: chain (two levels) passes', async () => {
  const inp = input();
  publish(inp, ['spf']);
  dns.set(inp.domain, [{ type: 'TXT', data: 'v=spf1 include:_spf.esp-a.test ~all' }]);
  dns.set('_spf.esp-a.test', [{ type: 'TXT', data: 'v=spf1 ip4:192.0.2.1 include:_spf2.esp-b.test -all' }]);
  dns.set('_spf2.esp-b.test', [{ type: 'TXT', data: 'v=spf1 a:mail.relay.test -all' }]);
  const res = await run(inp);
  assert.equal(rec(res, 'spf').status, 'pass', JSON.stringify(rec(res, 'spf')));
  assert.equal(res.verified, true);
});

test('SPF that does not authorize our IP → fail (record exists), domain not verified', async () => {
  const inp = input({ publicIps: [IP, '2001:db8::25'] });
  publish(inp, ['spf']);
  dns.set(inp.domain, [{ type: 'TXT', data: `v=spf1 ip4:${IP} ~all` }]); // the IPv6 address is missing
  const res = await run(inp);
  const spf = rec(res, 'spf');
  assert.equal(spf.status, 'fail');
  assert.equal(spf.error, undefined);
  assert.match(spf.detail ?? '', /2001:db8::25: softfail/);
  assert.equal(res.verified, false);
  assert.equal(rec(res, 'dkim').status, 'pass');
});

test('SPF: no v=spf1 record → missing; two v=spf1 records → fail', async () => {
  const none = input();
  publish(none, ['spf']);
  dns.set(none.domain, [{ type: 'TXT', data: 'some-other=1' }]);
  const r1 = await run(none);
  assert.equal(rec(r1, 'spf').status, 'missing');
  assert.equal(r1.verified, false);

  const two = input();
  publish(two, ['spf']);
  dns.set(two.domain, [
    { type: 'TXT', data: `v=spf1 ip4:${IP} ~all` },
    { type: 'TXT', data: 'v=spf1 include:other.test ~all' },
  ]);
  const r2 = await run(two);
  assert.equal(rec(r2, 'spf').status, 'fail');
  assert.match(rec(r2, 'spf').detail ?? '', /more than one/);
});

test('SPF: NXDOMAIN for the domain → missing, not an error', async () => {
  const inp = input();
  publish(inp, ['spf']);
  dns.behave(inp.domain, 'nxdomain');
  const res = await run(inp);
  assert.deepEqual([rec(res, 'spf').status, rec(res, 'spf').error], ['missing', undefined]);
});

test('SPF: a SERVFAIL inside the include chain → fail with an error (temperror), not pass or missing', async () => {
  const inp = input();
  publish(inp, ['spf']);
  dns.set(inp.domain, [{ type: 'TXT', data: 'v=spf1 include:_spf.broken.test ~all' }]);
  dns.behave('_spf.broken.test', 'servfail');
  const res = await run(inp);
  assert.equal(rec(res, 'spf').status, 'fail');
  assert.match(rec(res, 'spf').error ?? '', /ESERVFAIL|SERVFAIL/);
});

test('SPF without public IPs: evaluated for the addresses the HELO name resolves to', async () => {
  const ok = input({ publicIps: [] });
  publish(ok); // recommends a:mail.relay.test
  const r1 = await run(ok);
  assert.equal(rec(r1, 'spf').expected, `v=spf1 a:${HOST} ~all`);
  assert.equal(rec(r1, 'spf').status, 'pass');

  const bad = input({ publicIps: [] });
  publish(bad, ['spf']);
  dns.set(bad.domain, [{ type: 'TXT', data: 'v=spf1 ip4:198.51.100.1 -all' }]);
  const r2 = await run(bad);
  assert.equal(rec(r2, 'spf').status, 'fail');
  assert.match(rec(r2, 'spf').detail ?? '', new RegExp(`${IP.replace(/\./g, '\\.')}: fail`));
});

test('SPF without public IPs and an unresolvable HELO name: falls back to looking for our mechanism', async () => {
  const host = 'unresolvable.relay.test';
  const ok = input({ publicIps: [], hostname: host });
  publish(ok);
  assert.equal(rec(await run(ok), 'spf').status, 'pass');

  const bad = input({ publicIps: [], hostname: host });
  publish(bad, ['spf']);
  dns.set(bad.domain, [{ type: 'TXT', data: 'v=spf1 mx ~all' }]);
  const r = await run(bad);
  assert.equal(rec(r, 'spf').status, 'fail');
  assert.match(rec(r, 'spf').detail ?? '', /a:unresolvable\.relay\.test/);
});

test('wrong DKIM key published → fail with the found value; missing key → missing', async () => {
  const inp = input();
  publish(inp);
  const other = generateDkimKey('rsa');
  dns.set(`rg1._domainkey.${inp.domain}`, [{ type: 'TXT', data: `v=DKIM1; k=rsa; p=${other.publicKeyB64}` }]);
  dns.remove(`rg2._domainkey.${inp.domain}`);
  const res = await run(inp);
  assert.equal(rec(res, 'dkim', 0).status, 'fail');
  assert.deepEqual(rec(res, 'dkim', 0).found, [`v=DKIM1; k=rsa; p=${other.publicKeyB64}`]);
  assert.equal(rec(res, 'dkim', 1).status, 'missing');
  assert.equal(res.verified, false);
  assert.equal(rec(res, 'spf').status, 'pass');
});

test('DKIM: our ed25519 key published with k=rsa (the default) → fail; revoked (empty p=) → fail', async () => {
  const inp = input();
  publish(inp);
  dns.set(`rg2._domainkey.${inp.domain}`, [{ type: 'TXT', data: `v=DKIM1; p=${ed.publicKeyB64}` }]);
  dns.set(`rg1._domainkey.${inp.domain}`, [{ type: 'TXT', data: 'v=DKIM1; k=rsa; p=' }]);
  const res = await run(inp);
  assert.equal(rec(res, 'dkim', 0).status, 'fail');
  assert.equal(rec(res, 'dkim', 1).status, 'fail');
});

test('missing DMARC → missing, and the domain is still verified (advisory)', async () => {
  const inp = input();
  publish(inp, ['dmarc']);
  const res = await run(inp);
  assert.equal(rec(res, 'dmarc').status, 'missing');
  assert.deepEqual(rec(res, 'dmarc').found, []);
  assert.equal(res.verified, true);
});

test("the owner's own DMARC policy passes; a non-DMARC TXT there does not count", async () => {
  const inp = input();
  publish(inp, ['dmarc']);
  dns.set(`_dmarc.${inp.domain}`, [{ type: 'TXT', data: 'v=DMARC1; p=reject; adkim=s' }]);
  assert.equal(rec(await run(inp), 'dmarc').status, 'pass');
  dns.set(`_dmarc.${inp.domain}`, [{ type: 'TXT', data: 'v=spf1 -all' }]);
  assert.equal(rec(await run(inp), 'dmarc').status, 'missing');
});

test('SERVFAIL on the DKIM name → fail with a SERVFAIL error, not missing', async () => {
  const inp = input();
  publish(inp);
  dns.behave(`rg1._domainkey.${inp.domain}`, 'servfail');
  const res = await run(inp);
  const d = rec(res, 'dkim', 0);
  assert.equal(d.status, 'fail');
  assert.match(d.error ?? '', /^SERVFAIL resolving TXT rg1\._domainkey\./);
  assert.equal(rec(res, 'dkim', 1).status, 'pass');
  assert.equal(res.verified, false);
});

test('a DNS timeout → fail with a timeout error, within the time budget', async () => {
  const inp = input();
  publish(inp);
  dns.behave(`rg2._domainkey.${inp.domain}`, 'timeout');
  const t0 = Date.now();
  const res = await run(inp, 300);
  const elapsed = Date.now() - t0;
  const d = rec(res, 'dkim', 1);
  assert.equal(d.status, 'fail');
  assert.match(d.error ?? '', /^timeout resolving TXT rg2\._domainkey\./);
  assert.ok(elapsed < 3000, `took ${elapsed} ms`);
  assert.equal(res.verified, false);
});

test('return-path MX: case and trailing dot ignored; another exchange → fail; none → missing', async () => {
  const inp = input();
  publish(inp, ['return-path']);
  const name = `bounces.${inp.domain}`;
  dns.set(name, [{ type: 'MX', priority: 5, exchange: 'MAIL.Relay.TEST.' }]);
  assert.equal(rec(await run(inp), 'return-path').status, 'pass');
  dns.set(name, [{ type: 'MX', priority: 10, exchange: 'mx.elsewhere.test' }]);
  const r = await run(inp);
  assert.equal(rec(r, 'return-path').status, 'fail');
  assert.deepEqual(rec(r, 'return-path').found, ['10 mx.elsewhere.test']);
  assert.equal(r.verified, true, 'MX is advisory');
  dns.remove(name);
  assert.equal(rec(await run(inp), 'return-path').status, 'missing');
});

test('tracking CNAME: pass, wrong target → fail, absent → missing; advisory', async () => {
  const inp = input({ trackingHost: `t.d-track.example.test` });
  publish(inp);
  assert.equal(rec(await run(inp), 'tracking').status, 'pass');
  dns.set(inp.trackingHost!, [{ type: 'CNAME', domain: 'elsewhere.test' }]);
  const r = await run(inp);
  assert.equal(rec(r, 'tracking').status, 'fail');
  assert.deepEqual(rec(r, 'tracking').found, ['elsewhere.test']);
  assert.equal(r.verified, true);
  dns.remove(inp.trackingHost!);
  assert.equal(rec(await run(inp), 'tracking').status, 'missing');
});

test('tracking target given as an IP: checked as an A record', async () => {
  const inp = input({ trackingHost: 't.d-ip.example.test', trackingTarget: '198.51.100.80:8080' });
  publish(inp);
  const r = await run(inp);
  assert.deepEqual([rec(r, 'tracking').type, rec(r, 'tracking').status], ['A', 'pass']);
});
