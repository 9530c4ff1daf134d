// The outcome journal (src/store/outcome-journal.ts) and its replay: an outcome
// journaled by a process that was killed before the database had it is recorded
// at the next start — once, without delivering the message again — and what
// the database already has, or a line cut short by the kill, is skipped.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { createLogger } from '../../src/logger.js';
import { JOURNAL_FILE, OutcomeJournal, type JournalEntry } from '../../src/store/outcome-journal.js';
import { startTestDns } from '../helpers/dns-server.js';
import { startMxSink, startTestGateway, submitMail, tempDir, until } from '../helpers/gateway.js';
import { DOMAIN, startRelay } from '../helpers/relay.js';
import { startFaultMx } from '../faults/fault-mx.js';

const entry = (recipientId: number, attempt: number, status: JournalEntry['outcome']['status'] = 'delivered'): JournalEntry => ({
  outcome: { recipientId, attempt, status, reply: `250 2.0.0 ok ${recipientId}`, at: 1_700_000_000_000 + recipientId },
});

test('the journal reads back what was appended, across appends and after a reopen, and clear() empties it', () => {
  const dir = tempDir('relaygate-journal-');
  const j = new OutcomeJournal(dir);
  j.append([entry(1, 1)]);
  j.append([entry(2, 1), { ...entry(3, 2, 'bounced'), suppress: { domain: 'a.test', email: 'x@b.test' } }]);
  assert.deepEqual(
    j.read().entries.map((e) => [e.outcome.recipientId, e.outcome.attempt, e.outcome.status, e.suppress?.email]),
    [
      [1, 1, 'delivered', undefined],
      [2, 1, 'delivered', undefined],
      [3, 2, 'bounced', 'x@b.test'],
    ],
  );
  j.close();
  const again = new OutcomeJournal(dir);
  assert.equal(again.read().entries.length, 3, 'a new process finds them');
  again.clear();
  assert.deepEqual(again.read(), { entries: [], torn: 0 });
  assert.equal(fs.statSync(path.join(dir, JOURNAL_FILE)).size, 0);
  again.append([entry(4, 1)]);
  assert.deepEqual(
    again.read().entries.map((e) => e.outcome.recipientId),
    [4],
    'appends after a clear start at the beginning',
  );
  again.close();
});

test('lines cut short or not journal entries are counted as torn and skipped', () => {
  const dir = tempDir('relaygate-journal-');
  fs.writeFileSync(
    path.join(dir, JOURNAL_FILE),
    `${JSON.stringify(entry(1, 1))}\n{"outcome":{"recipientId":2,"att\n${JSON.stringify({ hello: 1 })}\n${JSON.stringify(entry(5, 1))}\n{"outcome":{"recipi`,
  );
  const j = new OutcomeJournal(dir);
  const { entries, torn } = j.read();
  assert.deepEqual(
    entries.map((e) => e.outcome.recipientId),
    [1, 5],
  );
  assert.equal(torn, 3);
  j.close();
});

test('start-up records a killed process\'s journaled outcome once, and does not deliver that message again', async (t) => {
  const dns = await startTestDns();
  t.after(() => dns.close());
  const relay = await startRelay({ delivery: { retrySchedule: ['1h'] } }, { dns });
  let stopped = false;
  t.after(async () => {
    if (!stopped) await relay.stop();
  });
  // The MX refuses every connection at the greeting: the first attempt is deferred, and a
  // delivery at restart would show up as a connection.
  const down = await startFaultMx('127.0.5.9', relay.t.mxPort, Array(100).fill({ greet: '421 4.3.2 Down' }));
  t.after(() => down.close());
  dns.set('journal.test', [{ type: 'MX', exchange: 'mx.journal.test', priority: 10 }]);
  dns.set('mx.journal.test', [{ type: 'A', address: '127.0.5.9' }]);

  const { id } = await submitMail({ port: relay.t.smtpPort, auth: relay.auth, from: `app@${DOMAIN}`, to: 'someone@journal.test', subject: 'j', text: 'hi\n' });
  const row = await until(() => relay.recipients(id).find((r) => r.status === 'deferred' && r.attempts === 1), 'first attempt deferred');
  const dataDir = relay.t.dataDir;
  await relay.stop();
  stopped = true;
  const connections = down.connections.length;

  // What a process killed right after the second attempt's 250 leaves behind: the outcome in
  // the journal only. Plus a stale entry (attempt 1, already recorded) and a torn last line.
  const delivered: JournalEntry = { outcome: { recipientId: row.id, attempt: 2, status: 'delivered', reply: '250 2.0.0 taken as 77', at: Date.now(), data: { mx: 'mx.journal.test [127.0.5.9]' } } };
  const stale: JournalEntry = { outcome: { recipientId: row.id, attempt: 1, status: 'bounced', reply: '550 5.1.1 stale', at: Date.now(), bounceClass: 'bad-mailbox' }, suppress: { domain: DOMAIN, email: 'someone@journal.test' } };
  fs.writeFileSync(path.join(dataDir, JOURNAL_FILE), `${JSON.stringify(stale)}\n${JSON.stringify(delivered)}\n{"outcome":{"recipientId":${row.id},"attem`);

  const lines: Record<string, any>[] = [];
  const logger = createLogger('info', { write: (s: string) => void lines.push(JSON.parse(s)) });
  const again = await startTestGateway({ delivery: { retrySchedule: ['1h'] }, log: { level: 'info' } }, { dns, dataDir, mxPort: relay.t.mxPort, logger });
  t.after(() => again.stop());

  const replay = await until(() => lines.find((l) => l.msg === 'applied delivery outcomes journaled by a previous process'), 'replay logged');
  assert.deepEqual([replay.applied, replay.skipped, replay.torn], [1, 1, 1]);
  const [after] = again.gw.store.queue.recipientsOf(id);
  assert.equal(after.status, 'delivered');
  assert.equal(after.attempts, 2);
  assert.equal(after.last_reply, '250 2.0.0 taken as 77');
  const events = again.gw.store.events.forMessage(id).map((e: any) => e.type);
  assert.deepEqual(events.filter((e: string) => e !== 'queued'), ['deferred', 'delivered'], 'one delivered event, no bounce from the stale entry');
  assert.equal(again.gw.store.tenants.isSuppressed(DOMAIN, 'someone@journal.test'), undefined, 'the stale bounce suppressed nobody');
  assert.equal(fs.statSync(path.join(dataDir, JOURNAL_FILE)).size, 0, 'the journal is emptied');
  await new Promise((r) => setTimeout(r, 500));
  assert.equal(down.connections.length, connections, 'not delivered again');
});

test('a reply that arrives after stop()\'s grace period is journaled, and the next start records it without sending again', async (t) => {
  const dns = await startTestDns();
  t.after(() => dns.close());
  const relay = await startRelay({}, { dns });
  let stopped = false;
  t.after(async () => {
    if (!stopped) await relay.stop();
  });
  // The MX takes the message but answers the final dot only after 1.5 s.
  let taken = 0;
  const slow = await startMxSink('127.0.5.11', relay.t.mxPort, {
    onData(stream, _session, cb) {
      stream.on('data', () => undefined);
      stream.on('end', () => {
        taken++;
        setTimeout(() => cb(), 1500);
      });
    },
  });
  t.after(() => slow.close());
  dns.set('late.test', [{ type: 'MX', exchange: 'mx.late.test', priority: 10 }]);
  dns.set('mx.late.test', [{ type: 'A', address: '127.0.5.11' }]);

  const { id } = await submitMail({ port: relay.t.smtpPort, auth: relay.auth, from: `app@${DOMAIN}`, to: 'late@late.test', subject: 'late', text: 'hi\n' });
  await until(() => taken === 1, 'the MX has the message');
  await relay.t.gw.worker.stop(100); // the grace ends ~1.4 s before the 250; the thread gets 3 s more to exit
  const dataDir = relay.t.dataDir;
  await relay.stop();
  stopped = true;
  assert.match(fs.readFileSync(path.join(dataDir, JOURNAL_FILE), 'utf8'), /"status":"delivered"/, 'the late 250 is in the journal');

  const again = await startTestGateway({}, { dns, dataDir, mxPort: relay.t.mxPort });
  t.after(() => again.stop());
  const [row] = again.gw.store.queue.recipientsOf(id);
  assert.equal(row.status, 'delivered', 'recorded from the journal at start-up');
  assert.match(row.last_reply ?? '', /^250 /);
  await new Promise((r) => setTimeout(r, 500));
  assert.equal(taken, 1, 'not sent again');
});
