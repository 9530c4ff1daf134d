import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createPrivateKey, createPublicKey, sign, verify } from 'node:crypto';
import { dkimRecordValue, generateDkimKey, parseDkimRecord } from '../../src/dkim/keys.js';

test('RSA key: 2048-bit PKCS#8 PEM, p= is base64 SPKI DER of the same key', () => {
  const k = generateDkimKey('rsa');
  assert.match(k.privateKeyPem, /^-----BEGIN PRIVATE KEY-----\n/);
  const priv = createPrivateKey(k.privateKeyPem);
  assert.equal(priv.asymmetricKeyType, 'rsa');
  assert.equal(priv.asymmetricKeyDetails?.modulusLength, 2048);
  const pub = createPublicKey({ key: Buffer.from(k.publicKeyB64, 'base64'), format: 'der', type: 'spki' });
  const sig = sign('sha256', Buffer.from('x'), priv);
  assert.ok(verify('sha256', Buffer.from('x'), pub, sig), 'public key must match the private key');
  assert.match(k.publicKeyB64, /^[A-Za-z0-9+/]+=*$/);
});

test('ed25519 key: p= is the raw 32-byte key (RFC 8463), not the SPKI', () => {
  const k = generateDkimKey('ed25519');
  const raw = Buffer.from(k.publicKeyB64, 'base64');
  assert.equal(raw.length, 32);
  const priv = createPrivateKey(k.privateKeyPem);
  assert.equal(priv.asymmetricKeyType, 'ed25519');
  const jwkX = Buffer.from(createPublicKey(priv).export({ format: 'jwk' }).x as string, 'base64url');
  assert.deepEqual(raw, jwkX);
});

test('two generated keys differ', () => {
  assert.notEqual(generateDkimKey('ed25519').publicKeyB64, generateDkimKey('ed25519').publicKeyB64);
});

test('unknown algorithm is refused', () => {
  assert.throws(() => generateDkimKey('dsa' as never), /unsupported DKIM algorithm/);
});

test('dkimRecordValue', () => {
  assert.equal(dkimRecordValue('rsa', 'AAAA'), 'v=DKIM1; k=rsa; p=AAAA');
  assert.equal(dkimRecordValue('ed25519', 'BBBB'), 'v=DKIM1; k=ed25519; p=BBBB');
});

test('parseDkimRecord: round-trips our own value', () => {
  const k = generateDkimKey('rsa');
  assert.deepEqual(parseDkimRecord(dkimRecordValue('rsa', k.publicKeyB64)), { v: 'DKIM1', k: 'rsa', p: k.publicKeyB64 });
});

test('parseDkimRecord: whitespace tolerant, folding inside p= removed, empty parts ignored', () => {
  const t = parseDkimRecord('  v = DKIM1 ;k=ed25519;\t p = AbC d\r\n\tEf= ;; t=y: s ;');
  assert.equal(t.v, 'DKIM1');
  assert.equal(t.k, 'ed25519');
  assert.equal(t.p, 'AbCdEf=');
  assert.equal(t.t, 'y: s');
});

test('parseDkimRecord: no tags, garbage, revoked key', () => {
  assert.deepEqual(parseDkimRecord(''), {});
  assert.deepEqual(parseDkimRecord('hello world'), {});
  assert.equal(parseDkimRecord('v=DKIM1; p=').p, '');
});

test('parseDkimRecord: a duplicated p= does not replace the first', () => {
  assert.equal(parseDkimRecord('v=DKIM1; p=first; p=second').p, 'first');
});
