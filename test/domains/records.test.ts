import { test } from 'node:test';
import assert from 'node:assert/strict';
import { generateDkimKey } from '../../src/dkim/keys.js';
import { recordsFor, spfMechanisms, spfValue, stripPort, type DomainDnsInput } from '../../src/domains/records.js';

const rsa = generateDkimKey('rsa');
const ed = generateDkimKey('ed25519');
const base: DomainDnsInput = {
  domain: 'Example.COM.',
  keys: [
    { selector: 'rg1', algorithm: 'rsa', publicKeyB64: rsa.publicKeyB64 },
    { selector: 'rg2', algorithm: 'ed25519', publicKeyB64: ed.publicKeyB64 },
  ],
  publicIps: ['203.0.113.7', '2001:db8::25'],
  hostname: 'mail.relay.test.',
  trackingTarget: 'gw.relay.test:8080',
};

test('full set: SPF, one DKIM per key, return-path MX, DMARC; names lower-case without trailing dot', () => {
  const recs = recordsFor(base);
  assert.deepEqual(
    recs.map((r) => [r.purpose, r.type, r.name, r.value]),
    [
      ['spf', 'TXT', 'example.com', 'v=spf1 ip4:203.0.113.7 ip6:2001:db8::25 ~all'],
      ['dkim', 'TXT', 'rg1._domainkey.example.com', `v=DKIM1; k=rsa; p=${rsa.publicKeyB64}`],
      ['dkim', 'TXT', 'rg2._domainkey.example.com', `v=DKIM1; k=ed25519; p=${ed.publicKeyB64}`],
      ['return-path', 'MX', 'bounces.example.com', '10 mail.relay.test'],
      ['dmarc', 'TXT', '_dmarc.example.com', 'v=DMARC1; p=none; rua=mailto:dmarc-reports@example.com'],
    ],
  );
  for (const r of recs) {
    assert.ok(!r.name.endsWith('.'), r.name);
    assert.ok(r.note && r.note.length > 20, `${r.purpose} has a note`);
  }
});

test('the RSA DKIM TXT value is whole and unsplit (> 255 characters, no quotes)', () => {
  const dkim = recordsFor(base).find((r) => r.name.startsWith('rg1.'))!;
  assert.ok(dkim.value.length > 255);
  assert.ok(!dkim.value.includes('"'));
  assert.ok(!/\s{2,}|\n/.test(dkim.value));
});

test('SPF: include when spfInclude is set, alongside IPs', () => {
  assert.equal(spfValue({ ...base, spfInclude: '_spf.Relay.test.' }), 'v=spf1 ip4:203.0.113.7 ip6:2001:db8::25 include:_spf.relay.test ~all');
  assert.equal(spfValue({ ...base, publicIps: [], spfInclude: '_spf.relay.test' }), 'v=spf1 include:_spf.relay.test ~all');
});

test('SPF: a:{hostname} when there are neither IPs nor an include', () => {
  assert.equal(spfValue({ ...base, publicIps: [] }), 'v=spf1 a:mail.relay.test ~all');
});

test('SPF: CIDR ranges kept, blanks and non-IPs ignored', () => {
  assert.deepEqual(spfMechanisms({ ...base, publicIps: ['198.51.100.0/24', ' ', 'not-an-ip', '2001:db8::/48'] }), [
    'ip4:198.51.100.0/24',
    'ip6:2001:db8::/48',
  ]);
});

test('SPF note explains merging into an existing record', () => {
  const note = recordsFor(base)[0].note!;
  assert.match(note, /only one SPF record/);
  assert.match(note, /ip4:203\.0\.113\.7 ip6:2001:db8::25/);
  assert.match(note, /before its "all"/);
});

test('tracking CNAME only when trackingHost is set; the port of the public URL is dropped', () => {
  assert.equal(recordsFor(base).some((r) => r.purpose === 'tracking'), false);
  const t = recordsFor({ ...base, trackingHost: 'Track.Example.com' }).find((r) => r.purpose === 'tracking');
  assert.deepEqual({ type: t?.type, name: t?.name, value: t?.value }, { type: 'CNAME', name: 'track.example.com', value: 'gw.relay.test' });
});

test('tracking target that is an IP address becomes an A/AAAA record (a CNAME cannot point at an IP)', () => {
  const a = recordsFor({ ...base, trackingHost: 't.example.com', trackingTarget: '198.51.100.9:8080' }).at(-1)!;
  assert.deepEqual([a.type, a.value], ['A', '198.51.100.9']);
  const aaaa = recordsFor({ ...base, trackingHost: 't.example.com', trackingTarget: '[2001:db8::9]:8080' }).at(-1)!;
  assert.deepEqual([aaaa.type, aaaa.value], ['AAAA', '2001:db8::9']);
});

test('stripPort', () => {
  assert.equal(stripPort('host.test:8080'), 'host.test');
  assert.equal(stripPort('host.test'), 'host.test');
  assert.equal(stripPort('[::1]:80'), '::1');
  assert.equal(stripPort('2001:db8::1'), '2001:db8::1');
});

test('no keys: no DKIM records, the rest still present', () => {
  const recs = recordsFor({ ...base, keys: [] });
  assert.deepEqual(recs.map((r) => r.purpose), ['spf', 'return-path', 'dmarc']);
});
