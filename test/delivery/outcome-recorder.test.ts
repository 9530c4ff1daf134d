// The outcome recorder (src/delivery/outcome-recorder.ts) against a real SQLite
// file: an outcome counts as recorded once journaled, even while another
// connection holds the write lock or the disk is full; it reaches the database
// as soon as it can, and the journal is emptied only then. If the journal
// itself cannot be written, record() waits until the database has the outcome.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { OutcomeRecorder } from '../../src/delivery/outcome-recorder.js';
import { createLogger, silentLogger } from '../../src/logger.js';
import { openStore, type Store } from '../../src/store/index.js';
import { JOURNAL_FILE, OutcomeJournal, type JournalEntry } from '../../src/store/outcome-journal.js';
import type { NewMessage } from '../../src/store/queue.js';
import { tempDir, until } from '../helpers/gateway.js';

const baseMessage = (id: string): NewMessage => ({
  id,
  domain: 'example.test',
  mailFrom: 'app@example.test',
  fromHeader: null,
  subject: 's',
  messageIdHeader: null,
  tags: [],
  metadata: null,
  source: 'smtp',
  credentialId: null,
  size: 10,
  createdAt: Date.now(),
  sendAt: null,
  bodies: [Buffer.from('Subject: s\r\n\r\nhi\r\n')],
  recipients: [{ email: 'to@dest.test', rcptDomain: 'dest.test', bodyIndex: 0, status: 'queued', tokens: [] }],
});

function storeWithRecipient(): { dir: string; store: Store; rcptId: number } {
  const dir = tempDir('relaygate-recorder-');
  const store = openStore(dir);
  store.queue.enqueue(baseMessage('msg-1'));
  const rcptId = store.queue.recipientsOf('msg-1')[0].id;
  return { dir, store, rcptId };
}

const delivered = (recipientId: number, data?: Record<string, unknown>): JournalEntry => ({
  outcome: { recipientId, attempt: 1, status: 'delivered', reply: '250 2.0.0 queued as X', at: Date.now(), data },
});
const status = (store: Store) => store.queue.recipientsOf('msg-1')[0].status;

test('while another connection holds the write lock, record() returns at once and the outcome lands when the lock is free', async () => {
  const { dir, store, rcptId } = storeWithRecipient();
  const other = openStore(dir);
  const journal = new OutcomeJournal(dir);
  const rec = new OutcomeRecorder(store, journal, silentLogger());
  store.setBusyTimeout(0);
  try {
    other.db.prepare('BEGIN IMMEDIATE').run();
    const t0 = Date.now();
    await rec.record([delivered(rcptId)]);
    assert.ok(Date.now() - t0 < 1000, 'did not wait for the lock');
    assert.equal(journal.read().entries.length, 1, 'journaled');
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(status(store), 'queued', 'not in the database while the lock is held');
    other.db.prepare('COMMIT').run();
    await until(() => status(store) === 'delivered', 'outcome in the database');
    assert.equal(journal.read().entries.length, 0, 'journal emptied once the database has it');
  } finally {
    rec.close();
    other.close();
    store.close();
  }
});

test('disk full: the outcome stays journaled, is retried, and lands once there is room', async () => {
  const { dir, store, rcptId } = storeWithRecipient();
  const journal = new OutcomeJournal(dir);
  const rec = new OutcomeRecorder(store, journal, silentLogger());
  try {
    // Use up the pages the file has, so the outcome's event row cannot be written.
    const pages = store.db.pragma('page_count', { simple: true }) as number;
    store.db.pragma(`max_page_count = ${pages}`);
    const fill = store.db.prepare('INSERT INTO idempotency (api_key_id, key, status, response, created_at) VALUES (?, ?, 200, ?, 0)');
    for (let i = 0; ; i++) {
      try {
        fill.run('k', `fill-${i}`, 'x'.repeat(2000));
      } catch {
        break;
      }
    }
    // Event data larger than a page: the outcome needs pages the file cannot get.
    await rec.record([delivered(rcptId, { mx: 'x'.repeat(20_000) })]);
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(status(store), 'queued');
    assert.equal(journal.read().entries.length, 1, 'kept in the journal while the database refuses it');
    store.db.pragma('max_page_count = 1073741823');
    await until(() => status(store) === 'delivered', 'outcome in the database after room is made', 5000);
    assert.equal(journal.read().entries.length, 0);
  } finally {
    rec.close();
    store.close();
  }
});

test('if the journal cannot be written, record() returns only once the database has the outcome', async () => {
  const { dir, store, rcptId } = storeWithRecipient();
  const journal = new (class extends OutcomeJournal {
    append(): void {
      throw Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' });
    }
  })(dir);
  const rec = new OutcomeRecorder(store, journal, silentLogger());
  const other = openStore(dir);
  store.setBusyTimeout(0);
  try {
    other.db.prepare('BEGIN IMMEDIATE').run();
    let done = false;
    const p = rec.record([delivered(rcptId)]).then(() => (done = true));
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(done, false, 'not recorded anywhere yet');
    other.db.prepare('COMMIT').run();
    await p;
    assert.equal(status(store), 'delivered');
  } finally {
    rec.close();
    other.close();
    store.close();
  }
});

test('an outcome for an attempt already recorded is not recorded again', () => {
  const { store, rcptId } = storeWithRecipient();
  try {
    const o = delivered(rcptId).outcome;
    assert.equal(store.queue.applyOutcome(o), true);
    assert.equal(store.queue.applyOutcome({ ...o, status: 'bounced', reply: '550 5.1.1 no' }), false);
    const r = store.queue.recipientsOf('msg-1')[0];
    assert.deepEqual([r.status, r.attempts, r.last_reply], ['delivered', 1, '250 2.0.0 queued as X']);
    assert.equal(store.events.forMessage('msg-1').filter((e: any) => e.type !== 'queued').length, 1);
  } finally {
    store.close();
  }
});

test('a journal line the database refuses (a damaged value) is dropped and logged; the others are applied and start-up goes on', () => {
  const { dir, store, rcptId } = storeWithRecipient();
  store.queue.enqueue({ ...baseMessage('msg-2'), recipients: [{ email: 'two@dest.test', rcptDomain: 'dest.test', bodyIndex: 0, status: 'queued', tokens: [] }] });
  const second = store.queue.recipientsOf('msg-2')[0].id;
  // STRICT tables refuse a string where the time belongs.
  const damaged = { outcome: { ...delivered(rcptId).outcome, at: 'yesterday' } } as unknown as JournalEntry;
  fs.writeFileSync(path.join(dir, JOURNAL_FILE), `${JSON.stringify(damaged)}\n${JSON.stringify(delivered(second))}\n`);
  const logged: Record<string, any>[] = [];
  const journal = new OutcomeJournal(dir);
  const rec = new OutcomeRecorder(store, journal, createLogger('info', { write: (s: string) => void logged.push(JSON.parse(s)) }));
  try {
    assert.deepEqual(rec.replay(), { applied: 1, skipped: 0, refused: 1, torn: 0 });
    assert.equal(status(store), 'queued', 'the damaged outcome changed nothing');
    assert.equal(store.queue.recipientsOf('msg-2')[0].status, 'delivered');
    const line = logged.find((l) => l.msg === 'delivery outcome refused by the database; dropped');
    assert.equal(line?.recipient_id, rcptId);
    assert.equal(journal.read().entries.length, 0);
  } finally {
    rec.close();
    store.close();
  }
});
