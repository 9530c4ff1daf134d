// The delivered message verifies (SPEC §5): DKIM is signed last, over exactly
// the bytes the MX receives — after control headers were stripped, line
// endings repaired, Message-ID/Date added and HTML rewritten for tracking.
// Verified with mailauth, its DNS look-ups answered by the test DNS server
// that publishes the records `domain add` printed.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { authenticate } from 'mailauth';
import { addCredential } from '../../src/auth/credentials.js';
import { createDomainService } from '../../src/domains/service.js';
import { startMxSink, submitMail, until, type MxSink } from '../helpers/gateway.js';
import { openTransaction, rawSmtp } from '../helpers/raw-smtp.js';
import { DOMAIN, startRelay, type RelayFixture } from '../helpers/relay.js';
import { verifierResolver } from '../helpers/dns-server.js';

let f: RelayFixture;
let mx: MxSink;
let resolve: (name: string, type: string) => Promise<unknown>;
let edAuth: { user: string; pass: string };

function publish(records: { type: string; name: string; value: string }[]) {
  for (const r of records) if (r.type === 'TXT') f.t.dns.add(r.name, { type: 'TXT', data: r.value });
}

before(async () => {
  f = await startRelay();
  const domains = createDomainService({ config: f.t.config, store: f.t.gw.store });
  publish(domains.get(DOMAIN).records);
  publish(domains.add('ed.test', { algorithm: 'ed25519', selector: 'ed1' }).records);
  const edCred = (await addCredential(f.t.gw.store, 'ed.test', {})) as { username: string; password: string };
  edAuth = { user: edCred.username, pass: edCred.password };
  f.t.dns.set('dest.test', [{ type: 'MX', exchange: 'mx.dest.test', priority: 10 }]);
  f.t.dns.set('mx.dest.test', [{ type: 'A', address: '127.0.0.81' }]);
  f.t.dns.set('other.test', [{ type: 'MX', exchange: 'mx.dest.test', priority: 10 }]);
  mx = await startMxSink('127.0.0.81', f.t.mxPort);
  resolve = verifierResolver(f.t.dns.server);
});
after(async () => {
  await f?.stop();
  await mx?.close();
});

async function dkimResults(message: Buffer, sender: string) {
  const res = await authenticate(message, {
    ip: '127.0.0.1',
    helo: f.t.config.hostname,
    sender,
    mta: 'mx.dest.test',
    resolver: resolve as never,
    disableArc: true,
    disableBimi: true,
  });
  return res.dkim.results.map((r: any) => ({ result: r.status.result, domain: r.signingDomain, selector: r.selector, aligned: r.status.aligned, comment: r.status.comment }));
}

async function deliveredWith(marker: string, n = 1) {
  return until(() => {
    const got = mx.received.filter((m) => m.body.includes(marker));
    return got.length >= n ? got : null;
  }, `delivery of ${marker}`, 10_000);
}

test('a plain text message verifies at the MX (RSA, relaxed/relaxed)', async () => {
  await submitMail({ port: f.t.smtpPort, auth: f.auth, from: `app@${DOMAIN}`, to: 'bob@dest.test', subject: 'dkim plain', text: 'Hello\r\n\r\n\r\n' });
  const [m] = await deliveredWith('Subject: dkim plain');
  const results = await dkimResults(m.body, `app@${DOMAIN}`);
  assert.deepEqual(
    results.map((r) => [r.result, r.domain, r.selector]),
    [['pass', DOMAIN, 'rg1']],
  );
  const sig = /^DKIM-Signature:[\s\S]*?(?=\r\n\S)/m.exec(m.body.toString('latin1'))![0];
  assert.match(sig, /c=relaxed\/relaxed/);
  const h = /\bh=([^;]+)/.exec(sig.replace(/\r\n\s+/g, ''))![1].toLowerCase().split(':').map((x) => x.trim());
  for (const name of ['from', 'to', 'subject', 'date', 'message-id']) assert.ok(h.includes(name), `h= signs ${name}`);
  assert.ok(!h.some((x) => x.startsWith('x-relaygate')));
});

test('tracked HTML, per-recipient copies, for two recipient domains: every copy verifies', async () => {
  const html = '<html><body><p>Hi</p><a href="https://shop.test/a?x=1&amp;y=2">shop</a></body></html>';
  await submitMail({
    port: f.t.smtpPort,
    auth: f.auth,
    from: `App <app@${DOMAIN}>`,
    to: ['ann@dest.test', 'ben@other.test'],
    subject: 'dkim tracked',
    html,
    headers: { 'X-Relaygate-Tag': 'dkim', 'X-Relaygate-Meta': '{"k":"v"}' },
  });
  const copies = await deliveredWith('Subject: dkim tracked', 2);
  for (const m of copies) {
    const text = m.body.toString('latin1');
    assert.match(text, /\/t\/[co]\//, 'tracking applied');
    assert.doesNotMatch(text, /x-relaygate/i);
    const results = await dkimResults(m.body, `app@${DOMAIN}`);
    assert.deepEqual(
      results.map((r) => r.result),
      ['pass'],
      JSON.stringify(results),
    );
  }
});

test('a message submitted with bare LFs and no Message-ID/Date verifies as repaired', async () => {
  const c = await rawSmtp({ port: f.t.smtpPort });
  try {
    await openTransaction(c, { auth: f.auth, from: `app@${DOMAIN}`, to: ['bob@dest.test'] });
    c.write(`From: app@${DOMAIN}\nTo: bob@dest.test\nSubject: dkim repaired\nContent-Type: text/plain\n\nline\rline\n\r\n.\r\n`);
    assert.match(await c.reply(), /^250 /);
  } finally {
    await c.close();
  }
  const [m] = await deliveredWith('Subject: dkim repaired');
  const results = await dkimResults(m.body, `app@${DOMAIN}`);
  assert.deepEqual(
    results.map((r) => r.result),
    ['pass'],
  );
});

test('an ed25519 domain carries an ed25519 and an RSA signature, both pass', async () => {
  await submitMail({ port: f.t.smtpPort, auth: edAuth, from: 'app@ed.test', to: 'bob@dest.test', subject: 'dkim ed25519', text: 'hi' });
  const [m] = await deliveredWith('Subject: dkim ed25519');
  const results = await dkimResults(m.body, 'app@ed.test');
  assert.deepEqual(
    results.map((r) => [r.result, r.domain, r.selector]).sort(),
    [
      ['pass', 'ed.test', 'ed1'],
      ['pass', 'ed.test', 'ed1-rsa'],
    ],
  );
});

test('a change in transit breaks the signature (the verifier really checks)', async () => {
  const [m] = await deliveredWith('Subject: dkim plain');
  const tampered = Buffer.from(m.body.toString('latin1').replace('Subject: dkim plain', 'Subject: dkim PLAIN'), 'latin1');
  const results = await dkimResults(tampered, `app@${DOMAIN}`);
  assert.deepEqual(
    results.map((r) => r.result),
    ['fail'],
  );
});
