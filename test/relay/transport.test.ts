// How the delivery worker talks to MX hosts (SPEC §6): STARTTLS when offered,
// connections reused across messages, a host that refuses service at the
// greeting skipped for the next one, SMTPUTF8 recipients.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { smtpError, startMxSink, submitMail, type MxSink } from '../helpers/gateway.js';
import { DOMAIN, startRelay, type RelayFixture } from '../helpers/relay.js';

let f: RelayFixture;
const sinks: MxSink[] = [];

function mxFor(domain: string, hosts: [number, string, string][]) {
  f.t.dns.set(domain, hosts.map(([priority, host]) => ({ type: 'MX' as const, exchange: host, priority })));
  for (const [, host, ip] of hosts) f.t.dns.set(host, [{ type: 'A', address: ip }]);
}

async function send(to: string | string[], subject = 'hi') {
  const r = await submitMail({ port: f.t.smtpPort, auth: f.auth, from: `app@${DOMAIN}`, to, subject, text: 'hello' });
  assert.match(r.response, /^250 2\.0\.0 Ok: queued as \S+$/);
  return r.id;
}

before(async () => {
  f = await startRelay({ delivery: { retrySchedule: ['300ms', '600ms'] } });
});
after(async () => {
  await f?.stop();
  await Promise.all(sinks.map((s) => s.close()));
});

test('STARTTLS is used when the MX offers it', async () => {
  const certs = f.t.config.certsDir;
  let secure: boolean | undefined;
  const mx = await startMxSink('127.0.0.91', f.t.mxPort, {
    disabledCommands: ['AUTH'],
    key: fs.readFileSync(path.join(certs, 'key.pem')),
    cert: fs.readFileSync(path.join(certs, 'cert.pem')),
    onMailFrom(_a, session, cb) {
      secure = session.secure;
      cb();
    },
  });
  sinks.push(mx);
  mxFor('tls.test', [[10, 'mx.tls.test', '127.0.0.91']]);
  const id = await send('bob@tls.test');
  await mx.waitFor(1, 5000);
  assert.equal(secure, true);
  assert.equal((await f.settled(id))[0].status, 'delivered');
});

test('one connection carries consecutive messages to the same MX', async () => {
  let connections = 0;
  const mx = await startMxSink('127.0.0.92', f.t.mxPort, {
    onConnect(_s, cb) {
      connections++;
      cb();
    },
  });
  sinks.push(mx);
  mxFor('reuse.test', [[10, 'mx.reuse.test', '127.0.0.92']]);
  for (let i = 0; i < 3; i++) {
    const id = await send(`r${i}@reuse.test`, `reuse ${i}`);
    await f.settled(id, 5000);
  }
  assert.equal(mx.received.length, 3);
  assert.equal(connections, 1, 'RSET and go again, no new connection');
});

test('an MX answering 421 at the greeting is skipped for the next one', async () => {
  const busy = await startMxSink('127.0.0.93', f.t.mxPort, {
    onConnect(_s, cb) {
      cb(smtpError(421, '4.3.2 Too busy, try later'));
    },
  });
  const good = await startMxSink('127.0.0.94', f.t.mxPort);
  sinks.push(busy, good);
  mxFor('busy.test', [
    [10, 'mx1.busy.test', '127.0.0.93'],
    [20, 'mx2.busy.test', '127.0.0.94'],
  ]);
  const id = await send('bob@busy.test');
  await good.waitFor(1, 5000);
  const [r] = await f.settled(id);
  assert.equal(r.status, 'delivered');
  assert.equal(r.attempts, 1);
  assert.equal(busy.received.length, 0);
});

test('a UTF-8 mailbox is delivered with SMTPUTF8 (RFC 6531)', async () => {
  let utf8: boolean | undefined;
  const mx = await startMxSink('127.0.0.95', f.t.mxPort, {
    onMailFrom(a, _s, cb) {
      utf8 = !!(a.args as Record<string, unknown> | false | undefined && (a.args as Record<string, unknown>).SMTPUTF8);
      cb();
    },
  });
  sinks.push(mx);
  mxFor('intl.test', [[10, 'mx.intl.test', '127.0.0.95']]);
  const id = await send('jürgen@intl.test');
  const [m] = await mx.waitFor(1, 5000);
  assert.deepEqual(m.to, ['jürgen@intl.test']);
  assert.equal(utf8, true);
  assert.equal((await f.settled(id))[0].status, 'delivered');
});

test('a permanent refusal of the sender at MAIL FROM bounces as policy with the reply', async () => {
  const mx = await startMxSink('127.0.0.96', f.t.mxPort, {
    onMailFrom(_a, _s, cb) {
      cb(smtpError(550, '5.7.1 Service unavailable; Client host [127.0.0.1] blocked using zen.spamhaus.org'));
    },
  });
  sinks.push(mx);
  mxFor('blocked.test', [[10, 'mx.blocked.test', '127.0.0.96']]);
  const id = await send('bob@blocked.test');
  const [r] = await f.settled(id, 5000);
  assert.equal(r.status, 'bounced');
  assert.equal(r.bounce_class, 'policy');
  assert.equal(r.last_reply, '550 5.7.1 Service unavailable; Client host [127.0.0.1] blocked using zen.spamhaus.org');
});
