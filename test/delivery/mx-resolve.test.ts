import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { startTestDns, type TestDns } from '../helpers/dns-server.js';
import { createMxResolver, normaliseDomain, orderByPreference, type MxResult } from '../../src/delivery/mx-resolve.js';
import { GatewayError } from '../../src/errors.js';

let dns: TestDns;

before(async () => {
  dns = await startTestDns();
  dns.set('pref.test', [
    { type: 'MX', exchange: 'mx20.pref.test', priority: 20 },
    { type: 'MX', exchange: 'mx10.pref.test', priority: 10 },
    { type: 'MX', exchange: 'mx30.pref.test', priority: 30 },
  ]);
  dns.set('mx10.pref.test', [{ type: 'A', address: '127.0.0.10' }]);
  dns.set('mx20.pref.test', [{ type: 'A', address: '127.0.0.20' }, { type: 'A', address: '127.0.0.21' }]);
  dns.set('mx30.pref.test', [{ type: 'A', address: '127.0.0.30' }, { type: 'AAAA', address: '::1' }]);

  dns.set('equal.test', ['a', 'b', 'c', 'd'].map((n) => ({ type: 'MX' as const, exchange: `${n}.equal.test`, priority: 10 })));
  for (const [i, n] of ['a', 'b', 'c', 'd'].entries()) dns.set(`${n}.equal.test`, [{ type: 'A', address: `127.0.1.${i + 1}` }]);

  dns.set('implicit.test', [{ type: 'A', address: '127.0.2.1' }, { type: 'AAAA', address: '::1' }]);
  dns.set('txtonly.test', [{ type: 'TXT', data: 'v=spf1 -all' }]);
  dns.set('nullmx-dot.test', [{ type: 'MX', exchange: '.', priority: 0 }]);
  dns.set('nullmx-empty.test', [{ type: 'MX', exchange: '', priority: 0 }]);

  dns.set('partial.test', [
    { type: 'MX', exchange: 'gone.partial.test', priority: 5 },
    { type: 'MX', exchange: 'noaddr.partial.test', priority: 7 },
    { type: 'MX', exchange: 'ok.partial.test', priority: 10 },
  ]);
  dns.set('noaddr.partial.test', [{ type: 'TXT', data: 'no address here' }]);
  dns.set('ok.partial.test', [{ type: 'A', address: '127.0.3.1' }]);

  dns.set('noaddr.test', [{ type: 'MX', exchange: 'missing.noaddr.test', priority: 10 }]);
  dns.set('v6only.test', [{ type: 'MX', exchange: 'mx.v6only.test', priority: 10 }]);
  dns.set('mx.v6only.test', [{ type: 'AAAA', address: '::1' }]);

  dns.set('servfail.test', [{ type: 'MX', exchange: 'mx.servfail.test', priority: 10 }]);
  dns.behave('servfail.test', 'servfail');
  dns.set('slow.test', [{ type: 'MX', exchange: 'mx.slow.test', priority: 10 }]);
  dns.behave('slow.test', 'timeout');

  dns.set('hostfail.test', [{ type: 'MX', exchange: 'mx.hostfail.test', priority: 10 }]);
  dns.set('mx.hostfail.test', [{ type: 'A', address: '127.0.4.1' }]);
  dns.behave('mx.hostfail.test', 'servfail');
  dns.set('onebad.test', [
    { type: 'MX', exchange: 'bad.onebad.test', priority: 10 },
    { type: 'MX', exchange: 'good.onebad.test', priority: 20 },
  ]);
  dns.set('bad.onebad.test', [{ type: 'A', address: '127.0.5.1' }]);
  dns.behave('bad.onebad.test', 'servfail');
  dns.set('good.onebad.test', [{ type: 'A', address: '127.0.5.2' }]);

  dns.set('xn--bcher-kva.test', [{ type: 'MX', exchange: 'MX.Bucher.Test.', priority: 10 }]);
  dns.set('mx.bucher.test', [{ type: 'A', address: '127.0.6.1' }]);

  dns.set('cached.test', [{ type: 'MX', exchange: 'mx.cached.test', priority: 10 }]);
  dns.set('mx.cached.test', [{ type: 'A', address: '127.0.7.1' }]);
});

after(async () => {
  await dns.close();
});

const fresh = (extra: Partial<Parameters<typeof createMxResolver>[0]> = {}) =>
  createMxResolver({ servers: [dns.server], timeoutMs: 1000, tries: 1, cacheMs: 0, ...extra });

function hosts(r: MxResult) {
  assert.equal(r.kind, 'hosts', JSON.stringify(r));
  return r.kind === 'hosts' ? r.hosts : [];
}

async function assertTemp(p: Promise<unknown>) {
  await assert.rejects(p, (e: unknown) => {
    assert.ok(e instanceof GatewayError, String(e));
    assert.equal(e.code, 'dns_temp');
    assert.equal(e.smtp, 451);
    assert.equal(e.enhanced, '4.4.3');
    assert.equal(e.temporary, true);
    return true;
  });
}

test('MX hosts come back by preference, each with its addresses (A before AAAA)', async () => {
  const h = hosts(await fresh().resolve('pref.test'));
  assert.deepEqual(h, [
    { exchange: 'mx10.pref.test', priority: 10, addresses: ['127.0.0.10'] },
    { exchange: 'mx20.pref.test', priority: 20, addresses: ['127.0.0.20', '127.0.0.21'] },
    { exchange: 'mx30.pref.test', priority: 30, addresses: ['127.0.0.30', '::1'] },
  ]);
});

test('equal preferences are shuffled but every host is returned', async () => {
  const r = fresh();
  const orders = new Set<string>();
  for (let i = 0; i < 20; i++) {
    const h = hosts(await r.resolve('equal.test'));
    assert.deepEqual(h.map((x) => x.exchange).sort(), ['a.equal.test', 'b.equal.test', 'c.equal.test', 'd.equal.test']);
    assert.ok(h.every((x) => x.priority === 10 && x.addresses.length === 1));
    orders.add(h.map((x) => x.exchange).join(','));
  }
  // 20 draws of 24 permutations all equal: probability 24^-19.
  assert.ok(orders.size > 1, 'never shuffled');
});

test('orderByPreference keeps groups in order and shuffles only within a group', () => {
  const list = [
    { id: 'x', priority: 20 },
    { id: 'a', priority: 10 },
    { id: 'b', priority: 10 },
    { id: 'y', priority: 20 },
  ];
  assert.deepEqual(orderByPreference(list, () => 0).map((x) => x.id), ['b', 'a', 'y', 'x']);
  assert.deepEqual(orderByPreference(list, () => 0.999).map((x) => x.id), ['a', 'b', 'x', 'y']);
});

test('no MX records: the domain itself is the implicit MX (RFC 5321 §5.1)', async () => {
  assert.deepEqual(hosts(await fresh().resolve('implicit.test')), [
    { exchange: 'implicit.test', priority: 0, addresses: ['127.0.2.1', '::1'] },
  ]);
});

test('no MX and no address → no-address', async () => {
  assert.deepEqual(await fresh().resolve('txtonly.test'), { kind: 'no-address' });
});

test("null MX, written as '.' or as '', → null-mx (RFC 7505)", async () => {
  const r = fresh();
  assert.deepEqual(await r.resolve('nullmx-dot.test'), { kind: 'null-mx' });
  assert.deepEqual(await r.resolve('nullmx-empty.test'), { kind: 'null-mx' });
});

test('NXDOMAIN → nxdomain; a name that is not a domain → nxdomain without a query', async () => {
  const r = fresh();
  assert.deepEqual(await r.resolve('does-not-exist.test'), { kind: 'nxdomain' });
  const before = dns.queries.length;
  assert.deepEqual(await r.resolve('bad name.test'), { kind: 'nxdomain' });
  assert.deepEqual(await r.resolve(''), { kind: 'nxdomain' });
  assert.equal(dns.queries.length, before);
});

test('SERVFAIL on the MX query throws dns_temp (451 4.4.3)', async () => {
  await assertTemp(fresh().resolve('servfail.test'));
});

test('a DNS timeout throws dns_temp within the configured timeout', async () => {
  const started = Date.now();
  await assertTemp(fresh({ timeoutMs: 300, tries: 1 }).resolve('slow.test'));
  assert.ok(Date.now() - started < 3000, `took ${Date.now() - started} ms`);
});

test('an unreachable DNS server throws dns_temp', async () => {
  // A UDP port with nobody on it: ECONNREFUSED or a timeout, temporary either way.
  await assertTemp(createMxResolver({ servers: ['127.0.0.1:9'], timeoutMs: 300, tries: 1, cacheMs: 0 }).resolve('pref.test'));
});

test('MX hosts without an address are skipped', async () => {
  assert.deepEqual(hosts(await fresh().resolve('partial.test')), [
    { exchange: 'ok.partial.test', priority: 10, addresses: ['127.0.3.1'] },
  ]);
});

test('no MX host has an address → no-address', async () => {
  assert.deepEqual(await fresh().resolve('noaddr.test'), { kind: 'no-address' });
});

test('an AAAA-only MX host is kept with its IPv6 address', async () => {
  assert.deepEqual(hosts(await fresh().resolve('v6only.test')), [
    { exchange: 'mx.v6only.test', priority: 10, addresses: ['::1'] },
  ]);
});

test('the only MX host SERVFAILs on its address → dns_temp; another good host → that one', async () => {
  const r = fresh();
  await assertTemp(r.resolve('hostfail.test'));
  assert.deepEqual(hosts(await r.resolve('onebad.test')), [
    { exchange: 'good.onebad.test', priority: 20, addresses: ['127.0.5.2'] },
  ]);
});

test('domain names are lowercased, IDN → punycode, trailing dot stripped; exchanges too', async () => {
  assert.equal(normaliseDomain('Bücher.TEST.'), 'xn--bcher-kva.test');
  const h = hosts(await fresh().resolve('Bücher.TEST.'));
  assert.deepEqual(h, [{ exchange: 'mx.bucher.test', priority: 10, addresses: ['127.0.6.1'] }]);
  assert.ok(dns.queries.includes('MX xn--bcher-kva.test'));
});

test('address literals need no DNS', async () => {
  const before = dns.queries.length;
  assert.deepEqual(hosts(await fresh().resolve('[127.0.0.9]')), [{ exchange: '127.0.0.9', priority: 0, addresses: ['127.0.0.9'] }]);
  assert.deepEqual(hosts(await fresh().resolve('[IPv6:::1]')), [{ exchange: '::1', priority: 0, addresses: ['::1'] }]);
  assert.equal(dns.queries.length, before);
});

test('cache: positive answers reused until the TTL, negative ones for the shorter TTL; cacheMs 0 disables', async () => {
  let t = 1_000_000;
  const r = fresh({ cacheMs: 60_000, negativeCacheMs: 10_000, now: () => t });
  const count = (q: string) => dns.queries.filter((x) => x === q).length;

  await r.resolve('cached.test');
  await r.resolve('CACHED.test');
  assert.equal(count('MX cached.test'), 1);
  t += 59_000;
  await r.resolve('cached.test');
  assert.equal(count('MX cached.test'), 1);
  t += 2_000;
  assert.equal(hosts(await r.resolve('cached.test'))[0].exchange, 'mx.cached.test');
  assert.equal(count('MX cached.test'), 2);

  await r.resolve('gone-cached.test');
  await r.resolve('gone-cached.test');
  assert.equal(count('MX gone-cached.test'), 1);
  t += 11_000;
  await r.resolve('gone-cached.test');
  assert.equal(count('MX gone-cached.test'), 2);

  const nocache = fresh();
  await nocache.resolve('cached.test');
  await nocache.resolve('cached.test');
  assert.equal(count('MX cached.test'), 4);
});

test('temporary failures are not cached', async () => {
  const r = fresh({ cacheMs: 60_000 });
  await assertTemp(r.resolve('servfail.test'));
  const n = dns.queries.filter((x) => x === 'MX servfail.test').length;
  await assertTemp(r.resolve('servfail.test'));
  assert.equal(dns.queries.filter((x) => x === 'MX servfail.test').length, n + 1);
});

test('concurrent lookups of one domain share one query', async () => {
  const r = fresh({ cacheMs: 60_000 });
  const before = dns.queries.filter((x) => x === 'MX pref.test').length;
  const results = await Promise.all([r.resolve('pref.test'), r.resolve('pref.test'), r.resolve('pref.test')]);
  assert.equal(dns.queries.filter((x) => x === 'MX pref.test').length, before + 1);
  for (const res of results) assert.equal(hosts(res).length, 3);
});
