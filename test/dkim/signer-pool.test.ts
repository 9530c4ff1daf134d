// createSigner(): the worker-thread pool must sign exactly like the in-thread
// path, keep the caller's bytes intact and surface every failure.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { dkimVerify } from 'mailauth';
import { dkimRecordValue, generateDkimKey } from '../../src/dkim/keys.js';
import { createSigner, type Signer, type SigningKey } from '../../src/dkim/sign.js';
import { isGatewayError } from '../../src/errors.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const rsa = generateDkimKey('rsa');
const ed = generateDkimKey('ed25519');
const KEYS: SigningKey[] = [
  { domain: 'example.test', selector: 'rg1', algorithm: 'rsa', privateKeyPem: rsa.privateKeyPem },
  { domain: 'example.test', selector: 'ed1', algorithm: 'ed25519', privateKeyPem: ed.privateKeyPem },
];
const TXT: Record<string, string> = {
  'rg1._domainkey.example.test': dkimRecordValue('rsa', rsa.publicKeyB64),
  'ed1._domainkey.example.test': dkimRecordValue('ed25519', ed.publicKeyB64),
};
// mailauth's verifier with the two key records held in memory.
const resolver = async (name: string) => {
  const v = TXT[name];
  if (!v) throw Object.assign(new Error(`no ${name}`), { code: 'ENOTFOUND' });
  return [[v]];
};
const verifyAll = async (signed: Buffer) => {
  const res = await dkimVerify(signed, { resolver } as never);
  return res.results.map((r) => r.status.result);
};

const message = (n: number, size = 2000) =>
  Buffer.from(
    [
      'From: App <app@example.test>',
      'To: r@rcpt.test',
      `Subject: message ${n}`,
      `Message-ID: <${n}@example.test>`,
      'Content-Type: text/plain; charset=utf-8',
      '',
      `body of ${n} `.repeat(Math.ceil(size / 12)).replace(/(.{70})/g, '$1\r\n'),
      '',
    ].join('\r\n'),
  );

const withTimeout = <T>(p: Promise<T>, ms = 60_000) =>
  Promise.race([p, new Promise<never>((_, rej) => setTimeout(() => rej(new Error(`no result within ${ms} ms`)), ms).unref())]);

describe('pool with 2 workers', () => {
  let signer: Signer;
  before(() => {
    signer = createSigner({ workers: 2 });
  });
  after(() => signer.close());

  test('signs with both keys; the output is signatures + the original bytes', async () => {
    const m = message(1);
    const signed = await withTimeout(signer.sign(m, KEYS));
    assert.ok(signed.subarray(signed.length - m.length).equals(m));
    assert.deepEqual(await verifyAll(signed), ['pass', 'pass']);
  });

  test("the caller's buffer (even a slice of Node's shared pool) is not detached", async () => {
    const small = Buffer.from('From: a@example.test\r\nSubject: s\r\n\r\nhi\r\n');
    const neighbour = Buffer.from('neighbour in the same pool');
    const before = Buffer.from(small);
    const signed = await withTimeout(signer.sign(small, KEYS));
    assert.equal(small.length, before.length);
    assert.ok(small.equals(before));
    assert.equal(neighbour.toString(), 'neighbour in the same pool');
    assert.ok(signed.toString().endsWith(before.toString()));
  });

  test('40 concurrent jobs: each result belongs to its own message and verifies', async () => {
    const msgs = Array.from({ length: 40 }, (_, i) => message(i, 500 + i * 300));
    const out = await withTimeout(Promise.all(msgs.map((m) => signer.sign(m, KEYS))));
    for (let i = 0; i < msgs.length; i++) {
      assert.ok(out[i].subarray(out[i].length - msgs[i].length).equals(msgs[i]), `result ${i} ends with message ${i}`);
    }
    const results = await Promise.all(out.map(verifyAll));
    assert.ok(results.every((r) => r.length === 2 && r.every((x) => x === 'pass')));
  });

  test('a bad key rejects with dkim_sign_failed, and the pool keeps working', async () => {
    await assert.rejects(
      withTimeout(signer.sign(message(2), [{ ...KEYS[0], privateKeyPem: 'garbage' }])),
      (err: unknown) => isGatewayError(err) && err.code === 'dkim_sign_failed' && /rg1\._domainkey/.test(err.message),
    );
    await assert.rejects(withTimeout(signer.sign(message(3), [{ ...KEYS[1], algorithm: 'rsa' }])), /Invalid key type/);
    assert.deepEqual(await verifyAll(await withTimeout(signer.sign(message(4), KEYS))), ['pass', 'pass']);
  });

  test('no keys: the message comes back unchanged', async () => {
    const m = message(5);
    assert.equal(await signer.sign(m, []), m);
  });
});

test('close() lets in-flight jobs finish, then refuses new ones', async () => {
  const signer = createSigner({ workers: 1 });
  const pending = signer.sign(message(6), KEYS);
  await withTimeout(signer.close());
  assert.deepEqual(await verifyAll(await pending), ['pass', 'pass']);
  await assert.rejects(signer.sign(message(7), KEYS), /signer is closed/);
  await signer.close(); // idempotent
});

test('a job over its time limit is rejected (never left hanging)', async () => {
  // The first job also waits for the worker to start (hundreds of ms), so 20 ms always trips.
  const signer = createSigner({ workers: 1, jobTimeoutMs: 20 });
  try {
    await assert.rejects(withTimeout(signer.sign(message(8), KEYS)), /timed out after 20 ms/);
  } finally {
    await withTimeout(signer.close());
  }
});

test('workers: 0 signs on the calling thread', async () => {
  const signer = createSigner({ workers: 0 });
  assert.deepEqual(await verifyAll(await signer.sign(message(9), KEYS)), ['pass', 'pass']);
  await assert.rejects(signer.sign(message(9), [{ ...KEYS[0], privateKeyPem: 'x' }]), /dkim_sign_failed|DKIM signing failed/);
  await signer.close();
  await assert.rejects(signer.sign(message(9), KEYS), /signer is closed/);
});

test('the worker starts under `node --import tsx` too (not only the tsx CLI)', async () => {
  const code = `
    import { createSigner } from './src/dkim/sign.ts';
    const keys = JSON.parse(process.env.KEYS);
    const s = createSigner({ workers: 1 });
    const out = await s.sign(Buffer.from('From: a@example.test\\r\\nSubject: x\\r\\n\\r\\nbody\\r\\n'), keys);
    await s.close();
    process.stdout.write(out.toString('base64'));`;
  const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', code], {
    cwd: ROOT,
    env: { ...process.env, KEYS: JSON.stringify(KEYS) },
    stdio: ['ignore', 'pipe', 'pipe'],
    timeout: 20_000,
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d) => (stdout += d));
  child.stderr.on('data', (d) => (stderr += d));
  const exitCode = await new Promise((r) => child.on('close', r));
  assert.equal(exitCode, 0, stderr);
  assert.deepEqual(await verifyAll(Buffer.from(stdout, 'base64')), ['pass', 'pass']);
});
