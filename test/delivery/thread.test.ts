// The delivery thread (src/delivery/thread.ts): what it logs reaches the
// gateway's logger with its fields, its outcomes reach /metrics, a thread that
// dies is replaced and the mail it held is delivered, and its unsynced commits
// count for the main connection's webhook claim.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createLogger } from '../../src/logger.js';
import { plainArgs, revivedArgs } from '../../src/delivery/thread-protocol.js';
import { openStore } from '../../src/store/index.js';
import { startFaultMx } from '../faults/fault-mx.js';
import { startMxSink, submitMail, tempDir, until, type MxSink } from '../helpers/gateway.js';
import { DOMAIN, mxFor, startRelay, type RelayFixture } from '../helpers/relay.js';

let f: RelayFixture;
let mx: MxSink;
const lines: Record<string, any>[] = [];

before(async () => {
  const logger = createLogger('info', { write: (s: string) => void lines.push(JSON.parse(s)) });
  f = await startRelay({ log: { level: 'info' } }, { logger });
  mxFor(f, 'thread.test', [[10, 'mx.thread.test', '127.0.5.1']]);
  mx = await startMxSink('127.0.5.1', f.t.mxPort);
});
after(async () => {
  await f?.stop();
  await mx?.close();
});

const send = (to: string, subject: string) =>
  submitMail({ port: f.t.smtpPort, auth: f.auth, from: `app@${DOMAIN}`, to, subject, text: 'hi\n', headers: { 'X-Relaygate-Track': 'none' } });

test('log records from the delivery thread reach the gateway logger, with level, component and message id', async () => {
  const { id } = await send('one@thread.test', 'logged');
  await f.settled(id);
  const line = await until(() => lines.find((l) => l.msg === 'recipient delivered' && l.msg_id === id), 'delivered log line');
  assert.equal(line.level, 30);
  assert.equal(line.component, 'delivery');
  assert.equal(line.app, 'relaygate', 'written by the gateway root logger');
  assert.equal(line.rcpt, 'one@thread.test');
  assert.match(line.reply, /^250 /);
});

test('a refused delivery logs its reply and bounce class', async () => {
  mx.rcpt = (a) => (a.startsWith('nobody@') ? Object.assign(new Error('No such user'), { responseCode: 550 }) : null);
  try {
    const { id } = await send('nobody@thread.test', 'bounced');
    const rows = await f.settled(id);
    assert.equal(rows[0].status, 'bounced');
    const line = await until(() => lines.find((l) => l.msg === 'recipient bounced' && l.msg_id === id), 'bounced log line');
    assert.equal(line.level, 30);
    assert.equal(line.bounce_class, 'bad-mailbox');
  } finally {
    mx.rcpt = undefined;
  }
});

test('delivery outcomes from the thread are counted in /metrics', async () => {
  const text = await (await fetch(`${f.t.httpUrl}/metrics`)).text();
  assert.match(text, /relaygate_deliveries_total\{result="delivered",bounce_class=""\} [1-9]/);
  assert.match(text, /relaygate_deliveries_total\{result="bounced",bounce_class="bad-mailbox"\} [1-9]/);
  assert.match(text, /relaygate_delivery_latency_seconds_count [1-9]/);
});

test('a delivery thread that dies is restarted, and the delivery it held is made again', async () => {
  // The MX of stall.test takes the whole message and never answers the final dot: the
  // thread dies holding it leased, and the next thread must release and retry it.
  const stallMx = await startFaultMx('127.0.5.2', f.t.mxPort, [{ stall: 'dot' }]);
  mxFor(f, 'stall.test', [[10, 'mx.stall.test', '127.0.5.2']]);
  try {
    const first = f.t.gw.worker.thread();
    assert.ok(first, 'a thread runs');
    const { id } = await send('held@stall.test', 'held');
    await until(() => stallMx.connections.length === 1 && f.t.gw.worker.active() === 1, 'the stalled delivery in flight');
    await new Promise((r) => setTimeout(r, 100)); // the final dot is out
    await first.terminate();
    await until(() => lines.find((l) => l.msg === 'delivery thread exited; restarting it' && l.level === 50), 'the exit logged as an error');
    await until(() => (f.t.gw.worker.thread() !== first ? f.t.gw.worker.thread() : null), 'a new delivery thread', 10_000);
    await until(() => lines.find((l) => l.msg === 'released deliveries claimed by a previous process' && l.released === 1), 'its lease released');
    const rows = await f.settled(id, 15_000);
    assert.equal(rows[0].status, 'delivered');
    assert.equal(stallMx.received.length, 1, 'delivered by the second connection');
    assert.equal(stallMx.connections.length, 2);
    const { id: later } = await send('later@thread.test', 'after restart');
    assert.equal((await f.settled(later))[0].status, 'delivered');
  } finally {
    await stallMx.close();
  }
});

test('errors logged in the thread keep their type, message and fields', async () => {
  const original = Object.assign(new TypeError('boom'), { code: 'E_TEST', smtp: 451, cause: new Error('inner') });
  const forwarded = structuredClone(plainArgs([{ err: original, msg_id: 'm1' }, 'failed']));
  const out: Record<string, any>[] = [];
  const logger = createLogger('info', { write: (s: string) => void out.push(JSON.parse(s)) });
  logger.error(...(revivedArgs(forwarded) as [object, string]));
  assert.equal(out[0].msg, 'failed');
  assert.equal(out[0].msg_id, 'm1');
  assert.equal(out[0].err.type, 'TypeError');
  assert.match(out[0].err.message, /^boom/);
  assert.equal(out[0].err.code, 'E_TEST');
  assert.equal(out[0].err.smtp, 451);
  assert.match(out[0].err.stack, /TypeError: boom/);
});

test('a commit without fsync on another connection makes the webhook claim pay one', () => {
  const dir = tempDir('relaygate-sync-');
  const main = openStore(dir);
  const other = openStore(dir, { sync: main.syncShared });
  const alone = openStore(dir);
  try {
    const level = (s: typeof main) => {
      let seen = -1;
      s.webhooks.claimDue(Date.now(), 10, [], 60_000, (due) => {
        seen = s.db.pragma('synchronous', { simple: true }) as number;
        return due;
      });
      return seen;
    };
    assert.equal(level(main), 1, 'nothing unsynced yet');
    other.committer.runNow(() => other.idempotency.put('k', 'x', 202, '{}', Date.now()));
    assert.equal(level(main), 2, 'the other connection shares its account');
    assert.equal(level(alone), 1, 'a store opened without it keeps its own');
    main.committer.run(() => main.idempotency.put('k', 'y', 202, '{}', Date.now()));
    main.committer.flush();
    assert.equal(level(main), 1, 'an fsynced commit on the main connection covers it');
  } finally {
    other.close();
    alone.close();
    main.close();
  }
});
