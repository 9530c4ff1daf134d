// Sending over HTTP end to end: JSON → MIME → the SMTP pipeline → a real MX
// sink, then reading the message, its timeline, stats, bounces.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { simpleParser } from 'mailparser';
import { createApiKey } from '../../src/auth/api-keys.js';
import { createDomainService } from '../../src/domains/service.js';
import { smtpError, startMxSink, startTestGateway, until, type MxSink, type TestGateway } from '../helpers/gateway.js';
import { apiClient, type Call } from './client.js';

let t: TestGateway;
let mx: MxSink;
let api: Call;
let send: string;
let read: string;

const BOT_UA = 'Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)';
const BROWSER_UA = 'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36';

before(async () => {
  t = await startTestGateway({ http: { rateLimit: 1000 } });
  await createDomainService({ config: t.config, store: t.gw.store }).add('example.test');
  t.dns.set('dest.test', [{ type: 'MX', exchange: 'mx.dest.test', priority: 10 }]);
  t.dns.set('mx.dest.test', [{ type: 'A', address: '127.0.0.6' }]);
  mx = await startMxSink('127.0.0.6', t.mxPort);
  mx.rcpt = (a) => (a.startsWith('nobody@') ? smtpError(550, '5.1.1 <nobody@dest.test>: Recipient address rejected: User unknown') : null);
  api = apiClient(t.httpUrl);
  send = createApiKey(t.gw.store, 'sender', ['send']).key;
  read = createApiKey(t.gw.store, 'reader', ['read']).key;
});
after(async () => {
  await mx?.close();
  await t?.stop();
});

const messageCount = () => t.gw.store.queue.listMessages({ limit: 1, offset: 0 }).total;
const received = (to: string) => mx.received.filter((m) => m.to.includes(to));

describe('POST /messages', () => {
  test('delivers a DKIM-signed, tracked message; the timeline and click stats follow', async () => {
    const r = await api('POST', '/messages', {
      key: send,
      body: {
        from: 'App <app@example.test>',
        to: ['alice@dest.test'],
        subject: 'Hello ✓',
        html: '<html><body><p>Hi <a href="https://shop.test/offer?a=1&amp;b=2">offer</a></p></body></html>',
        text: 'Hi, see https://shop.test/offer',
        tags: ['t-click'],
        metadata: { user_id: '42' },
        headers: { 'X-Campaign': 'spring' },
        attachments: [{ filename: 'note.txt', content: Buffer.from('attached bytes').toString('base64'), content_type: 'text/plain' }],
      },
    });
    assert.equal(r.status, 202, r.text);
    assert.match(r.json.id, /^[0-9a-z]{26}$/);
    assert.deepEqual(r.json.recipients, [{ email: 'alice@dest.test', status: 'queued' }]);
    assert.ok(r.headers.get('x-ratelimit-limit'));

    await until(() => received('alice@dest.test').length === 1, 'delivery to alice');
    const [m] = received('alice@dest.test');
    const raw = m.body.toString();
    assert.equal(m.from, 'app@example.test');
    assert.match(raw, /^DKIM-Signature:.*d=example\.test/im);
    assert.match(raw, new RegExp(`Message-ID: <${r.json.id}@relay\\.test>`, 'i'));
    assert.match(raw, /^X-Campaign: spring/im);
    const parsed = await simpleParser(m.body);
    assert.equal(parsed.subject, 'Hello ✓');
    assert.equal(parsed.attachments[0].content.toString(), 'attached bytes');
    const link = /href="([^"]*\/t\/c\/[^"]+)"/.exec(String(parsed.html))?.[1];
    assert.ok(link, 'click link rewritten');
    assert.match(String(parsed.html), /\/t\/o\//);

    const detail = await until(async () => {
      const d = await api('GET', `/messages/${r.json.id}`, { key: read });
      return d.json.recipients?.[0]?.status === 'delivered' && d;
    }, 'delivered status');
    assert.equal(detail.json.from, 'app@example.test');
    assert.equal(detail.json.subject, 'Hello ✓');
    assert.deepEqual(detail.json.tags, ['t-click']);
    assert.deepEqual(detail.json.metadata, { user_id: '42' });
    assert.match(detail.json.created_at, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    const rcpt = detail.json.recipients[0];
    assert.equal(rcpt.attempts, 1);
    assert.equal(rcpt.bounce_class, null);
    assert.match(rcpt.last_reply, /^250/);
    assert.deepEqual(detail.json.events.map((e: any) => e.type), ['queued', 'delivered']);
    const delivered = detail.json.events[1];
    for (const k of ['type', 'at', 'recipient', 'url', 'ip', 'user_agent', 'reply']) assert.ok(k in delivered, k);
    assert.match(delivered.reply, /^250/);

    // A link scanner's hit is kept but counted apart from human clicks.
    assert.equal((await fetch(link, { redirect: 'manual', headers: { 'user-agent': BOT_UA } })).status, 302);
    const human = await fetch(link, { redirect: 'manual', headers: { 'user-agent': BROWSER_UA } });
    assert.equal(human.status, 302);
    assert.equal(human.headers.get('location'), 'https://shop.test/offer?a=1&b=2');

    const stats = await until(async () => {
      const s = await api('GET', '/stats?tag=t-click', { key: read });
      return s.json.totals.clicked === 1 && s.json.totals.clicked_flagged === 1 && s;
    }, 'clicked in stats');
    const totals = stats.json.totals;
    assert.equal(totals.accepted, 1);
    assert.equal(totals.delivered, 1);
    assert.equal(totals.clicked_unique, 1);
    assert.equal(totals.clicked_flagged, 1);
    assert.equal(totals.click_rate, 1);
    assert.equal(stats.json.series.length, 31);
    assert.equal(stats.json.series.at(-1).clicked, 1);

    const hourly = await api('GET', '/stats?tag=t-click&interval=hour&since=' + new Date(Date.now() - 3 * 3600_000).toISOString(), { key: read });
    assert.equal(hourly.status, 200);
    assert.equal(hourly.json.series.length, 4);

    const links = await api('GET', `/stats/links?message_id=${r.json.id}`, { key: read });
    assert.deepEqual(
      links.json.data.map((l: any) => [l.url, l.clicks, l.clicks_unique]),
      [['https://shop.test/offer?a=1&b=2', 1, 1]],
    );

    const timeline = (await api('GET', `/messages/${r.json.id}`, { key: read })).json.events;
    const clicks = timeline.filter((e: any) => e.type === 'clicked');
    assert.equal(clicks.length, 2);
    assert.equal(clicks[1].url, 'https://shop.test/offer?a=1&b=2');
    assert.equal(clicks[1].user_agent, BROWSER_UA);
    assert.equal(clicks[1].ip, '127.0.0.1');
    assert.equal(clicks[0].is_bot, true);
  });

  test('CR/LF in any header-bound field is a 400 naming it, and nothing is queued', async () => {
    const base = { from: 'app@example.test', to: ['x@dest.test'], subject: 'ok', text: 'body' };
    const cases: [string, Record<string, unknown>][] = [
      ['from', { from: 'app@example.test\r\nBcc: victim@evil.test' }],
      ['subject', { subject: 'hi\nBcc: victim@evil.test' }],
      ['to[0]', { to: ['x@dest.test\r\nX-Injected: 1'] }],
      ['reply_to', { reply_to: 'r@example.test\nX: y' }],
      ['headers.X-Test', { headers: { 'X-Test': 'a\r\nBcc: victim@evil.test' } }],
      ['headers.X-Bad Name', { headers: { 'X-Bad Name': 'a' } }],
      ['attachments[0].filename', { attachments: [{ filename: 'a.txt\r\nContent-Type: text/html', content: 'YQ==' }] }],
      ['attachments[0].content_type', { attachments: [{ filename: 'a.txt', content: 'YQ==', content_type: 'text/plain\r\nX: y' }] }],
    ];
    const before = messageCount();
    for (const [field, patch] of cases) {
      const r = await api('POST', '/messages', { key: send, body: { ...base, ...patch } });
      assert.equal(r.status, 400, `${field}: ${r.text}`);
      assert.equal(r.json.error.field, field, r.text);
      assert.ok(r.json.error.message.includes(field), r.text);
    }
    assert.equal(messageCount(), before);
  });

  test('bad JSON, wrong types and missing fields are 400s naming the field', async () => {
    const bad = await api('POST', '/messages', { key: send, raw: '{"from": "a@example.test",' });
    assert.equal(bad.status, 400);
    assert.equal(bad.json.error.code, 'invalid_json');
    const types = await api('POST', '/messages', { key: send, body: { from: 'app@example.test', to: ['x@dest.test'], text: 'x', subject: 42 } });
    assert.equal(types.status, 400);
    assert.equal(types.json.error.field, 'subject');
    const tags = await api('POST', '/messages', { key: send, body: { from: 'app@example.test', to: 'x@dest.test', text: 'x', tags: ['ok', 'not ok!'] } });
    assert.equal(tags.json.error.field, 'tags[1]');
    const noFrom = await api('POST', '/messages', { key: send, body: { to: ['x@dest.test'], text: 'x' } });
    assert.equal(noFrom.json.error.field, 'from');
    const badTo = await api('POST', '/messages', { key: send, body: { from: 'app@example.test', to: ['x@dest.test', 'nope'], text: 'x' } });
    assert.equal(badTo.status, 400);
    assert.equal(badTo.json.error.field, 'to[1]');
    const noBody = await api('POST', '/messages', { key: send, body: { from: 'app@example.test', to: ['x@dest.test'] } });
    assert.equal(noBody.status, 400);
    const far = await api('POST', '/messages', {
      key: send,
      body: { from: 'app@example.test', to: ['x@dest.test'], text: 'x', send_at: new Date(Date.now() + 31 * 86_400_000).toISOString() },
    });
    assert.equal(far.status, 400);
    assert.equal(far.json.error.field, 'send_at');
    const foreign = await api('POST', '/messages', { key: send, body: { from: 'app@other.test', to: ['x@dest.test'], text: 'x' } });
    assert.equal(foreign.status, 403);
    assert.equal(foreign.json.error.code, 'sender_not_allowed');
  });

  test('send_at in the future schedules; Bcc stays out of the headers; in the past means now', async () => {
    const later = await api('POST', '/messages', {
      key: send,
      body: { from: 'app@example.test', to: 'sched@dest.test', text: 'later', send_at: new Date(Date.now() + 3600_000).toISOString() },
    });
    assert.equal(later.status, 202, later.text);
    assert.deepEqual(later.json.recipients, [{ email: 'sched@dest.test', status: 'scheduled' }]);
    const now = await api('POST', '/messages', {
      key: send,
      body: { from: 'app@example.test', to: 'past@dest.test', bcc: ['hidden@dest.test'], text: 'now', track: false, send_at: '2020-01-01T00:00:00Z' },
    });
    assert.equal(now.status, 202, now.text);
    assert.deepEqual(now.json.recipients.map((r: any) => r.status), ['queued', 'queued']);
    await until(() => received('hidden@dest.test').length === 1, 'bcc delivery');
    const raw = received('hidden@dest.test')[0].body.toString();
    assert.doesNotMatch(raw, /^Bcc:/im);
    assert.doesNotMatch(raw, /hidden@dest\.test/);
  });

  test('Idempotency-Key returns the first response and sends once', async () => {
    const body = { from: 'app@example.test', to: ['idem@dest.test'], text: 'once' };
    const headers = { 'Idempotency-Key': `k-${Date.now()}` };
    const before = messageCount();
    const [a, b] = await Promise.all([
      api('POST', '/messages', { key: send, body, headers }),
      api('POST', '/messages', { key: send, body, headers }),
    ]);
    const c = await api('POST', '/messages', { key: send, body, headers });
    assert.equal(a.status, 202);
    assert.equal(b.json.id, a.json.id);
    assert.equal(c.status, 202);
    assert.equal(c.json.id, a.json.id);
    assert.equal(c.headers.get('idempotent-replayed'), 'true');
    assert.equal(messageCount(), before + 1);
    const other = await api('POST', '/messages', { key: send, body, headers: { 'Idempotency-Key': `other-${Date.now()}` } });
    assert.notEqual(other.json.id, a.json.id);
  });
});

describe('Idempotency-Key across a crash between storing the messages and storing the response', () => {
  // The response record is written after the messages; a process killed in between must
  // not make the retry send again. Failing that final write stands in for the kill: the
  // messages and their per-message records are committed, the response record is not.
  const failFinalRecordOnce = () => {
    const idem = t.gw.store.idempotency;
    const real = idem.dropPrefix;
    idem.dropPrefix = () => {
      idem.dropPrefix = real;
      throw new Error('simulated crash before the response record');
    };
  };
  const responseRecord = (key: string, path: string) =>
    t.gw.store.idempotency.get(t.gw.store.tenants.apiKeys().find((k) => k.name === 'sender')!.id, `POST /api/v1${path} ${key}`, 0);

  test('POST /messages: the retry answers with the stored message and sends nothing', async () => {
    const key = `crash-one-${Date.now()}`;
    const body = { from: 'app@example.test', to: ['idem-crash@dest.test'], text: 'once only' };
    failFinalRecordOnce();
    const first = await api('POST', '/messages', { key: send, body, headers: { 'Idempotency-Key': key } });
    assert.equal(first.status, 202, first.text);
    assert.equal(responseRecord(key, '/messages'), undefined, 'the response record was not written');
    const before = messageCount();
    const retry = await api('POST', '/messages', { key: send, body, headers: { 'Idempotency-Key': key } });
    assert.equal(retry.status, 202, retry.text);
    assert.deepEqual(retry.json, first.json);
    assert.equal(messageCount(), before, 'no second message');
    assert.ok(responseRecord(key, '/messages'), 'the retry stored the response');
    await until(() => received('idem-crash@dest.test').length >= 1, 'delivery');
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(received('idem-crash@dest.test').length, 1);
  });

  test('a retry with the same key but another body is refused (422) rather than mapped onto the stored messages', async () => {
    const key = `crash-changed-${Date.now()}`;
    failFinalRecordOnce();
    const first = await api('POST', '/messages', { key: send, body: { from: 'app@example.test', to: ['changed-a@dest.test'], text: 'a' }, headers: { 'Idempotency-Key': key } });
    assert.equal(first.status, 202, first.text);
    const before = messageCount();
    const changed = await api('POST', '/messages', { key: send, body: { from: 'app@example.test', to: ['changed-b@dest.test'], text: 'b' }, headers: { 'Idempotency-Key': key } });
    assert.equal(changed.status, 422, changed.text);
    assert.equal(changed.json.error.code, 'idempotency_key_reused');
    assert.equal(messageCount(), before, 'nothing stored');
    const same = await api('POST', '/messages', { key: send, body: { from: 'app@example.test', to: ['changed-a@dest.test'], text: 'a' }, headers: { 'Idempotency-Key': key } });
    assert.equal(same.status, 202);
    assert.equal(same.json.id, first.json.id);
  });

  test('POST /messages/batch: recipients stored before the crash are reused, only the rest are sent', async () => {
    const key = `crash-batch-${Date.now()}`;
    const body = {
      from: 'app@example.test',
      subject: 'Hi {{n}}',
      text: 'n={{n}}',
      recipients: [0, 1, 2, 3].map((n) => ({ to: `batch-crash-${n}@dest.test`, variables: { n } })),
    };
    failFinalRecordOnce();
    const first = await api('POST', '/messages/batch', { key: send, body, headers: { 'Idempotency-Key': key } });
    assert.equal(first.status, 202, first.text);
    assert.equal(first.json.queued, 4);
    // As if the process died after recipients 0, 1 and 3 were stored but before 2 was.
    const apiKeyId = t.gw.store.tenants.apiKeys().find((k) => k.name === 'sender')!.id;
    const removed = t.gw.store.db
      .prepare('DELETE FROM idempotency WHERE api_key_id = ? AND key = ?')
      .run(apiKeyId, `POST /api/v1/messages/batch ${key}\n#2`).changes;
    assert.equal(removed, 1, 'a per-message record existed for recipient 2');
    const before = messageCount();
    const retry = await api('POST', '/messages/batch', { key: send, body, headers: { 'Idempotency-Key': key } });
    assert.equal(retry.status, 202, retry.text);
    assert.equal(retry.json.queued, 4);
    assert.deepEqual([0, 1, 3].map((i) => retry.json.ids[i]), [0, 1, 3].map((i) => first.json.ids[i]));
    assert.notEqual(retry.json.ids[2], first.json.ids[2]);
    assert.equal(messageCount(), before + 1, 'only recipient 2 was stored again');
    // Once the response is stored, the per-message records are gone and replays are exact.
    const rows = t.gw.store.db.prepare('SELECT count(*) AS n FROM idempotency WHERE api_key_id = ? AND key LIKE ?').get(apiKeyId, `%${key}%`) as { n: number };
    assert.equal(rows.n, 1);
    const replay = await api('POST', '/messages/batch', { key: send, body, headers: { 'Idempotency-Key': key } });
    assert.deepEqual(replay.json, retry.json);
    assert.equal(replay.headers.get('idempotent-replayed'), 'true');
  });
});

describe('POST /messages/batch', () => {
  test('fills variables per recipient (escaped in HTML), rejects bad recipients and keeps the rest', async () => {
    const r = await api('POST', '/messages/batch', {
      key: send,
      body: {
        from: 'News <news@example.test>',
        subject: 'Hi {{name}}',
        html: '<p>Hello {{name}}, code {{code}}</p>',
        text: 'Hello {{name}}, code {{code}}',
        tags: ['batch-1'],
        track: { opens: false, clicks: false },
        recipients: [
          { to: 'b1@dest.test', variables: { name: '<script>alert(1)</script>', code: 7 } },
          { to: 'not an address', variables: { name: 'x' } },
          { to: 'Bee Two <b2@dest.test>', variables: { name: 'Eve\r\nBcc: victim@evil.test', code: 'B2' }, metadata: { n: 2 } },
        ],
      },
    });
    assert.equal(r.status, 202, r.text);
    assert.match(r.json.batch_id, /^batch_/);
    assert.equal(r.json.queued, 2);
    assert.equal(r.json.ids.length, 2);
    assert.equal(r.json.rejected.length, 1);
    assert.equal(r.json.rejected[0].index, 1);
    assert.equal(r.json.rejected[0].to, 'not an address');
    assert.match(r.json.rejected[0].error, /not a valid email address/);

    await until(() => received('b1@dest.test').length && received('b2@dest.test').length, 'batch delivery');
    const one = await simpleParser(received('b1@dest.test')[0].body);
    assert.equal(one.subject, 'Hi <script>alert(1)</script>');
    assert.match(String(one.html), /Hello &lt;script&gt;alert\(1\)&lt;(\/|&#x2F;)script&gt;, code 7/);
    assert.doesNotMatch(String(one.html), /<script>/);
    assert.match(String(one.text), /Hello <script>alert\(1\)<\/script>, code 7/);
    const two = received('b2@dest.test')[0].body.toString();
    assert.doesNotMatch(two.slice(0, two.indexOf('\r\n\r\n')), /^Bcc:/im);
    assert.equal((await simpleParser(two)).subject, 'Hi EveBcc: victim@evil.test');

    const m2 = await api('GET', `/messages/${r.json.ids[1]}`, { key: read });
    assert.deepEqual(m2.json.metadata, { n: 2 });
    assert.deepEqual(m2.json.tags, ['batch-1']);
  });

  test('an unparseable template or over 1000 recipients is a 400', async () => {
    const tpl = await api('POST', '/messages/batch', {
      key: send,
      body: { from: 'app@example.test', text: 'Hi {{#open}}', recipients: [{ to: 'a@dest.test' }] },
    });
    assert.equal(tpl.status, 400);
    assert.equal(tpl.json.error.field, 'text');
    const many = await api('POST', '/messages/batch', {
      key: send,
      body: { from: 'app@example.test', text: 'x', recipients: Array.from({ length: 1001 }, (_, i) => ({ to: `r${i}@dest.test` })) },
    });
    assert.equal(many.status, 400);
    assert.equal(many.json.error.field, 'recipients');
  });
});

describe('reading', () => {
  test('GET /messages filters and paginates', async () => {
    const tag = `page-${Date.now()}`;
    for (let i = 0; i < 3; i++) {
      const r = await api('POST', '/messages', { key: send, body: { from: 'app@example.test', to: `p${i}@dest.test`, text: 'x', tags: [tag] } });
      assert.equal(r.status, 202);
    }
    const p1 = await api('GET', `/messages?tag=${tag}&per_page=2`, { key: read });
    assert.equal(p1.status, 200);
    assert.deepEqual(p1.json.pagination, { page: 1, per_page: 2, total: 3, has_next: true });
    assert.deepEqual(p1.json.data.map((m: any) => m.recipients[0].email), ['p2@dest.test', 'p1@dest.test']);
    const p2 = await api('GET', `/messages?tag=${tag}&per_page=2&page=2`, { key: read });
    assert.deepEqual(p2.json.pagination, { page: 2, per_page: 2, total: 3, has_next: false });
    assert.equal(p2.json.data.length, 1);
    const p9 = await api('GET', `/messages?tag=${tag}&per_page=2&page=9`, { key: read });
    assert.deepEqual(p9.json.data, []);
    const byRcpt = await api('GET', '/messages?recipient=p1@dest.test', { key: read });
    assert.equal(byRcpt.json.pagination.total, 1);
    const future = await api('GET', `/messages?tag=${tag}&since=${new Date(Date.now() + 60_000).toISOString()}`, { key: read });
    assert.equal(future.json.pagination.total, 0);
    for (const q of ['per_page=0', 'page=0', 'per_page=abc', 'since=yesterday', 'status=lost']) {
      const r = await api('GET', `/messages?${q}`, { key: read });
      assert.equal(r.status, 400, q);
      assert.equal(r.json.error.field, q.split('=')[0], q);
    }
    const missing = await api('GET', '/messages/00000000000000000000000000', { key: read });
    assert.equal(missing.status, 404);
    assert.equal(missing.json.error.code, 'message_not_found');
  });

  test('a refused recipient shows up in /bounces, as JSON and as CSV', async () => {
    const r = await api('POST', '/messages', { key: send, body: { from: 'app@example.test', to: 'nobody@dest.test', subject: 'bye, "friend"', text: 'x' } });
    assert.equal(r.status, 202);
    await until(async () => (await api('GET', `/messages/${r.json.id}`, { key: read })).json.recipients[0].status === 'bounced', 'bounce');
    const json = await api('GET', '/bounces?class=bad-mailbox', { key: read });
    assert.equal(json.status, 200);
    const row = json.json.data.find((b: any) => b.message_id === r.json.id);
    assert.equal(row.email, 'nobody@dest.test');
    assert.equal(row.bounce_class, 'bad-mailbox');
    assert.match(row.reply, /^550 5\.1\.1/);
    assert.equal((await api('GET', '/bounces?class=spam', { key: read })).json.pagination.total, 0);
    assert.equal((await api('GET', '/bounces?class=nonsense', { key: read })).status, 400);

    const csv = await api('GET', '/bounces?format=csv', { key: read });
    assert.equal(csv.status, 200);
    assert.match(csv.headers.get('content-type')!, /^text\/csv/);
    const lines = csv.text.trim().split('\r\n');
    assert.equal(lines[0], 'email,status,bounce_class,reply,attempts,message_id,domain,from,subject,at');
    const line = lines.find((l) => l.includes(r.json.id))!;
    assert.match(line, /^nobody@dest\.test,bounced,bad-mailbox,550 5\.1\.1 /);
    assert.ok(line.includes('"bye, ""friend"""'), line);
    const detail = await api('GET', `/messages/${r.json.id}`, { key: read });
    assert.equal(detail.json.events.at(-1).type, 'bounced');
    assert.equal(detail.json.events.at(-1).bounce_class, 'bad-mailbox');
  });
});
