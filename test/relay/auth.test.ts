// Who may send (SPEC §3, §4): AUTH, STARTTLS, IP credentials, AUTH-failure
// throttling and per-credential rates — each refusal with its exact reply and
// nothing queued.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import nodemailer from 'nodemailer';
import { addCredential } from '../../src/auth/credentials.js';
import { submitMail } from '../helpers/gateway.js';
import { openTransaction, rawSmtp, type RawSmtp } from '../helpers/raw-smtp.js';
import { DOMAIN, eml, startRelay, type RelayFixture } from '../helpers/relay.js';

let f: RelayFixture;
const open: RawSmtp[] = [];
const connect = async (localAddress?: string) => {
  const c = await rawSmtp({ port: f.t.smtpPort, localAddress });
  open.push(c);
  return c;
};

before(async () => {
  // A low failure limit keeps the throttle test short; MX delivery is irrelevant here.
  f = await startRelay({ smtp: { authFailureLimit: 3 } });
});
after(async () => {
  await Promise.all(open.map((c) => c.close()));
  await f?.stop();
});

describe('SMTP submission: authentication', () => {
  test('EHLO offers the SPEC §4 extensions, STARTTLS and AUTH PLAIN LOGIN', async () => {
    const c = await connect();
    assert.match(c.greeting, /^220 /);
    const ehlo = await c.cmd('EHLO client.test');
    for (const ext of ['PIPELINING', '8BITMIME', 'SMTPUTF8', 'ENHANCEDSTATUSCODES', 'STARTTLS', `SIZE ${f.t.config.smtp.maxMessageSize}`]) {
      assert.match(ehlo, new RegExp(`^250[- ]${ext}$`, 'm'), ext);
    }
    assert.match(ehlo, /^250[- ]AUTH PLAIN LOGIN$/m);
  });

  test('MAIL FROM without AUTH is refused 530 5.7.0 and nothing is queued', async () => {
    const before = f.count();
    const c = await connect();
    await c.cmd('EHLO client.test');
    assert.equal(await c.cmd(`MAIL FROM:<app@${DOMAIN}>`), '530 5.7.0 Authentication required');
    // The session stays usable and still refuses RCPT/DATA without a sender.
    assert.match(await c.cmd('RCPT TO:<bob@dest.test>'), /^503 /);
    assert.match(await c.cmd('DATA'), /^503 /);
    assert.equal(f.count(), before);
  });

  test('nodemailer without credentials sees the 530', async () => {
    await assert.rejects(submitMail({ port: f.t.smtpPort, to: 'bob@dest.test' }), (e: any) => {
      assert.equal(e.responseCode, 530);
      assert.match(e.response, /^530 5\.7\.0 /);
      return true;
    });
  });

  test('a wrong password is refused 535 5.7.8; an unknown user too', async () => {
    const before = f.count();
    const c = await connect();
    await c.cmd('EHLO client.test');
    assert.equal(await c.authPlain(f.cred.username, 'not-the-password'), '535 5.7.8 Authentication credentials invalid');
    assert.equal(await c.authPlain(`nobody@${DOMAIN}`, f.cred.password), '535 5.7.8 Authentication credentials invalid');
    assert.equal(await c.cmd(`MAIL FROM:<app@${DOMAIN}>`), '530 5.7.0 Authentication required');
    assert.equal(f.count(), before);
  });

  test('AUTH PLAIN works on loopback without TLS and the message is queued', async () => {
    const c = await connect();
    await openTransaction(c, { auth: f.auth, from: `app@${DOMAIN}`, to: ['bob@dest.test'] });
    c.write(`${eml({})}.\r\n`);
    const r = await c.reply();
    assert.match(r, /^250 2\.0\.0 Ok: queued as (\S+)$/);
    const id = /queued as (\S+)/.exec(r)![1];
    assert.equal(f.recipients(id).length, 1);
  });

  test('AUTH LOGIN works too (nodemailer)', async () => {
    const transport = nodemailer.createTransport({
      host: '127.0.0.1',
      port: f.t.smtpPort,
      secure: false,
      ignoreTLS: true,
      auth: f.auth,
      authMethod: 'LOGIN',
    } as any);
    try {
      const info = await transport.sendMail({ from: `app@${DOMAIN}`, to: 'bob@dest.test', subject: 's', text: 't' });
      assert.match(info.response, /^250 2\.0\.0 Ok: queued as \S+$/);
    } finally {
      transport.close();
    }
  });

  test('STARTTLS upgrades the session, then AUTH and a message go through over TLS', async () => {
    const c = await connect();
    const ehlo = await c.starttls();
    assert.doesNotMatch(ehlo, /STARTTLS/, 'not offered twice');
    assert.match(ehlo, /AUTH PLAIN LOGIN/);
    assert.equal(await c.authPlain(f.cred.username, f.cred.password), '235 2.7.0 Authentication successful');
    assert.match(await c.cmd(`MAIL FROM:<app@${DOMAIN}>`), /^250 /);
    assert.match(await c.cmd('RCPT TO:<bob@dest.test>'), /^250 /);
    assert.match(await c.cmd('DATA'), /^354 /);
    c.write(`${eml({})}.\r\n`);
    assert.match(await c.reply(), /^250 2\.0\.0 Ok: queued as \S+$/);
  });

  test('nodemailer with requireTLS submits over STARTTLS', async () => {
    const transport = nodemailer.createTransport({
      host: '127.0.0.1',
      port: f.t.smtpPort,
      secure: false,
      requireTLS: true,
      tls: { rejectUnauthorized: false },
      auth: f.auth,
    } as any);
    try {
      const info = await transport.sendMail({ from: `app@${DOMAIN}`, to: 'bob@dest.test', subject: 's', text: 't' });
      assert.match(info.response, /^250 2\.0\.0 Ok: queued as \S+$/);
    } finally {
      transport.close();
    }
  });

  test('repeated AUTH failures from one IP are throttled 454 4.7.0; other IPs are not', async () => {
    // From its own loopback address so the lock-out does not touch the other tests.
    const c = await connect('127.0.0.9');
    await c.cmd('EHLO client.test');
    for (let i = 0; i < f.t.config.smtp.authFailureLimit; i++) {
      assert.equal(await c.authPlain(f.cred.username, `wrong-${i}`), '535 5.7.8 Authentication credentials invalid');
    }
    // Locked out now: even the right password is refused, on a new connection as well.
    assert.equal(await c.authPlain(f.cred.username, f.cred.password), '454 4.7.0 Too many failed authentication attempts; try again later');
    const c2 = await connect('127.0.0.9');
    await c2.cmd('EHLO client.test');
    assert.equal(await c2.authPlain(f.cred.username, f.cred.password), '454 4.7.0 Too many failed authentication attempts; try again later');
    const other = await connect('127.0.0.1');
    await other.cmd('EHLO client.test');
    assert.equal(await other.authPlain(f.cred.username, f.cred.password), '235 2.7.0 Authentication successful');
  });

  test('parallel guesses on many connections get no more tries than the failure limit', async () => {
    const limit = f.t.config.smtp.authFailureLimit;
    const conns = await Promise.all(Array.from({ length: 8 }, () => connect('127.0.0.10')));
    await Promise.all(conns.map((c) => c.cmd('EHLO client.test')));
    const answers = await Promise.all(conns.map((c, i) => c.authPlain(f.cred.username, `guess-${i}`)));
    const count = (re: RegExp) => answers.filter((a) => re.test(a)).length;
    assert.equal(count(/^535 5\.7\.8 /), limit, answers.join('\n'));
    assert.equal(count(/^454 4\.7\.0 /), conns.length - limit, answers.join('\n'));
  });

  test('parallel logins with the right password all succeed', async () => {
    const conns = await Promise.all(Array.from({ length: 8 }, () => connect('127.0.0.11')));
    await Promise.all(conns.map((c) => c.cmd('EHLO client.test')));
    const answers = await Promise.all(conns.map((c) => c.authPlain(f.cred.username, f.cred.password)));
    assert.deepEqual(answers, Array(8).fill('235 2.7.0 Authentication successful'));
  });

  test('an authzid in AUTH PLAIN does not change who the client is', async () => {
    const other = (await addCredential(f.t.gw.store, DOMAIN, { name: 'other' })) as { username: string };
    const c = await connect();
    await c.cmd('EHLO client.test');
    const token = Buffer.from(`${other.username}\0${f.cred.username}\0${f.cred.password}`).toString('base64');
    assert.match(await c.cmd(`AUTH PLAIN ${token}`), /^235 /);
    assert.match(await c.cmd(`MAIL FROM:<app@${DOMAIN}>`), /^250 /);
    assert.match(await c.cmd('RCPT TO:<bob@dest.test>'), /^250 /);
    assert.match(await c.cmd('DATA'), /^354 /);
    c.write(`${eml({})}.\r\n`);
    const id = /queued as (\S+)/.exec(await c.reply())![1];
    assert.equal(f.t.gw.store.queue.message(id)!.credential_id, f.cred.id);
  });

  test('a credential removed while a session is open stops sending at once', async () => {
    const temp = (await addCredential(f.t.gw.store, DOMAIN, { name: 'temporary' })) as { id: string; username: string; password: string };
    const c = await connect();
    await c.cmd('EHLO client.test');
    assert.match(await c.authPlain(temp.username, temp.password), /^235 /);
    assert.match(await c.cmd(`MAIL FROM:<app@${DOMAIN}>`), /^250 /);
    assert.match(await c.cmd('RSET'), /^250 /);
    assert.ok(f.t.gw.store.tenants.removeCredential(temp.id));
    const before = f.count();
    assert.equal(await c.cmd(`MAIL FROM:<app@${DOMAIN}>`), '530 5.7.0 Authentication required');
    assert.equal(f.count(), before);
  });

  test('a credential over its send rate gets 451 4.7.1', async () => {
    const limited = (await addCredential(f.t.gw.store, DOMAIN, { name: 'limited', rate: 2 })) as { username: string; password: string };
    const c = await connect();
    await c.cmd('EHLO client.test');
    assert.match(await c.authPlain(limited.username, limited.password), /^235 /);
    for (let i = 0; i < 2; i++) {
      assert.match(await c.cmd(`MAIL FROM:<app@${DOMAIN}>`), /^250 /);
      assert.match(await c.cmd('RCPT TO:<bob@dest.test>'), /^250 /);
      assert.match(await c.cmd('DATA'), /^354 /);
      c.write(`${eml({})}.\r\n`);
      assert.match(await c.reply(), /^250 2\.0\.0 Ok: queued/);
    }
    const before = f.count();
    assert.equal(await c.cmd(`MAIL FROM:<app@${DOMAIN}>`), '451 4.7.1 Sending rate exceeded (2 messages/minute); try again later');
    assert.equal(f.count(), before);
    // Another credential of the same domain is not affected.
    const c2 = await connect();
    await c2.cmd('EHLO client.test');
    await c2.authPlain(f.cred.username, f.cred.password);
    assert.match(await c2.cmd(`MAIL FROM:<app@${DOMAIN}>`), /^250 /);
  });
});

describe('SMTP submission: IP credentials', () => {
  before(async () => {
    await addCredential(f.t.gw.store, DOMAIN, { ip: '127.0.0.77/32' });
  });

  test('a client in the credential network sends without AUTH', async () => {
    const c = await connect('127.0.0.77');
    await openTransaction(c, { from: `app@${DOMAIN}`, to: ['bob@dest.test'] });
    c.write(`${eml({})}.\r\n`);
    const r = await c.reply();
    assert.match(r, /^250 2\.0\.0 Ok: queued as \S+$/);
    const id = /queued as (\S+)/.exec(r)![1];
    assert.equal(f.t.gw.store.queue.message(id)?.domain, DOMAIN);
  });

  test('the IP credential is bound to its domain: another domain gets 550 5.7.1', async () => {
    const c = await connect('127.0.0.77');
    await c.cmd('EHLO client.test');
    assert.equal(await c.cmd('MAIL FROM:<app@other.test>'), '550 5.7.1 Sender address domain other.test is not allowed from this network');
  });

  test('a client outside the network still needs AUTH', async () => {
    const before = f.count();
    const c = await connect('127.0.0.78');
    await c.cmd('EHLO client.test');
    assert.equal(await c.cmd(`MAIL FROM:<app@${DOMAIN}>`), '530 5.7.0 Authentication required');
    assert.equal(f.count(), before);
  });

  test('a whole /8 credential lets every loopback client send for its domain', async () => {
    const wide = await startRelay();
    try {
      await addCredential(wide.t.gw.store, DOMAIN, { ip: '127.0.0.0/8' });
      const r = await submitMail({ port: wide.t.smtpPort, from: `app@${DOMAIN}`, to: 'bob@dest.test' });
      assert.match(r.response, /^250 2\.0\.0 Ok: queued as \S+$/);
      assert.equal(wide.count(), 1);
    } finally {
      await wide.stop();
    }
  });
});
