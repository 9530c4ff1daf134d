// Sender domain enforcement and the open-relay matrix (SPEC §3, §4): a
// credential sends only with an envelope sender and a From header in its own
// domain or a subdomain; address tricks that route mail somewhere else on old
// MTAs are refused; nothing refused is ever queued or relayed.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { startMxSink, type MxSink } from '../helpers/gateway.js';
import { rawSmtp, type RawSmtp } from '../helpers/raw-smtp.js';
import { DOMAIN, eml, startRelay, type RelayFixture } from '../helpers/relay.js';

let f: RelayFixture;
let destMx: MxSink;
let otherMx: MxSink;
const open: RawSmtp[] = [];

/** MAIL + RCPT + DATA with `message`; returns the final reply. */
async function send(c: RawSmtp, from: string, to: string, message: string): Promise<string> {
  assert.match(await c.cmd(`MAIL FROM:<${from}>`), /^250 /);
  assert.match(await c.cmd(`RCPT TO:<${to}>`), /^250 /);
  assert.match(await c.cmd('DATA'), /^354 /);
  c.write(`${message}.\r\n`);
  return c.reply();
}

before(async () => {
  f = await startRelay();
  const { dns, mxPort } = f.t;
  dns.set('dest.test', [{ type: 'MX', exchange: 'mx.dest.test', priority: 10 }]);
  dns.set('mx.dest.test', [{ type: 'A', address: '127.0.0.21' }]);
  dns.set('other.test', [{ type: 'MX', exchange: 'mx.other.test', priority: 10 }]);
  dns.set('mx.other.test', [{ type: 'A', address: '127.0.0.22' }]);
  destMx = await startMxSink('127.0.0.21', mxPort);
  otherMx = await startMxSink('127.0.0.22', mxPort);
});
after(async () => {
  await Promise.all(open.map((c) => c.close()));
  await f?.stop();
  await destMx?.close();
  await otherMx?.close();
});

describe('envelope sender domain', () => {
  test('another domain is refused 550 5.7.1 at MAIL FROM and nothing is queued', async () => {
    const before = f.count();
    const c = await f.session();
    assert.equal(await c.cmd('MAIL FROM:<app@other.test>'), '550 5.7.1 Sender address domain other.test is not allowed for this credential');
    // Look-alikes: a suffix without the dot, and our domain as a label of another.
    assert.match(await c.cmd('MAIL FROM:<app@evilexample.test>'), /^550 5\.7\.1 /);
    assert.match(await c.cmd(`MAIL FROM:<app@${DOMAIN}.other.test>`), /^550 5\.7\.1 /);
    assert.equal(f.count(), before);
  });

  test('the null sender is refused 550 5.7.1 (a credential sends only with its own sender)', async () => {
    const c = await f.session();
    assert.equal(await c.cmd('MAIL FROM:<>'), '550 5.7.1 A null envelope sender is not allowed; use an address in your sending domain');
  });

  test('a subdomain and a different letter case are allowed', async () => {
    const c = await f.session();
    const r1 = await send(c, `news@mail.${DOMAIN}`, 'bob@dest.test', eml({ From: `News <news@mail.${DOMAIN}>` }));
    assert.match(r1, /^250 2\.0\.0 Ok: queued as \S+$/);
    const r2 = await send(c, 'App@Example.TEST', 'bob@dest.test', eml({ From: 'App <APP@EXAMPLE.TEST>' }));
    assert.match(r2, /^250 2\.0\.0 Ok: queued as \S+$/);
  });
});

describe('From header domain', () => {
  const cases: Record<string, string> = {
    'a foreign From': 'Boss <boss@other.test>',
    'our address as display name, foreign address': `"app@${DOMAIN}" <boss@other.test>`,
    'our address in a comment': `boss@other.test (app@${DOMAIN})`,
    'a list with one foreign address': `app@${DOMAIN}, boss@other.test`,
    'a group with a foreign address': `team: app@${DOMAIN}, boss@other.test;`,
  };
  for (const [name, from] of Object.entries(cases)) {
    test(`${name} is refused 550 5.7.1 and nothing is queued`, async () => {
      const before = f.count();
      const c = await f.session();
      const r = await send(c, `app@${DOMAIN}`, 'bob@dest.test', eml({ From: from }));
      assert.match(r, /^550 5\.7\.1 From header address \S+ is not allowed for example\.test$/);
      assert.equal(f.count(), before);
    });
  }

  test('a second From header with a foreign address is refused', async () => {
    const before = f.count();
    const c = await f.session();
    const msg = `From: app@${DOMAIN}\r\nFrom: boss@other.test\r\nTo: bob@dest.test\r\nSubject: x\r\n\r\nhi\r\n`;
    const r = await send(c, `app@${DOMAIN}`, 'bob@dest.test', msg);
    assert.equal(r, '550 5.6.0 Message has more than one From header');
    assert.equal(f.count(), before);
  });

  test('a message without From is refused 550 5.6.0', async () => {
    const c = await f.session();
    const r = await send(c, `app@${DOMAIN}`, 'bob@dest.test', 'To: bob@dest.test\r\nSubject: x\r\n\r\nhi\r\n');
    assert.equal(r, '550 5.6.0 Message has no From header');
  });
});

describe('open-relay matrix', () => {
  // Each of these names a mailbox that some MTA would route through or to a host
  // other than the one the address seems to name.
  const senders: Record<string, string> = {
    'percent hack': `user%other.test@${DOMAIN}`,
    'bang path': `other.test!user@${DOMAIN}`,
    'quoted local part hiding an address': `"user@other.test"@${DOMAIN}`,
    'quoted local part': `"user"@${DOMAIN}`,
    'IP literal': 'user@[127.0.0.1]',
    'IPv6 literal': 'user@[IPv6:::1]',
    'trailing dot': `user@${DOMAIN}.`,
    'two @': `user@${DOMAIN}@other.test`,
  };
  for (const [name, addr] of Object.entries(senders)) {
    test(`MAIL FROM with a ${name} is refused 501 5.1.7`, async () => {
      const c = await f.session();
      assert.match(await c.cmd(`MAIL FROM:<${addr}>`), /^501 5\.1\.7 /);
    });
  }

  test('a source route in MAIL FROM is ignored: the mailbox domain is what is checked', async () => {
    const c = await f.session();
    assert.match(await c.cmd(`MAIL FROM:<@${DOMAIN}:user@other.test>`), /^550 5\.7\.1 /);
  });

  const recipients: Record<string, string> = {
    'percent hack': 'user%other.test@dest.test',
    'bang path': 'other.test!user@dest.test',
    'quoted local part hiding an address': '"user@other.test"@dest.test',
    'quoted local part': '"user"@dest.test',
    'IP literal': 'user@[127.0.0.22]',
    'IPv6 literal': 'user@[IPv6:::1]',
    'bare IP as domain': 'user@127.0.0.22',
    'trailing dot': 'user@dest.test.',
    'two @': 'user@dest.test@other.test',
    'single-label host': 'user@localhost',
    'no domain': 'postmaster',
  };
  for (const [name, addr] of Object.entries(recipients)) {
    test(`RCPT TO with a ${name} is refused 501 5.1.3`, async () => {
      const c = await f.session();
      assert.match(await c.cmd(`MAIL FROM:<app@${DOMAIN}>`), /^250 /);
      assert.match(await c.cmd(`RCPT TO:<${addr}>`), /^501 5\.1\.3 /);
      // No recipient was taken, so there is nothing to send.
      assert.match(await c.cmd('DATA'), /^503 /);
    });
  }

  test('without AUTH no address form gets past MAIL FROM', async () => {
    const before = f.count();
    const c = await rawSmtp({ port: f.t.smtpPort });
    open.push(c);
    await c.cmd('EHLO client.test');
    for (const addr of [`app@${DOMAIN}`, '', ...Object.values(senders), `@${DOMAIN}:app@${DOMAIN}`]) {
      assert.match(await c.cmd(`MAIL FROM:<${addr}>`), /^(530 5\.7\.0|501 5\.1\.7) /, addr);
    }
    assert.match(await c.cmd('RCPT TO:<bob@dest.test>'), /^503 /);
    assert.equal(f.count(), before);
  });

  test('a source route in RCPT TO never sends the mail to the route host', async () => {
    const c = await f.session();
    const r = await send(c, `app@${DOMAIN}`, '@dest.test:user@other.test', eml({ To: 'user@other.test' }));
    assert.match(r, /^250 2\.0\.0 Ok: queued as \S+$/);
    const id = /queued as (\S+)/.exec(r)![1];
    assert.deepEqual(
      f.recipients(id).map((x) => x.email),
      ['user@other.test'],
    );
    const [m] = await otherMx.waitFor(1);
    assert.deepEqual(m.to, ['user@other.test']);
  });

  test('after all of the above, only the accepted messages reached any MX', async () => {
    // Settle: whatever was accepted gets delivered; nothing refused shows up late.
    await sleep(500);
    for (const m of [...destMx.received, ...otherMx.received]) {
      for (const to of m.to) assert.match(to, /^[a-z]+@(dest|other)\.test$/i, `unexpected recipient ${to}`);
      assert.match(m.from, new RegExp(`@(mail\\.)?${DOMAIN.replace('.', '\\.')}$`, 'i'));
    }
    assert.equal(otherMx.received.length, 1);
  });
});
