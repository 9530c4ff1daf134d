// Each accepted message gets a Received field at the top (RFC 5321 §4.4) naming
// the client, our host, the protocol (RFC 3848) and the queue id the 250 and the
// API return — and the DKIM signature, added after it, still covers the message.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createApiKey } from '../../src/auth/api-keys.js';
import { apiClient } from '../api/client.js';
import { startMxSink, until, type MxSink } from '../helpers/gateway.js';
import { DOMAIN, mxFor, startRelay, type RelayFixture } from '../helpers/relay.js';

let f: RelayFixture;
let mx: MxSink;

before(async () => {
  f = await startRelay();
  mxFor(f, 'trace.test', [[10, 'mx.trace.test', '127.0.5.20']]);
  mx = await startMxSink('127.0.5.20', f.t.mxPort);
});
after(async () => {
  await f?.stop();
  await mx?.close();
});

const headerBlock = (body: Buffer) => body.toString('latin1').split('\r\n\r\n')[0];
const received = (body: Buffer) => /^Received: [^]*?(?=\r\n[^\t ])/m.exec(headerBlock(body))?.[0];

async function delivered(to: string) {
  const m = await until(() => mx.received.find((r) => r.to.includes(to)), `delivery to ${to}`);
  return m.body;
}

test('SMTP with AUTH: from the HELO name and loopback address, with ESMTPA and the queue id', async () => {
  const c = await f.session(); // EHLO client.test, AUTH PLAIN
  assert.match(await c.cmd(`MAIL FROM:<app@${DOMAIN}>`), /^250 /);
  assert.match(await c.cmd('RCPT TO:<one@trace.test>'), /^250 /);
  assert.match(await c.cmd('DATA'), /^354 /);
  const reply = await c.cmd(`From: app@${DOMAIN}\r\nTo: one@trace.test\r\nSubject: traced\r\n\r\nhello\r\n.`);
  const id = /queued as (\S+)/.exec(reply)?.[1];
  assert.ok(id, reply);
  const body = await delivered('one@trace.test');
  const lines = headerBlock(body).split('\r\n');
  assert.match(lines[0], /^DKIM-Signature: /, 'signed last, so the signature comes first');
  const r = received(body);
  assert.ok(r, 'a Received field');
  assert.equal(r.replace(/\r\n\t/g, ' '), `Received: from client.test ([127.0.0.1]) by relay.test (relaygate) with ESMTPA id ${id} for <one@trace.test>; ${r.split(';\r\n\t')[1]}`);
  assert.match(r.split(';\r\n\t')[1], /^[A-Z][a-z]{2}, \d{2} [A-Z][a-z]{2} \d{4} \d{2}:\d{2}:\d{2} \+0000$/);
  assert.equal((headerBlock(body).match(/^Received:/gm) ?? []).length, 1, 'one Received field, ours');
});

test('HTTP API: by us with HTTP and the message id the API returned; several recipients not listed', async () => {
  const key = createApiKey(f.t.gw.store, 'trace', ['send']).key;
  const res = await apiClient(f.t.httpUrl)('POST', '/messages', {
    key,
    body: { from: `app@${DOMAIN}`, to: ['two@trace.test', 'three@trace.test'], subject: 'traced', text: 'hi\n', track: false },
  });
  assert.equal(res.status, 202, res.text);
  const body = await delivered('two@trace.test');
  const r = received(body);
  assert.ok(r);
  assert.match(r, new RegExp(`^Received: by relay\\.test \\(relaygate\\) with HTTP id ${res.json.id};\\r\\n\\t`));
  assert.doesNotMatch(r, /three@|two@/);
});
