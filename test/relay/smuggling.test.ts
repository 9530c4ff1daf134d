// SMTP smuggling (CVE-2023-51764/51765/51766 family) and bare CR/LF (RFC 5321
// §2.3.8, SPEC §4): only <CRLF>.<CRLF> ends DATA, so a fake end-of-data
// sequence followed by a second MAIL/RCPT/DATA stays message content — exactly
// one message is queued and delivered — and no bare CR or LF is ever relayed,
// where a downstream server could read it as a line end (or end of data).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { startMxSink, until, type MxSink } from '../helpers/gateway.js';
import { openTransaction, rawSmtp, type RawSmtp } from '../helpers/raw-smtp.js';
import { DOMAIN, startRelay, type RelayFixture } from '../helpers/relay.js';

let f: RelayFixture;
let mx: MxSink;
let victimMx: MxSink;
const open: RawSmtp[] = [];

before(async () => {
  f = await startRelay();
  const { dns, mxPort } = f.t;
  dns.set('dest.test', [{ type: 'MX', exchange: 'mx.dest.test', priority: 10 }]);
  dns.set('mx.dest.test', [{ type: 'A', address: '127.0.0.41' }]);
  dns.set('victim.test', [{ type: 'MX', exchange: 'mx.victim.test', priority: 10 }]);
  dns.set('mx.victim.test', [{ type: 'A', address: '127.0.0.42' }]);
  mx = await startMxSink('127.0.0.41', mxPort);
  victimMx = await startMxSink('127.0.0.42', mxPort);
});
after(async () => {
  await Promise.all(open.map((c) => c.close()));
  await f?.stop();
  await mx?.close();
  await victimMx?.close();
});

/** Offsets of every CR not followed by LF and every LF not preceded by CR. */
function bareLineBreaks(b: Buffer): number[] {
  const out: number[] = [];
  for (let i = 0; i < b.length; i++) {
    if (b[i] === 13 && b[i + 1] !== 10) out.push(i);
    if (b[i] === 10 && b[i - 1] !== 13) out.push(i);
  }
  return out;
}

async function authed(): Promise<RawSmtp> {
  const c = await rawSmtp({ port: f.t.smtpPort });
  open.push(c);
  await openTransaction(c, { auth: f.auth, from: `app@${DOMAIN}`, to: ['bob@dest.test'] });
  return c;
}

// Fake ends of data: each would end DATA on some MTA of the 2023 advisories.
const FAKE_ENDS: Record<string, string> = {
  '<LF>.<LF>': '\n.\n',
  '<LF>.<CR><LF>': '\n.\r\n',
  '<CR>.<CR>': '\r.\r',
  '<CR><LF>.<CR>': '\r\n.\r',
  '<CR>.<CR><LF>': '\r.\r\n',
  '<CR><LF>.<LF>': '\r\n.\n',
  '<LF>.<CR>': '\n.\r',
};

describe('SMTP smuggling', () => {
  for (const [name, fakeEnd] of Object.entries(FAKE_ENDS)) {
    test(`${name} inside DATA followed by a second transaction yields exactly one message`, async () => {
      const before = f.count();
      const victimBefore = victimMx.received.length;
      const c = await authed();
      const subject = `smuggle ${name}`;
      c.write(
        `From: app@${DOMAIN}\r\nTo: bob@dest.test\r\nSubject: ${subject}\r\n\r\nfirst part` +
          fakeEnd +
          `MAIL FROM:<app@${DOMAIN}>\r\nRCPT TO:<victim@victim.test>\r\nDATA\r\n` +
          `From: ceo@${DOMAIN}\r\nTo: victim@victim.test\r\nSubject: smuggled\r\n\r\nsmuggled body\r\n.\r\n`,
      );
      const r = await c.reply();
      // The first real <CRLF>.<CRLF> ends the only message.
      assert.match(r, /^250 2\.0\.0 Ok: queued as \S+$/);
      const id = /queued as (\S+)/.exec(r)![1];
      // Nothing else was answered: no MAIL/RCPT/DATA was ever seen as a command.
      await sleep(150);
      assert.deepEqual(c.pending(), []);
      assert.equal(f.count(), before + 1);
      assert.deepEqual(
        f.recipients(id).map((x) => x.email),
        ['bob@dest.test'],
      );
      // The session is still in a clean state afterwards.
      assert.match(await c.cmd('RSET'), /^250 /);

      const m = await until(() => mx.received.find((x) => x.body.includes(`Subject: ${subject}\r\n`)), `delivery of ${name}`, 10_000);
      assert.deepEqual(m.to, ['bob@dest.test']);
      assert.deepEqual(bareLineBreaks(m.body), [], 'no bare CR or LF relayed');
      // The would-be second message is content of the first one.
      assert.match(m.body.toString('latin1'), /smuggled body/);
      await f.settled(id);
      await sleep(200);
      assert.equal(victimMx.received.length, victimBefore, 'nothing reached the victim domain');
      assert.equal(mx.received.filter((x) => x.body.includes(`Subject: ${subject}\r\n`)).length, 1);
    });
  }

  test('a final dot split across TCP segments still ends DATA exactly once', async () => {
    const c = await authed();
    c.write(`From: app@${DOMAIN}\r\nTo: bob@dest.test\r\nSubject: split end\r\n\r\nbody\r\n`);
    await sleep(30);
    c.write('.');
    await sleep(30);
    c.write('\r');
    await sleep(30);
    c.write('\n');
    assert.match(await c.reply(), /^250 2\.0\.0 Ok: queued as \S+$/);
  });

  test('a first body line of a single (dot-stuffed) dot sent alone is content, not the end', async () => {
    const c = await authed();
    c.write('..\r\n');
    await sleep(30);
    c.write(`MAIL FROM:<app@${DOMAIN}>\r\n`);
    await sleep(100);
    assert.deepEqual(c.pending(), [], 'no reply: still in DATA');
    c.write(`From: app@${DOMAIN}\r\nSubject: leading dot\r\n\r\nx\r\n.\r\n`);
    assert.match(await c.reply(), /^(250 2\.0\.0 Ok: queued|5\d\d )/);
    await sleep(100);
    assert.deepEqual(c.pending(), []);
  });
});

describe('bare CR and LF in the message', () => {
  test('are converted to CRLF in headers and body before signing and relaying', async () => {
    const c = await authed();
    c.write(
      `From: app@${DOMAIN}\nTo: bob@dest.test\r\nSubject: bare breaks\r\nX-Note: a\r\n\r\n` +
        'line one\nline two\rline three\r\n\n\rlast\r\n.\r\n',
    );
    const r = await c.reply();
    assert.match(r, /^250 2\.0\.0 Ok: queued as \S+$/);
    const m = await until(() => mx.received.find((x) => x.body.includes('Subject: bare breaks\r\n')), 'delivery', 10_000);
    assert.deepEqual(bareLineBreaks(m.body), []);
    const text = m.body.toString('latin1');
    assert.match(text, /\r\n\r\nline one\r\nline two\r\nline three\r\n\r\n\r\nlast\r\n$/);
    assert.match(text, /^From: app@example\.test\r$/m);
  });

  test('a message made only of bare LFs (as some apps write) is delivered as CRLF', async () => {
    const c = await authed();
    c.write(`From: app@${DOMAIN}\nTo: bob@dest.test\nSubject: lf only\n\nhello\nworld\n\r\n.\r\n`);
    assert.match(await c.reply(), /^250 2\.0\.0 Ok: queued as \S+$/);
    const m = await until(() => mx.received.find((x) => x.body.includes('Subject: lf only\r\n')), 'delivery', 10_000);
    assert.deepEqual(bareLineBreaks(m.body), []);
    assert.match(m.body.toString('latin1'), /\r\n\r\nhello\r\nworld\r\n/);
  });
});
