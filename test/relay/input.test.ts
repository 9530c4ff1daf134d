// Bad input gets a clear SMTP reply and changes nothing (SPEC §4): size and
// recipient limits, address syntax, control headers; and what a good message
// becomes: control headers read and stripped, tags/metadata stored,
// Message-ID and Date added only when missing. DATA is spooled to disk and
// the spool file is gone once the reply was sent.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startMxSink, submitMail, until, type MxSink } from '../helpers/gateway.js';
import { openTransaction, rawSmtp, replies, type RawSmtp } from '../helpers/raw-smtp.js';
import { DOMAIN, eml, spoolFiles, startRelay, type RelayFixture } from '../helpers/relay.js';

const MAX_SIZE = 20_000;
const MAX_RCPTS = 3;
let f: RelayFixture;
let mx: MxSink;
const open: RawSmtp[] = [];

/** One whole transaction on `c`; returns the reply to the final dot. */
async function send(c: RawSmtp, message: string, to = ['bob@dest.test']): Promise<string> {
  assert.match(await c.cmd(`MAIL FROM:<app@${DOMAIN}>`), /^250 /);
  for (const r of to) assert.match(await c.cmd(`RCPT TO:<${r}>`), /^250 /);
  assert.match(await c.cmd('DATA'), /^354 /);
  c.write(`${message}.\r\n`);
  return c.reply();
}

const queuedId = (reply: string) => {
  const m = /^250 2\.0\.0 Ok: queued as (\S+)$/.exec(reply);
  assert.ok(m, `expected a 250 queued reply, got ${reply}`);
  return m[1];
};

/** The delivered copy of the message whose Subject is `subject`. */
async function delivered(subject: string): Promise<string> {
  const m = await until(() => mx.received.find((x) => x.body.toString('latin1').includes(`Subject: ${subject}\r\n`)), `delivery of ${subject}`, 10_000);
  return m.body.toString('latin1');
}

before(async () => {
  f = await startRelay({ smtp: { maxMessageSize: MAX_SIZE, maxRecipients: MAX_RCPTS } });
  f.t.dns.set('dest.test', [{ type: 'MX', exchange: 'mx.dest.test', priority: 10 }]);
  f.t.dns.set('mx.dest.test', [{ type: 'A', address: '127.0.0.31' }]);
  mx = await startMxSink('127.0.0.31', f.t.mxPort);
});
after(async () => {
  await Promise.all(open.map((c) => c.close()));
  await f?.stop();
  await mx?.close();
});

describe('size limit and spooling', () => {
  test('an oversize message is refused 552 5.3.4 after the final dot; the session goes on', async () => {
    const before = f.count();
    const c = await f.session();
    const big = eml({ Subject: 'too big' }, `${'x'.repeat(998)}\r\n`.repeat(25));
    assert.ok(big.length > MAX_SIZE);
    const r = await send(c, big);
    assert.match(r, /^552 5\.3\.4 .*maximum message size 20000$/);
    assert.equal(f.count(), before);
    // The whole oversize DATA was read: the next transaction on the connection works.
    queuedId(await send(c, eml({ Subject: 'after oversize' })));
    assert.equal(f.count(), before + 1);
    assert.deepEqual(spoolFiles(f.t.config), []);
  });

  test('MAIL FROM announcing a SIZE over the limit is refused 552 5.3.4 at once', async () => {
    const c = await f.session();
    assert.match(await c.cmd(`MAIL FROM:<app@${DOMAIN}> SIZE=${MAX_SIZE + 1}`), /^552 5\.3\.4 /);
  });

  test('a message of exactly the limit is accepted', async () => {
    const c = await f.session();
    const head = eml({ Subject: 'exactly max' }, '');
    const filler = MAX_SIZE - head.length;
    const lines = `${'y'.repeat(98)}\r\n`.repeat(Math.floor(filler / 100));
    const rest = filler - lines.length;
    const body = lines + (rest >= 2 ? `${'z'.repeat(rest - 2)}\r\n` : '');
    const message = head + body;
    assert.equal(Buffer.byteLength(message), MAX_SIZE);
    queuedId(await send(c, message));
  });

  test('the spool is empty after accepted, refused and aborted transfers', async () => {
    const c = await f.session();
    await send(c, eml({ 'X-Relaygate-Meta': '[1]' }));
    // A client that disconnects halfway through DATA.
    const d = await f.session();
    assert.match(await d.cmd(`MAIL FROM:<app@${DOMAIN}>`), /^250 /);
    assert.match(await d.cmd('RCPT TO:<bob@dest.test>'), /^250 /);
    assert.match(await d.cmd('DATA'), /^354 /);
    d.write(`${eml({ Subject: 'aborted' }, 'half a message\r\n'.repeat(200))}`);
    await new Promise((r) => setTimeout(r, 100));
    await d.close();
    await until(() => spoolFiles(f.t.config).length === 0, 'empty spool', 5000);
    assert.equal(
      mx.received.filter((m) => m.body.includes('Subject: aborted')).length,
      0,
    );
  });
});

describe('recipient limit and address syntax', () => {
  test('recipients past maxRecipients get 452 4.5.3; the message goes to the others', async () => {
    const c = await f.session();
    assert.match(await c.cmd(`MAIL FROM:<app@${DOMAIN}>`), /^250 /);
    for (let i = 1; i <= MAX_RCPTS; i++) assert.match(await c.cmd(`RCPT TO:<r${i}@dest.test>`), /^250 /);
    assert.equal(await c.cmd('RCPT TO:<r4@dest.test>'), '452 4.5.3 Error: too many recipients');
    assert.match(await c.cmd('DATA'), /^354 /);
    c.write(`${eml({ Subject: 'three rcpts' })}.\r\n`);
    const id = queuedId(await c.reply());
    assert.deepEqual(
      f.recipients(id).map((r) => r.email),
      ['r1@dest.test', 'r2@dest.test', 'r3@dest.test'],
    );
  });

  test('a bad recipient address is refused 501 5.1.3', async () => {
    const c = await f.session();
    assert.match(await c.cmd(`MAIL FROM:<app@${DOMAIN}>`), /^250 /);
    assert.equal(await c.cmd('RCPT TO:<bob@>'), '501 5.1.3 Error: Bad recipient address syntax');
    assert.match(await c.cmd('RCPT TO:<bob@dest..test>'), /^501 5\.1\.3 /);
    assert.equal(await c.cmd('RCPT TO:<bob@-dest.test>'), '501 5.1.3 Bad recipient address syntax: bob@-dest.test');
    assert.match(await c.cmd('RCPT TO:<not an address>'), /^501 5\.1\.3 /);
    assert.match(await c.cmd('DATA'), /^503 /);
  });

  test('a bad sender address is refused 501 5.1.7', async () => {
    const c = await f.session();
    assert.match(await c.cmd(`MAIL FROM:<app@${DOMAIN}..>`), /^501 5\.1\.7 /);
  });
});

describe('control headers', () => {
  const bad: [string, string, RegExp][] = [
    ['X-Relaygate-Meta', 'not json', /^550 5\.6\.0 Invalid X-Relaygate-Meta header: not valid JSON$/],
    ['X-Relaygate-Meta', '["a"]', /^550 5\.6\.0 Invalid X-Relaygate-Meta header: must be a JSON object$/],
    ['X-Relaygate-Meta', `{"a":"${'x'.repeat(2100)}"}`, /^550 5\.6\.0 Invalid X-Relaygate-Meta header: must be at most 2048 bytes$/],
    ['x-relaygate-meta', '{', /^550 5\.6\.0 Invalid x-relaygate-meta header/],
    ['X-Relaygate-Track', 'opens,bogus', /^550 5\.6\.0 Invalid X-Relaygate-Track header: "bogus" is not one of/],
    ['X-Relaygate-Send-At', 'tomorrow', /^550 5\.6\.0 Invalid X-Relaygate-Send-At header: "tomorrow" is not an ISO 8601 date-time$/],
    ['X-Relaygate-Send-At', '2026-13-45T99:00:00Z', /^550 5\.6\.0 Invalid X-Relaygate-Send-At header: /],
    ['X-Relaygate-Send-At', '2026-12-01T09:00:00', /^550 5\.6\.0 Invalid X-Relaygate-Send-At header: /],
    ['X-Relaygate-Tag', 'ok, bad tag!', /^550 5\.6\.0 Invalid X-Relaygate-Tag header: /],
    ['X-Relaygate-Frobnicate', '1', /^550 5\.6\.0 Invalid X-Relaygate-Frobnicate header: unknown control header$/],
  ];
  for (const [name, value, expected] of bad) {
    test(`${name}: ${value.slice(0, 30)} → 550 5.6.0 naming the header, nothing queued`, async () => {
      const before = f.count();
      const c = await f.session();
      assert.match(await send(c, eml({ [name]: value })), expected);
      assert.equal(f.count(), before);
    });
  }

  test('control headers are stored and stripped from the delivered message (folded ones too)', async () => {
    const c = await f.session();
    const message = eml({
      Subject: 'controls',
      'X-Relaygate-Tag': 'welcome, 2026-spring',
      'X-Relaygate-Meta': '{"user_id":"42",\r\n  "plan":"pro"}',
      'X-Relaygate-Track': 'none',
      'Content-Type': 'text/html; charset=utf-8',
      'X-Other': 'kept',
    }, '<html><body><a href="https://x.test/a">a</a></body></html>\r\n');
    const id = queuedId(await send(c, message));
    const row = f.t.gw.store.queue.message(id)!;
    assert.deepEqual(JSON.parse(row.tags), ['welcome', '2026-spring']);
    assert.deepEqual(JSON.parse(row.metadata!), { user_id: '42', plan: 'pro' });
    const body = await delivered('controls');
    assert.doesNotMatch(body, /x-relaygate/i);
    assert.doesNotMatch(body, /"plan"/, 'continuation line of the folded header is gone too');
    assert.match(body, /^X-Other: kept\r$/m);
    // Track: none → the link and the body are untouched.
    assert.match(body, /<a href="https:\/\/x\.test\/a">a<\/a>/);
    assert.doesNotMatch(body, /\/t\/[cou]\//);
  });
});

describe('control headers as mail libraries write them', () => {
  test('nodemailer encodes JSON metadata as RFC 2047 words (and folds long ones): read as written', async () => {
    const meta = { user_id: '42', name: 'Jürgen Müller', note: 'x'.repeat(300) };
    const r = await submitMail({
      port: f.t.smtpPort,
      auth: f.auth,
      from: `app@${DOMAIN}`,
      to: 'bob@dest.test',
      subject: 'encoded controls',
      text: 'hi',
      headers: { 'X-Relaygate-Meta': JSON.stringify(meta), 'X-Relaygate-Tag': 'welcome,2026-spring' },
    });
    const id = queuedId(r.response);
    const row = f.t.gw.store.queue.message(id)!;
    assert.deepEqual(JSON.parse(row.metadata!), meta);
    assert.deepEqual(JSON.parse(row.tags), ['welcome', '2026-spring']);
    assert.doesNotMatch(await delivered('encoded controls'), /x-relaygate/i);
  });
});

describe('Message-ID and Date', () => {
  test('added when missing', async () => {
    const c = await f.session();
    const id = queuedId(await send(c, `From: app@${DOMAIN}\r\nTo: bob@dest.test\r\nSubject: no ids\r\n\r\nhi\r\n`));
    const body = await delivered('no ids');
    const mids = body.match(/^Message-ID: .*$/gim) ?? [];
    assert.equal(mids.length, 1);
    assert.equal(mids[0].trim(), `Message-ID: <${id}@${f.t.config.hostname}>`);
    const dates = body.match(/^Date: (.*)\r$/gim) ?? [];
    assert.equal(dates.length, 1);
    const when = Date.parse(dates[0].slice(5));
    assert.ok(Math.abs(when - Date.now()) < 60_000, `Date ${dates[0]} is now`);
    assert.match(dates[0], /^Date: [A-Z][a-z]{2}, \d{2} [A-Z][a-z]{2} \d{4} \d{2}:\d{2}:\d{2} \+0000\r$/);
    assert.equal(f.t.gw.store.queue.message(id)!.message_id_header, `<${id}@${f.t.config.hostname}>`);
  });

  test('existing ones are kept as they were', async () => {
    const c = await f.session();
    const mid = '<keep-me.123@app.example.test>';
    const date = 'Tue, 01 Dec 2026 09:00:00 +0100';
    await send(c, eml({ Subject: 'has ids', 'Message-ID': mid, Date: date }));
    const body = await delivered('has ids');
    assert.deepEqual(body.match(/^Message-ID: .*$/gim)?.map((s) => s.trim()), [`Message-ID: ${mid}`]);
    assert.deepEqual(body.match(/^Date: .*$/gim)?.map((s) => s.trim()), [`Date: ${date}`]);
  });

  test('empty ones are replaced, never doubled', async () => {
    const c = await f.session();
    const id = queuedId(await send(c, `From: app@${DOMAIN}\r\nTo: bob@dest.test\r\nMessage-ID:\r\nDate: \r\nSubject: empty ids\r\n\r\nhi\r\n`));
    const body = await delivered('empty ids');
    assert.deepEqual(body.match(/^Message-ID:.*$/gim)?.map((s) => s.trim()), [`Message-ID: <${id}@${f.t.config.hostname}>`]);
    assert.equal(body.match(/^Date:.*$/gim)?.length, 1);
  });
});

describe('pipelining', () => {
  test('a pipelined transaction gets one reply per command, in order', async () => {
    const c = await f.session();
    c.write(`MAIL FROM:<app@${DOMAIN}>\r\nRCPT TO:<p1@dest.test>\r\nRCPT TO:<bad@>\r\nRCPT TO:<p2@dest.test>\r\nDATA\r\n`);
    const [mail, r1, r2, r3, data] = await replies(c, 5);
    assert.match(mail, /^250 /);
    assert.match(r1, /^250 /);
    assert.match(r2, /^501 5\.1\.3 /);
    assert.match(r3, /^250 /);
    assert.match(data, /^354 /);
    c.write(`${eml({ Subject: 'pipelined' })}.\r\nQUIT\r\n`);
    const [done, bye] = await replies(c, 2);
    const id = queuedId(done);
    assert.match(bye, /^221 /);
    assert.deepEqual(
      f.recipients(id).map((r) => r.email),
      ['p1@dest.test', 'p2@dest.test'],
    );
  });

  test('openTransaction helper smoke check', async () => {
    const c = await rawSmtp({ port: f.t.smtpPort });
    open.push(c);
    await openTransaction(c, { auth: f.auth, from: `app@${DOMAIN}`, to: ['bob@dest.test'] });
    c.write(`${eml({ Subject: 'helper' })}.\r\n`);
    queuedId(await c.reply());
  });
});
