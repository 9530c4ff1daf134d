// The address checks the submission edge relies on: loopback (AUTH without TLS
// is allowed only there) and IP-credential networks, IPv4-mapped forms included
// (a dual-stack listener reports IPv4 clients as ::ffff:a.b.c.d).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ipInCidr, isLoopback } from '../../src/smtp/listener.js';

test('isLoopback', () => {
  for (const ip of ['127.0.0.1', '127.1.2.3', '::1', '::ffff:127.0.0.1']) assert.equal(isLoopback(ip), true, ip);
  for (const ip of ['10.0.0.1', '192.168.1.1', '::ffff:10.0.0.1', '2001:db8::1', '0.0.0.0', '::', 'garbage', '']) assert.equal(isLoopback(ip), false, ip);
});

test('ipInCidr', () => {
  assert.equal(ipInCidr('10.0.0.7', '10.0.0.0/24'), true);
  assert.equal(ipInCidr('::ffff:10.0.0.7', '10.0.0.0/24'), true);
  assert.equal(ipInCidr('10.0.1.7', '10.0.0.0/24'), false);
  assert.equal(ipInCidr('10.0.0.7', '10.0.0.7/32'), true);
  assert.equal(ipInCidr('10.0.0.8', '10.0.0.7/32'), false);
  assert.equal(ipInCidr('2001:db8::5', '2001:db8::/64'), true);
  assert.equal(ipInCidr('2001:db9::5', '2001:db8::/64'), false);
  assert.equal(ipInCidr('10.0.0.7', '2001:db8::/64'), false);
  assert.equal(ipInCidr('10.0.0.7', '::ffff:10.0.0.0/120'), true);
  assert.equal(ipInCidr('10.0.1.7', '::ffff:10.0.0.0/120'), false);
  assert.equal(ipInCidr('10.0.0.7', 'not a cidr'), false);
  assert.equal(ipInCidr('nonsense', '10.0.0.0/8'), false);
});
