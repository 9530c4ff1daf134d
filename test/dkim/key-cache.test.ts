// The signing worker's parsed-key cache: the same KeyObject for the same PEM in
// the form mailauth asks for, everything else passed through untouched, and
// signatures made through it still verify. (Each test file is its own process,
// so patching node:crypto here touches no other test.)
import { test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { generateDkimKey, dkimRecordValue } from '../../src/dkim/keys.js';
import { installPrivateKeyCache } from '../../src/dkim/key-cache.js';
import { dkimSignMessage } from '../../src/dkim/sign.js';
import { dkimpyVerify, ensureDkimpy } from '../helpers/dkimpy.js';

const rsa = generateDkimKey('rsa');
const ed = generateDkimKey('ed25519');
installPrivateKeyCache();
installPrivateKeyCache(); // twice is harmless: one wrapper, not two

test('the PEM form mailauth uses is parsed once; other forms are not cached', () => {
  const a = crypto.createPrivateKey({ key: Buffer.from(rsa.privateKeyPem), format: 'pem' });
  const b = crypto.createPrivateKey({ key: Buffer.from(rsa.privateKeyPem), format: 'pem' });
  assert.equal(a, b);
  assert.equal(a.asymmetricKeyType, 'rsa');
  const c = crypto.createPrivateKey({ key: rsa.privateKeyPem, format: 'pem' });
  assert.equal(c, a, 'string and Buffer of the same PEM are the same key');
  assert.notEqual(crypto.createPrivateKey(rsa.privateKeyPem), crypto.createPrivateKey(rsa.privateKeyPem), 'a bare string is passed through');
  const der = crypto.createPrivateKey(rsa.privateKeyPem).export({ format: 'der', type: 'pkcs8' });
  const d1 = crypto.createPrivateKey({ key: der, format: 'der', type: 'pkcs8' });
  assert.notEqual(d1, crypto.createPrivateKey({ key: der, format: 'der', type: 'pkcs8' }), 'DER is passed through');
  const other = generateDkimKey('rsa');
  const o = crypto.createPrivateKey({ key: Buffer.from(other.privateKeyPem), format: 'pem' });
  const pub = (k: crypto.KeyObject) => crypto.createPublicKey(k).export({ format: 'der', type: 'spki' }).toString('base64');
  assert.notEqual(pub(o), pub(a), 'another PEM gets its own key, not a cached one');
  assert.equal(pub(o), other.publicKeyB64, 'and it is the right one');
});

test('a bad key still throws, every time', () => {
  for (let i = 0; i < 2; i++) {
    assert.throws(() => crypto.createPrivateKey({ key: Buffer.from('not a key'), format: 'pem' }));
  }
});

test('signatures made through the cache verify (dkimpy), repeatedly, for RSA and Ed25519', async () => {
  await ensureDkimpy();
  const records = {
    'rg1._domainkey.example.test': dkimRecordValue('rsa', rsa.publicKeyB64),
    'ed1._domainkey.example.test': dkimRecordValue('ed25519', ed.publicKeyB64),
  };
  const keys = [
    { domain: 'example.test', selector: 'rg1', algorithm: 'rsa' as const, privateKeyPem: rsa.privateKeyPem },
    { domain: 'example.test', selector: 'ed1', algorithm: 'ed25519' as const, privateKeyPem: ed.privateKeyPem },
  ];
  for (let i = 0; i < 3; i++) {
    const msg = Buffer.from(`From: a@example.test\r\nTo: b@rcpt.test\r\nSubject: n${i}\r\n\r\nbody ${i}\r\n`);
    for (const k of keys) assert.equal(await dkimpyVerify(await dkimSignMessage(msg, [k]), records), true, `${k.algorithm} #${i}`);
  }
});
