// The Received trace field (src/pipeline/trace.ts): RFC 5321 §4.4 form, and
// nothing the client chose can break out of its place in it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { receivedHeader } from '../../src/pipeline/trace.js';

const at = Date.UTC(2026, 11, 2, 20, 40, 5);
const base = { hostname: 'relay.example.net', id: '01JEXAMPLE', at, recipients: ['a@dest.test'] };

test('SMTP: from the HELO name and address, by us, protocol, our id, the one recipient, the time', () => {
  assert.equal(
    receivedHeader({ helo: 'app.example.com', clientAddress: '192.0.2.7', protocol: 'ESMTPSA' }, base),
    'Received: from app.example.com ([192.0.2.7])\r\n\tby relay.example.net (relaygate) with ESMTPSA id 01JEXAMPLE\r\n\tfor <a@dest.test>;\r\n\tWed, 02 Dec 2026 20:40:05 +0000',
  );
});

test('HTTP API: no from clause; several recipients are not listed', () => {
  assert.equal(
    receivedHeader({ protocol: 'HTTP' }, { ...base, recipients: ['a@dest.test', 'b@dest.test'] }),
    'Received: by relay.example.net (relaygate) with HTTP id 01JEXAMPLE;\r\n\tWed, 02 Dec 2026 20:40:05 +0000',
  );
});

test('address literals: IPv4-mapped IPv6 shows as IPv4, IPv6 gets its tag, an address literal HELO is kept', () => {
  assert.match(receivedHeader({ helo: '[192.0.2.7]', clientAddress: '::ffff:192.0.2.7', protocol: 'ESMTP' }, base), /^Received: from \[192\.0\.2\.7\] \(\[192\.0\.2\.7\]\)\r\n/);
  assert.match(receivedHeader({ helo: 'h.test', clientAddress: '2001:db8::1', protocol: 'ESMTPS' }, base), /^Received: from h\.test \(\[IPv6:2001:db8::1\]\)\r\n/);
});

test('a HELO name that is not a hostname or literal becomes "unknown": no CR/LF, comment or semicolon gets in', () => {
  for (const helo of ['evil\r\nBcc: x@y', 'a (b) c', 'x;y', 'name with space', '', 'ünïcode', 'a'.repeat(300)]) {
    const h = receivedHeader({ helo, clientAddress: '192.0.2.7', protocol: 'ESMTPA' }, base);
    assert.match(h, /^Received: from unknown \(\[192\.0\.2\.7\]\)\r\n\tby /, JSON.stringify(helo));
    assert.equal(h.split('\r\n').length, 4);
    assert.ok(h.split('\r\n').slice(1).every((l) => l.startsWith('\t')), 'every further line is a continuation');
  }
});
