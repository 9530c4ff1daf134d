// Fault suite, storage full (SPEC §6; issue 6): the database cannot grow, simulated with
// SQLite's `PRAGMA max_page_count` on the gateway's own connection. New mail is refused
// with a temporary error — SMTP 451 4.3.0, HTTP 503 — so clients keep it and retry; what
// was already acknowledged is neither lost nor corrupted, and once there is room again
// every acknowledged message is delivered, once, byte for byte.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { createApiKey } from '../../src/auth/api-keys.js';
import { openStore } from '../../src/store/index.js';
import { submitMail, tempDir, until } from '../helpers/gateway.js';
import { DOMAIN } from '../helpers/relay.js';
import { apiClient, type Call } from '../api/client.js';
import { startFaultMx, type Fault, type FaultMx } from './fault-mx.js';
import { eventRows, mxFor, startFaultRelay, type FaultHarness } from './harness.js';

let h: FaultHarness;
let api: Call;
let key: string;
let held: FaultMx;
const DOWN: Fault = { greet: '421 4.3.2 Down for maintenance' };

before(async () => {
  h = await startFaultRelay('127.0.4.1');
  api = apiClient(h.f.t.httpUrl);
  key = createApiKey(h.f.t.gw.store, 'sender', ['send']).key;
  // The MX of held.test answers 421 until told otherwise: what is queued stays deferred, and
  // every retry has an outcome to record — the writes a full disk refuses.
  held = await startFaultMx('127.0.4.10', h.f.t.mxPort, Array<Fault>(10_000).fill(DOWN));
  mxFor(h.f, 'held.test', [[10, 'mx.held.test', '127.0.4.10']]);
});
after(async () => {
  const db = h?.f.t.gw.store.db;
  if (db?.open) db.pragma('max_page_count = 1073741823');
  await h?.stop();
  await held?.close();
});

const db = () => h.f.t.gw.store.db;
const sha = (b: Buffer | string) => createHash('sha256').update(b).digest('hex');

/** One SMTP submission; resolves with the final reply whether it was accepted or refused. */
async function smtpSend(subject: string, text: string): Promise<{ reply: string; id?: string }> {
  try {
    const r = await submitMail({ port: h.f.t.smtpPort, auth: h.f.auth, from: `app@${DOMAIN}`, to: `${subject}@held.test`, subject, text, headers: { 'X-Relaygate-Track': 'none' } });
    return { reply: r.response, id: r.id };
  } catch (e) {
    const err = e as { response?: string; message: string };
    return { reply: err.response ?? err.message };
  }
}

const httpSend = (subject: string, text: string) =>
  api('POST', '/messages', { key, body: { from: `app@${DOMAIN}`, to: `${subject}@held.test`, subject, text, track: false } });

test('storage full: new mail gets 451 4.3.0 / 503, queued mail survives and is delivered once there is room', async () => {
  const acked = new Map<string, string>(); // subject → message id
  // 1. A backlog: acknowledged, deferred (its MX answers 421).
  for (let i = 0; i < 6; i++) {
    const r = await smtpSend(`queued-smtp-${i}`, `backlog ${i}\n`);
    assert.match(r.reply, /^250 /);
    acked.set(`queued-smtp-${i}`, r.id!);
  }
  for (let i = 0; i < 2; i++) {
    const r = await httpSend(`queued-http-${i}`, `backlog http ${i}\n`);
    assert.equal(r.status, 202, r.text);
    acked.set(`queued-http-${i}`, r.json.id);
  }
  await until(
    () => [...acked.values()].every((id) => h.f.recipients(id)[0]?.status === 'deferred'),
    'the backlog deferred',
    8000,
  );

  // 2. The disk fills: the file may not grow past its current size.
  const pages = db().pragma('page_count', { simple: true }) as number;
  db().pragma(`max_page_count = ${pages}`);
  const fullAt = Date.now();
  assert.equal(db().pragma('max_page_count', { simple: true }), pages);

  // Free pages inside the file still take a little; ~40 KB messages use them up fast.
  const big = `${'filler line to take up pages in the database file\n'.repeat(800)}`;
  let refused: string | undefined;
  for (let i = 0; i < 40 && !refused; i++) {
    const r = await smtpSend(`fill-${i}`, big);
    if (r.reply.startsWith('250 ')) acked.set(`fill-${i}`, r.id!);
    else refused = r.reply;
  }
  assert.equal(refused, '451 4.3.0 Temporary storage failure, try again later');
  const storedBefore = h.f.count();

  // Every further submission is refused the same way, on both edges, and not stored.
  const again = await smtpSend('refused-smtp', big);
  assert.equal(again.reply, '451 4.3.0 Temporary storage failure, try again later');
  const viaHttp = await httpSend('refused-http', big);
  assert.equal(viaHttp.status, 503, viaHttp.text);
  assert.match(viaHttp.headers.get('content-type') ?? '', /^application\/json/);
  assert.deepEqual(viaHttp.json, { error: { code: 'storage_unavailable', message: 'Temporary storage failure, try again later' } });
  assert.equal(h.f.count(), storedBefore, 'nothing refused was stored');

  // Retries go on while full. (The limit is on the main connection only; the delivery
  // thread's outcomes on a full disk are covered by test/delivery/outcome-recorder.test.ts.)
  await new Promise((r) => setTimeout(r, 1500));
  assert.ok(
    held.connections.some((c) => c.at > fullAt),
    'deliveries were attempted while the disk was full',
  );
  assert.equal(db().pragma('integrity_check', { simple: true }), 'ok');

  // What is queued, as stored now: each acknowledged message with its body.
  const bodies = new Map<string, string>();
  for (const [subject, id] of acked) {
    const [r] = h.f.recipients(id);
    assert.ok(r, `${subject} (${id}) is in the queue`);
    assert.notEqual(r.body_id, null);
    const body = h.f.t.gw.store.queue.body(r.body_id!);
    assert.ok(body, `${subject}: stored body present`);
    bodies.set(subject, sha(body));
  }

  // 3. Room again, and the MX comes up: everything acknowledged is delivered, once, intact.
  db().pragma('max_page_count = 1073741823');
  held.faults.length = 0;
  await held.waitFor(acked.size, 15_000);
  for (const [subject, id] of acked) {
    const rows = await h.f.settled(id, 10_000);
    assert.equal(rows[0].status, 'delivered', `${subject}: ${rows[0].status} ${rows[0].last_reply}`);
    const copies = held.received.filter((m) => m.to.includes(`${subject}@held.test`));
    assert.equal(copies.length, 1, `${subject} delivered ${copies.length} times`);
    assert.equal(sha(Buffer.from(copies[0].body, 'latin1')), bodies.get(subject), `${subject}: delivered bytes are the stored bytes`);
    const types = eventRows(h.f, id).map((e) => e.type);
    assert.equal(types[0], 'queued');
    assert.equal(types.at(-1), 'delivered');
  }
  assert.equal(held.received.length, acked.size);
  assert.equal(db().pragma('integrity_check', { simple: true }), 'ok');

  // And new mail is accepted again.
  const later = await smtpSend('after-full', 'room again\n');
  assert.match(later.reply, /^250 /);
});

test('group commit under a full disk: a job is reported stored exactly when it is', async () => {
  // A failing job can take the whole batch transaction down with it (SQLITE_FULL rolls
  // back more than its savepoint); the jobs after it must not commit on their own and
  // then be reported failed, nor the ones before it be reported stored.
  const store = openStore(tempDir('relaygate-committer-'));
  try {
    store.db.exec('CREATE TABLE t (k TEXT PRIMARY KEY, v BLOB)');
    const pages = store.db.pragma('page_count', { simple: true }) as number;
    store.db.pragma(`max_page_count = ${pages + 4}`);
    const insert = store.db.prepare('INSERT INTO t (k, v) VALUES (?, ?)');
    const sizes = [10, 10, 200_000, 10, 10, 200_000, 10];
    const settled = await Promise.allSettled(sizes.map((n, i) => store.committer.run(() => insert.run(`k${i}`, Buffer.alloc(n)))));
    const stored = new Set((store.db.prepare('SELECT k FROM t').all() as { k: string }[]).map((r) => r.k));
    settled.forEach((s, i) => assert.equal(s.status === 'fulfilled', stored.has(`k${i}`), `job ${i}: ${s.status}, stored ${stored.has(`k${i}`)}`));
    assert.equal(settled[2].status, 'rejected');
    assert.equal(settled[5].status, 'rejected');
    assert.ok(stored.size >= 1, 'the small jobs are not all lost with the big ones');
    assert.equal(store.db.pragma('integrity_check', { simple: true }), 'ok');
  } finally {
    store.close();
  }
});

test('queued, but the Idempotency-Key response record cannot be written: still 202, not an error that invites a second copy', async () => {
  db().pragma('max_page_count = 1073741823');
  const idem = h.f.t.gw.store.idempotency;
  const put = idem.put;
  // Only the response record fails; the per-message record shares the message's transaction.
  idem.put = (k, recordKey, ...rest) => {
    if (!recordKey.includes('\n#')) throw Object.assign(new Error('database or disk is full'), { code: 'SQLITE_FULL' });
    return put(k, recordKey, ...rest);
  };
  try {
    const before = h.f.count();
    const send = () =>
      api('POST', '/messages', {
        key,
        headers: { 'Idempotency-Key': 'full-disk-1' },
        body: { from: `app@${DOMAIN}`, to: 'idem@held.test', subject: 'idem', text: 'once\n', track: false },
      });
    const r = await send();
    assert.equal(r.status, 202, r.text);
    assert.equal(h.f.count(), before + 1);
    assert.equal(h.f.recipients(r.json.id).length, 1);
    // The retry a cautious client makes anyway finds the per-message record: same id, no copy.
    const again = await send();
    assert.equal(again.status, 202, again.text);
    assert.equal(again.json.id, r.json.id);
    assert.equal(h.f.count(), before + 1);
  } finally {
    idem.put = put;
  }
});

test('the per-message Idempotency-Key record cannot be written: the message is not stored either (503), and the retry sends it once', async () => {
  db().pragma('max_page_count = 1073741823');
  const idem = h.f.t.gw.store.idempotency;
  const put = idem.put;
  idem.put = () => {
    throw Object.assign(new Error('database or disk is full'), { code: 'SQLITE_FULL' });
  };
  const send = () =>
    api('POST', '/messages', {
      key,
      headers: { 'Idempotency-Key': 'full-disk-2' },
      body: { from: `app@${DOMAIN}`, to: 'idem2@held.test', subject: 'idem', text: 'once\n', track: false },
    });
  const before = h.f.count();
  try {
    const r = await send();
    assert.equal(r.status, 503, r.text);
    assert.equal(r.json.error.code, 'storage_unavailable');
    assert.equal(h.f.count(), before, 'nothing stored');
  } finally {
    idem.put = put;
  }
  const retry = await send();
  assert.equal(retry.status, 202, retry.text);
  assert.equal(h.f.count(), before + 1);
});
