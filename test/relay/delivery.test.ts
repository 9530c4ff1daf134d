// Delivery to the recipients' MX hosts (SPEC §6), end to end: submitted over
// SMTP, resolved through a real DNS server on loopback, delivered to real
// smtp-server MX hosts on 127.0.0.x. Retries use a 300ms/600ms schedule.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { smtpError, startMxSink, submitMail, until, type MxSink } from '../helpers/gateway.js';
import { DOMAIN, startRelay, type RelayFixture } from '../helpers/relay.js';

let f: RelayFixture;
const sinks: MxSink[] = [];

async function sink(ip: string): Promise<MxSink> {
  const s = await startMxSink(ip, f.t.mxPort);
  sinks.push(s);
  return s;
}

function mxFor(domain: string, hosts: [number, string, string][]) {
  f.t.dns.set(domain, hosts.map(([priority, host]) => ({ type: 'MX' as const, exchange: host, priority })));
  for (const [, host, ip] of hosts) f.t.dns.set(host, [{ type: 'A', address: ip }]);
}

async function send(to: string | string[], extra: { subject?: string; headers?: Record<string, string> } = {}) {
  const r = await submitMail({ port: f.t.smtpPort, auth: f.auth, from: `app@${DOMAIN}`, to, text: 'hello', ...extra });
  assert.match(r.response, /^250 2\.0\.0 Ok: queued as \S+$/);
  return { id: r.id, acceptedAt: Date.now() };
}

before(async () => {
  f = await startRelay({ delivery: { retrySchedule: ['300ms', '600ms'] } });
});
after(async () => {
  await f?.stop();
  await Promise.all(sinks.map((s) => s.close()));
});

describe('routing', () => {
  test('the most preferred MX gets the mail, and the first attempt starts within a second of the 250', async () => {
    const primary = await sink('127.0.0.51');
    const backup = await sink('127.0.0.52');
    // Listed backup first: order must come from the preference, not the answer.
    mxFor('pref.test', [
      [20, 'backup.pref.test', '127.0.0.52'],
      [10, 'primary.pref.test', '127.0.0.51'],
    ]);
    const { id, acceptedAt } = await send('bob@pref.test');
    const [m] = await primary.waitFor(1, 5000);
    assert.ok(m.at - acceptedAt < 1000, `delivered ${m.at - acceptedAt} ms after the 250`);
    const [r] = await f.settled(id);
    assert.equal(r.status, 'delivered');
    assert.equal(r.attempts, 1);
    assert.match(r.last_reply!, /^250 /);
    assert.equal(backup.received.length, 0);
  });

  test('a dead preferred MX is skipped for the next one within the same attempt', async () => {
    const second = await sink('127.0.0.54');
    // Nothing listens on 127.0.0.53: connection refused.
    mxFor('fallback.test', [
      [10, 'dead.fallback.test', '127.0.0.53'],
      [20, 'live.fallback.test', '127.0.0.54'],
    ]);
    const { id } = await send('bob@fallback.test');
    await second.waitFor(1, 5000);
    const [r] = await f.settled(id);
    assert.equal(r.status, 'delivered');
    assert.equal(r.attempts, 1);
  });

  test('a domain without MX is delivered to its A record (RFC 5321 §5.1)', async () => {
    const host = await sink('127.0.0.55');
    f.t.dns.set('amx.test', [{ type: 'A', address: '127.0.0.55' }]);
    const { id } = await send('bob@amx.test');
    const [m] = await host.waitFor(1, 5000);
    assert.deepEqual(m.to, ['bob@amx.test']);
    assert.equal((await f.settled(id))[0].status, 'delivered');
  });

  test('a null MX (RFC 7505) bounces at once as bad-domain', async () => {
    f.t.dns.set('nullmx.test', [{ type: 'MX', exchange: '.', priority: 0 }]);
    const { id, acceptedAt } = await send('bob@nullmx.test');
    const [r] = await f.settled(id, 5000);
    assert.equal(r.status, 'bounced');
    assert.equal(r.bounce_class, 'bad-domain');
    assert.equal(r.attempts, 1);
    assert.match(r.last_reply!, /^5\d\d 5\.1\.10 .*null MX/);
    assert.ok(r.updated_at - acceptedAt < 1500, 'at once, not after retries');
    const types = f.events(id).map((e) => e.type);
    assert.deepEqual(types, ['queued', 'bounced']);
  });

  test('a DNS failure (SERVFAIL) defers; once DNS answers the mail is delivered', async () => {
    const mx = await sink('127.0.0.66');
    mxFor('flaky.test', [[10, 'mx.flaky.test', '127.0.0.66']]);
    f.t.dns.behave('flaky.test', 'servfail');
    const { id } = await send('bob@flaky.test');
    const r1 = await until(() => f.recipients(id).find((r) => r.status === 'deferred'), 'deferred on SERVFAIL', 8000);
    assert.match(r1.last_reply!, /^4\d\d 4\.4\.\d /);
    f.t.dns.behave('flaky.test', 'answer');
    await mx.waitFor(1, 8000);
    const [r] = await f.settled(id, 8000);
    assert.equal(r.status, 'delivered');
    assert.ok(r.attempts >= 2);
    assert.equal(f.events(id).filter((e) => e.type === 'bounced').length, 0);
  });

  test('NXDOMAIN bounces at once as bad-domain', async () => {
    const { id, acceptedAt } = await send('bob@does-not-exist.test');
    const [r] = await f.settled(id, 5000);
    assert.equal(r.status, 'bounced');
    assert.equal(r.bounce_class, 'bad-domain');
    assert.equal(r.attempts, 1);
    assert.match(r.last_reply!, /^550 5\.1\.2 .*NXDOMAIN/);
    assert.ok(r.updated_at - acceptedAt < 1500);
  });
});

describe('outcomes', () => {
  test('4xx twice then 250: delivered with attempts = 3 and two deferred events carrying the replies', async () => {
    const mx = await sink('127.0.0.56');
    mxFor('greylist.test', [[10, 'mx.greylist.test', '127.0.0.56']]);
    let tries = 0;
    mx.rcpt = () => (++tries <= 2 ? smtpError(451, `4.7.1 Greylisted, try again later (${tries})`) : null);
    const { id } = await send('bob@greylist.test');
    const [r] = await f.settled(id, 10_000);
    assert.equal(r.status, 'delivered');
    assert.equal(r.attempts, 3);
    assert.equal(mx.received.length, 1);
    const deferred = f.events(id).filter((e) => e.type === 'deferred');
    assert.deepEqual(
      deferred.map((e) => e.data.reply),
      ['451 4.7.1 Greylisted, try again later (1)', '451 4.7.1 Greylisted, try again later (2)'],
    );
    assert.deepEqual(
      f.events(id).map((e) => e.type),
      ['queued', 'deferred', 'deferred', 'delivered'],
    );
  });

  test('between retries the recipient is deferred with the last reply', async () => {
    const mx = await sink('127.0.0.57');
    mxFor('slowgrey.test', [[10, 'mx.slowgrey.test', '127.0.0.57']]);
    let tries = 0;
    mx.rcpt = () => (++tries <= 1 ? smtpError(450, '4.2.0 Mailbox busy') : null);
    const { id } = await send('bob@slowgrey.test');
    const mid = await until(() => f.recipients(id).find((r) => r.status === 'deferred'), 'deferred state', 5000);
    assert.equal(mid.last_reply, '450 4.2.0 Mailbox busy');
    assert.equal(mid.attempts, 1);
    assert.ok(mid.next_attempt_at! > mid.updated_at);
    assert.equal((await f.settled(id))[0].status, 'delivered');
  });

  test('5xx user unknown bounces at once as bad-mailbox with the reply verbatim', async () => {
    const mx = await sink('127.0.0.58');
    mxFor('nouser.test', [[10, 'mx.nouser.test', '127.0.0.58']]);
    const reply = '5.1.1 <ghost@nouser.test>: Recipient address rejected: User unknown in local recipient table';
    mx.rcpt = () => smtpError(550, reply);
    const { id } = await send('ghost@nouser.test');
    const [r] = await f.settled(id, 5000);
    assert.equal(r.status, 'bounced');
    assert.equal(r.bounce_class, 'bad-mailbox');
    assert.equal(r.attempts, 1);
    assert.equal(r.last_reply, `550 ${reply}`);
    const bounced = f.events(id).find((e) => e.type === 'bounced')!;
    assert.equal(bounced.data.reply, `550 ${reply}`);
    assert.equal(bounced.data.bounce_class, 'bad-mailbox');
    assert.equal(mx.received.length, 0);
  });

  test('5xx after DATA (content refused) bounces every recipient of the transaction', async () => {
    const mx = await sink('127.0.0.59');
    mxFor('spamfilter.test', [[10, 'mx.spamfilter.test', '127.0.0.59']]);
    mx.data = () => smtpError(554, '5.7.1 Message rejected as spam by Content Filtering');
    const { id } = await send(['a@spamfilter.test', 'b@spamfilter.test']);
    const rows = await f.settled(id, 5000);
    assert.deepEqual(
      rows.map((r) => [r.status, r.bounce_class, r.last_reply]),
      [
        ['bounced', 'spam', '554 5.7.1 Message rejected as spam by Content Filtering'],
        ['bounced', 'spam', '554 5.7.1 Message rejected as spam by Content Filtering'],
      ],
    );
  });
});

describe('transactions', () => {
  test('recipients of one domain share one SMTP transaction', async () => {
    const mx = await sink('127.0.0.60');
    mxFor('team.test', [[10, 'mx.team.test', '127.0.0.60']]);
    const to = ['a@team.test', 'b@team.test', 'c@team.test'];
    const { id } = await send(to, { headers: { 'X-Relaygate-Track': 'none' } });
    const rows = await f.settled(id);
    assert.deepEqual(
      rows.map((r) => r.status),
      ['delivered', 'delivered', 'delivered'],
    );
    assert.equal(mx.received.length, 1, 'one DATA for all three');
    assert.deepEqual([...mx.received[0].to].sort(), to);
  });

  test('a partial 5xx bounces only the refused recipient; the others are delivered in the same transaction', async () => {
    const mx = await sink('127.0.0.62');
    mxFor('partial.test', [[10, 'mx.partial.test', '127.0.0.62']]);
    mx.rcpt = (addr) => (addr.startsWith('gone@') ? smtpError(550, '5.1.1 gone@partial.test: mailbox unavailable') : null);
    const { id } = await send(['ok1@partial.test', 'gone@partial.test', 'ok2@partial.test'], { headers: { 'X-Relaygate-Track': 'none' } });
    const rows = await f.settled(id);
    const by = Object.fromEntries(rows.map((r) => [r.email, r]));
    assert.equal(by['ok1@partial.test'].status, 'delivered');
    assert.equal(by['ok2@partial.test'].status, 'delivered');
    assert.equal(by['gone@partial.test'].status, 'bounced');
    assert.equal(by['gone@partial.test'].bounce_class, 'bad-mailbox');
    assert.equal(by['gone@partial.test'].last_reply, '550 5.1.1 gone@partial.test: mailbox unavailable');
    assert.equal(mx.received.length, 1);
    assert.deepEqual([...mx.received[0].to].sort(), ['ok1@partial.test', 'ok2@partial.test']);
  });

  test('the envelope sender is the submitted one', async () => {
    const mx = await sink('127.0.0.63');
    mxFor('envelope.test', [[10, 'mx.envelope.test', '127.0.0.63']]);
    const r = await submitMail({ port: f.t.smtpPort, auth: f.auth, from: `bounces+42@mail.${DOMAIN}`, to: 'x@envelope.test', text: 'hi' });
    const [m] = await mx.waitFor(1, 5000);
    assert.equal(m.from, `bounces+42@mail.${DOMAIN}`);
    assert.ok(r.id);
  });
});

describe('scheduling and suppression', () => {
  test('X-Relaygate-Send-At a few seconds ahead: scheduled, not sent before its time, then delivered', async () => {
    const mx = await sink('127.0.0.64');
    mxFor('later.test', [[10, 'mx.later.test', '127.0.0.64']]);
    const sendAt = Date.now() + 2500;
    const { id } = await send('bob@later.test', { headers: { 'X-Relaygate-Send-At': new Date(sendAt).toISOString() } });
    const [r0] = f.recipients(id);
    assert.equal(r0.status, 'scheduled');
    assert.deepEqual(
      f.events(id).map((e) => e.type),
      ['scheduled'],
    );
    await sleep(1500);
    assert.equal(mx.received.length, 0, 'not before its time');
    const [m] = await mx.waitFor(1, 6000);
    assert.ok(m.at >= sendAt - 50, `delivered ${sendAt - m.at} ms early`);
    assert.ok(m.at - sendAt < 1500, `delivered ${m.at - sendAt} ms late`);
    const [r] = await f.settled(id);
    assert.equal(r.status, 'delivered');
    assert.equal(r.attempts, 1);
  });

  test('a suppressed recipient is accepted but not delivered: status and event suppressed', async () => {
    const mx = await sink('127.0.0.65');
    mxFor('supp.test', [[10, 'mx.supp.test', '127.0.0.65']]);
    f.t.gw.store.tenants.suppress(DOMAIN, 'unsub@supp.test', 'manual');
    const { id } = await send(['unsub@supp.test', 'keep@supp.test'], { headers: { 'X-Relaygate-Track': 'none' } });
    const rows = await f.settled(id);
    const by = Object.fromEntries(rows.map((r) => [r.email, r]));
    assert.equal(by['unsub@supp.test'].status, 'suppressed');
    assert.equal(by['unsub@supp.test'].attempts, 0);
    assert.equal(by['keep@supp.test'].status, 'delivered');
    const ev = f.events(id).filter((e) => e.recipient === 'unsub@supp.test');
    assert.deepEqual(
      ev.map((e) => e.type),
      ['suppressed'],
    );
    await sleep(300);
    assert.equal(mx.received.length, 1);
    assert.deepEqual(mx.received[0].to, ['keep@supp.test']);
  });

  test('a message whose only recipient is suppressed is accepted and never delivered', async () => {
    f.t.gw.store.tenants.suppress(DOMAIN, 'only@supp.test', 'manual');
    const { id } = await send('only@supp.test');
    const [r] = f.recipients(id);
    assert.equal(r.status, 'suppressed');
    assert.equal(r.next_attempt_at, null);
  });
});
