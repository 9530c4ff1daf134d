import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { SMTPServer, type SMTPServerOptions } from 'smtp-server';
import { generate } from 'selfsigned';
import {
  createSmtpClient,
  type DeliveryTarget,
  type SendOptions,
  type SmtpClient,
  type SmtpClientOptions,
} from '../../src/delivery/smtp-client.js';

interface Received {
  from: string;
  to: string[];
  body: Buffer;
  secure: boolean;
  user?: string;
}

interface Srv {
  target: DeliveryTarget;
  received: Received[];
  mailArgs: Record<string, unknown>[];
  connections: number;
  sockets: Set<net.Socket>;
  /** SMTP sessions the server still has open (a raw socket under TLS never reports 'close'). */
  active(): number;
  close(): Promise<void>;
}

type Hooks = Pick<SMTPServerOptions, 'onConnect' | 'onMailFrom' | 'onRcptTo' | 'onData' | 'onAuth'>;

let tlsKey = '';
let tlsCert = '';
const servers: { close(): Promise<void> }[] = [];
const clients: SmtpClient[] = [];
let nextIp = 2;

const smtpError = (code: number, message: string) => Object.assign(new Error(message), { responseCode: code });

const TIMEOUTS = { connectMs: 2000, greetingMs: 2000, socketMs: 5000 };

// Bytes as the pipeline hands them over: CRLF, a dot-leading line (dot-stuffing must be
// undone by the server), 8-bit UTF-8, a 998-octet line.
const BODY = Buffer.from(
  'From: Sender <a@sender.test>\r\nTo: ok@rcpt.test\r\nSubject: =?UTF-8?Q?h=C3=A9llo?=\r\n' +
    'Message-ID: <1@sender.test>\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n' +
    '.leading dot\r\n..two dots\r\n.\r\nnon-ASCII: héllo € 你好\r\n' +
    'x'.repeat(998) +
    '\r\n',
  'utf8',
);
const ASCII_BODY = Buffer.from('Subject: plain\r\n\r\nplain ascii\r\n');

function opts(extra: Partial<SendOptions> = {}): SendOptions {
  return {
    mailFrom: 'bounce@sender.test',
    recipients: ['ok@rcpt.test'],
    body: BODY,
    heloName: 'out.sender.test',
    tls: 'opportunistic',
    timeouts: TIMEOUTS,
    ...extra,
  };
}

function client(o: SmtpClientOptions = {}): SmtpClient {
  const c = createSmtpClient(o);
  clients.push(c);
  return c;
}

async function startSmtp(host: string, hooks: Hooks = {}, extra: Partial<SMTPServerOptions> = {}): Promise<Srv> {
  const address = `127.0.0.${nextIp++}`;
  const state = { received: [] as Received[], mailArgs: [] as Record<string, unknown>[], connections: 0, sockets: new Set<net.Socket>() };
  const server = new SMTPServer({
    disableReverseLookup: true,
    logger: false,
    authOptional: true,
    key: tlsKey,
    cert: tlsCert,
    closeTimeout: 500,
    onConnect(session, cb) {
      state.connections++;
      if (hooks.onConnect) return hooks.onConnect(session, cb);
      cb();
    },
    onMailFrom(addr, session, cb) {
      state.mailArgs.push((addr.args || {}) as Record<string, unknown>);
      if (hooks.onMailFrom) return hooks.onMailFrom(addr, session, cb);
      cb();
    },
    onRcptTo: hooks.onRcptTo,
    onAuth: hooks.onAuth,
    onData:
      hooks.onData ??
      ((stream, session, cb) => {
        const chunks: Buffer[] = [];
        stream.on('data', (c: Buffer) => chunks.push(c));
        stream.on('end', () => {
          state.received.push({
            from: session.envelope.mailFrom ? session.envelope.mailFrom.address : '',
            to: session.envelope.rcptTo.map((r) => r.address),
            body: Buffer.concat(chunks),
            secure: session.secure,
            user: session.user as string | undefined,
          });
          cb(null, '2.0.0 Ok: queued as 4Xk9Qd1Zz3');
        });
      }),
    ...extra,
  });
  server.on('error', () => {});
  server.server.on('connection', (s: net.Socket) => {
    state.sockets.add(s);
    s.on('close', () => state.sockets.delete(s));
  });
  await new Promise<void>((resolve, reject) => {
    server.server.once('error', reject);
    server.listen(0, address, () => resolve());
  });
  const port = (server.server.address() as net.AddressInfo).port;
  const srv: Srv = {
    target: { host, address, port },
    ...state,
    get received() {
      return state.received;
    },
    get connections() {
      return state.connections;
    },
    active: () => server.connections.size,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of state.sockets) s.destroy();
        server.close(() => resolve());
      }),
  } as Srv;
  servers.push(srv);
  return srv;
}

/** A port on which nothing listens: connections are refused. */
async function closedPort(address: string): Promise<DeliveryTarget> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, address, () => r()));
  const port = (s.address() as net.AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return { host: 'closed.rcpt.test', address, port };
}

before(async () => {
  const pems = await generate([{ name: 'commonName', value: 'mx.rcpt.test' }], { keySize: 2048, algorithm: 'sha256' });
  tlsKey = pems.private;
  tlsCert = pems.cert;
});

after(async () => {
  await Promise.all(clients.map((c) => c.close()));
  await Promise.all(servers.map((s) => s.close()));
});

test('delivers the exact bytes, with the envelope, over STARTTLS, BODY=8BITMIME for 8-bit bodies', async () => {
  const srv = await startSmtp('mx1.rcpt.test');
  const res = await client().send([srv.target], opts());
  assert.deepEqual(res.target, srv.target);
  assert.equal(res.results.length, 1);
  assert.equal(res.results[0].status, 'delivered');
  assert.equal(res.results[0].reply, '250 2.0.0 Ok: queued as 4Xk9Qd1Zz3');
  assert.equal(res.results[0].code, 250);
  assert.equal(srv.received.length, 1);
  const got = srv.received[0];
  assert.ok(got.body.equals(BODY), `body differs:\n${got.body.toString()}`);
  assert.equal(got.from, 'bounce@sender.test');
  assert.deepEqual(got.to, ['ok@rcpt.test']);
  assert.equal(got.secure, true, 'STARTTLS was offered, so it must be used');
  assert.equal(srv.mailArgs[0].BODY, '8BITMIME');
});

test('null sender and an ASCII body: MAIL FROM:<> without BODY=8BITMIME', async () => {
  const srv = await startSmtp('mx-null.rcpt.test');
  const res = await client().send([srv.target], opts({ mailFrom: '', body: ASCII_BODY }));
  assert.equal(res.results[0].status, 'delivered');
  assert.equal(srv.received[0].from, '');
  assert.ok(srv.received[0].body.equals(ASCII_BODY));
  assert.equal(srv.mailArgs[0].BODY, undefined);
});

test('per-recipient RCPT replies: 550 bounced, 450 deferred, the rest delivered, replies verbatim', async () => {
  const srv = await startSmtp('mx-rcpt.rcpt.test', {
    onRcptTo(addr, _s, cb) {
      if (addr.address === 'bad@rcpt.test') return cb(smtpError(550, '5.1.1 <bad@rcpt.test>: Recipient address rejected: User unknown in virtual mailbox table'));
      if (addr.address === 'busy@rcpt.test') return cb(smtpError(450, '4.2.1 <busy@rcpt.test>: Recipient address rejected: Mailbox busy, try again later'));
      cb();
    },
  });
  const res = await client().send([srv.target], opts({ recipients: ['bad@rcpt.test', 'busy@rcpt.test', 'ok@rcpt.test'] }));
  assert.deepEqual(res.results, [
    { recipient: 'bad@rcpt.test', status: 'bounced', code: 550, reply: '550 5.1.1 <bad@rcpt.test>: Recipient address rejected: User unknown in virtual mailbox table' },
    { recipient: 'busy@rcpt.test', status: 'deferred', code: 450, reply: '450 4.2.1 <busy@rcpt.test>: Recipient address rejected: Mailbox busy, try again later' },
    { recipient: 'ok@rcpt.test', status: 'delivered', code: 250, reply: '250 2.0.0 Ok: queued as 4Xk9Qd1Zz3' },
  ]);
  assert.deepEqual(srv.received.map((r) => r.to), [['ok@rcpt.test']]);
});

test('every RCPT refused: each recipient gets its own reply, no DATA', async () => {
  const srv = await startSmtp('mx-allrcpt.rcpt.test', {
    onRcptTo(addr, _s, cb) {
      cb(addr.address.startsWith('a') ? smtpError(550, '5.1.1 User unknown') : smtpError(452, '4.2.2 Mailbox full, try later'));
    },
  });
  const res = await client().send([srv.target], opts({ recipients: ['a@rcpt.test', 'b@rcpt.test'] }));
  assert.deepEqual(
    res.results.map((r) => [r.recipient, r.status, r.reply]),
    [
      ['a@rcpt.test', 'bounced', '550 5.1.1 User unknown'],
      ['b@rcpt.test', 'deferred', '452 4.2.2 Mailbox full, try later'],
    ],
  );
  assert.equal(srv.received.length, 0);
});

test('5xx at MAIL FROM bounces every recipient and does not try the next MX', async () => {
  const reply = '5.7.1 <bounce@sender.test>: Sender address rejected: Access denied';
  const first = await startSmtp('mx-mail5.rcpt.test', { onMailFrom: (_a, _s, cb) => cb(smtpError(550, reply)) });
  const second = await startSmtp('mx-mail5b.rcpt.test');
  const res = await client().send([first.target, second.target], opts({ recipients: ['x@rcpt.test', 'y@rcpt.test'] }));
  for (const r of res.results) {
    assert.equal(r.status, 'bounced');
    assert.equal(r.reply, `550 ${reply}`);
    assert.equal(r.code, 550);
  }
  assert.deepEqual(res.target, first.target);
  assert.equal(second.connections, 0);
});

test('4xx at MAIL FROM moves on to the next MX', async () => {
  const first = await startSmtp('mx-grey.rcpt.test', { onMailFrom: (_a, _s, cb) => cb(smtpError(451, '4.7.1 Greylisted, please try again later')) });
  const second = await startSmtp('mx-grey2.rcpt.test');
  const res = await client().send([first.target, second.target], opts());
  assert.equal(res.results[0].status, 'delivered');
  assert.deepEqual(res.target, second.target);
  assert.equal(second.received.length, 1);
});

test('final DATA reply 552 bounces the accepted recipients; a refused RCPT keeps its own reply', async () => {
  const srv = await startSmtp('mx-552.rcpt.test', {
    onRcptTo: (addr, _s, cb) => cb(addr.address === 'gone@rcpt.test' ? smtpError(550, '5.1.1 gone') : undefined),
    onData(stream, _s, cb) {
      stream.resume();
      stream.on('end', () => cb(smtpError(552, '5.3.4 Message size exceeds fixed limit')));
    },
  });
  const res = await client().send([srv.target], opts({ recipients: ['a@rcpt.test', 'gone@rcpt.test', 'b@rcpt.test'] }));
  assert.deepEqual(
    res.results.map((r) => [r.recipient, r.status, r.reply, r.code]),
    [
      ['a@rcpt.test', 'bounced', '552 5.3.4 Message size exceeds fixed limit', 552],
      ['gone@rcpt.test', 'bounced', '550 5.1.1 gone', 550],
      ['b@rcpt.test', 'bounced', '552 5.3.4 Message size exceeds fixed limit', 552],
    ],
  );
});

test('final DATA reply 451 defers the accepted recipients', async () => {
  const srv = await startSmtp('mx-451.rcpt.test', {
    onData(stream, _s, cb) {
      stream.resume();
      stream.on('end', () => cb(smtpError(451, '4.3.0 Temporary queue failure')));
    },
  });
  const res = await client().send([srv.target], opts());
  assert.deepEqual(res.results[0], { recipient: 'ok@rcpt.test', status: 'deferred', code: 451, reply: '451 4.3.0 Temporary queue failure' });
});

test('a refused connection moves on to the next target', async () => {
  const dead = await closedPort('127.0.0.90');
  const live = await startSmtp('mx-second.rcpt.test');
  const res = await client().send([dead, live.target], opts());
  assert.equal(res.results[0].status, 'delivered');
  assert.deepEqual(res.target, live.target);
});

test('all targets refuse: deferred with the last reason', async () => {
  const a = await closedPort('127.0.0.91');
  const b = await closedPort('127.0.0.92');
  const res = await client().send([a, b], opts({ recipients: ['x@rcpt.test', 'y@rcpt.test'] }));
  for (const r of res.results) {
    assert.equal(r.status, 'deferred');
    assert.equal(r.reply, `421 4.4.1 connection refused by closed.rcpt.test [127.0.0.92]:${b.port}`);
    assert.equal(r.code, 421);
  }
});

test('greeting 421 moves on to the next target; alone it defers with the reply verbatim', async () => {
  const busy = await startSmtp('mx-421.rcpt.test', { onConnect: (_s, cb) => cb(smtpError(421, '4.3.2 mx-421.rcpt.test Service shutting down')) });
  const good = await startSmtp('mx-after421.rcpt.test');
  const c = client();
  const res = await c.send([busy.target, good.target], opts());
  assert.equal(res.results[0].status, 'delivered');
  assert.equal(good.received.length, 1);
  assert.equal(busy.connections, 1);

  const alone = await c.send([busy.target], opts());
  assert.deepEqual(alone.results[0], {
    recipient: 'ok@rcpt.test',
    status: 'deferred',
    code: 421,
    reply: '421 4.3.2 mx-421.rcpt.test Service shutting down',
  });
});

test('greeting 554 on the only target bounces with the reply verbatim', async () => {
  const srv = await startSmtp('mx-554.rcpt.test', {
    onConnect: (_s, cb) => cb(smtpError(554, '5.7.1 Service unavailable; Client host [127.0.0.1] blocked using zen.spamhaus.org')),
  });
  const res = await client().send([srv.target], opts());
  assert.equal(res.results[0].status, 'bounced');
  assert.equal(res.results[0].reply, '554 5.7.1 Service unavailable; Client host [127.0.0.1] blocked using zen.spamhaus.org');
});

test('a tarpit that never greets is deferred within greetingMs', async () => {
  const sockets = new Set<net.Socket>();
  const tarpit = net.createServer((s) => {
    sockets.add(s);
    s.on('error', () => {});
  });
  await new Promise<void>((r) => tarpit.listen(0, '127.0.0.93', () => r()));
  servers.push({
    close: () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy();
        tarpit.close(() => r());
      }),
  });
  const target = { host: 'tarpit.rcpt.test', address: '127.0.0.93', port: (tarpit.address() as net.AddressInfo).port };
  const started = Date.now();
  const res = await client().send([target], opts({ timeouts: { connectMs: 1000, greetingMs: 400, socketMs: 5000 } }));
  const took = Date.now() - started;
  assert.equal(res.results[0].status, 'deferred');
  assert.equal(res.results[0].reply, '421 4.4.2 connection timed out at greeting from tarpit.rcpt.test [127.0.0.93]');
  assert.ok(took >= 350 && took < 2000, `took ${took} ms`);
});

test('a connection is reused for sequential sends to the same target', async () => {
  const srv = await startSmtp('mx-reuse.rcpt.test');
  const c = client({ maxIdleMs: 5000 });
  const a = await c.send([srv.target], opts({ recipients: ['one@rcpt.test'] }));
  const b = await c.send([srv.target], opts({ recipients: ['two@rcpt.test'], body: ASCII_BODY }));
  assert.equal(a.results[0].status, 'delivered');
  assert.equal(b.results[0].status, 'delivered');
  assert.equal(srv.connections, 1);
  assert.deepEqual(srv.received.map((r) => r.to), [['one@rcpt.test'], ['two@rcpt.test']]);
  assert.ok(srv.received[1].body.equals(ASCII_BODY));
});

test('never two transactions on one connection; reuse stops at maxMessagesPerConnection and after maxIdleMs', async () => {
  const srv = await startSmtp('mx-conc.rcpt.test');
  const c = client({ maxIdleMs: 5000 });
  const both = await Promise.all([c.send([srv.target], opts()), c.send([srv.target], opts())]);
  assert.ok(both.every((r) => r.results[0].status === 'delivered'));
  assert.equal(srv.connections, 2);
  await c.send([srv.target], opts());
  assert.equal(srv.connections, 2, 'an idle connection is reused');

  const limited = await startSmtp('mx-limit.rcpt.test');
  const one = client({ maxMessagesPerConnection: 1 });
  await one.send([limited.target], opts());
  await one.send([limited.target], opts());
  assert.equal(limited.connections, 2);

  const idle = await startSmtp('mx-idle.rcpt.test');
  const quick = client({ maxIdleMs: 100 });
  await quick.send([idle.target], opts());
  await new Promise((r) => setTimeout(r, 300));
  await quick.send([idle.target], opts());
  assert.equal(idle.connections, 2);
  assert.equal(idle.received.length, 2);
});

test('a pooled connection the server dropped is replaced transparently', async () => {
  const srv = await startSmtp('mx-drop-idle.rcpt.test');
  const c = client({ maxIdleMs: 5000 });
  await c.send([srv.target], opts());
  for (const s of srv.sockets) s.destroy();
  await new Promise((r) => setTimeout(r, 50));
  const res = await c.send([srv.target], opts());
  assert.equal(res.results[0].status, 'delivered');
  assert.equal(srv.connections, 2);
  assert.equal(srv.received.length, 2);
});

test('no STARTTLS offered: opportunistic delivers in plaintext', async () => {
  const srv = await startSmtp('mx-plain.rcpt.test', {}, { hideSTARTTLS: true });
  const res = await client().send([srv.target], opts());
  assert.equal(res.results[0].status, 'delivered');
  assert.equal(srv.received[0].secure, false);
});

test("tls 'required' without STARTTLS: deferred, nothing sent", async () => {
  const srv = await startSmtp('mx-notls.rcpt.test', {}, { hideSTARTTLS: true });
  const res = await client().send([srv.target], opts({ tls: 'required' }));
  assert.equal(res.results[0].status, 'deferred');
  assert.equal(res.results[0].reply, `451 4.7.5 TLS required but STARTTLS not offered by mx-notls.rcpt.test [${srv.target.address}]`);
  assert.equal(srv.received.length, 0);
  assert.equal(srv.mailArgs.length, 0, 'no MAIL FROM in plaintext');
});

test('opportunistic TLS whose handshake fails is retried in plaintext on the same host', async () => {
  // No cipher in common (PSK only, no PSK configured): the handshake fails after STARTTLS.
  const srv = await startSmtp('mx-badtls.rcpt.test', {}, { maxVersion: 'TLSv1.2', ciphers: 'PSK-AES128-CBC-SHA' } as Partial<SMTPServerOptions>);
  const res = await client().send([srv.target], opts());
  assert.equal(res.results[0].status, 'delivered', res.results[0].reply);
  assert.equal(srv.received[0].secure, false);
  assert.equal(srv.connections, 2);

  const required = await client().send([srv.target], opts({ tls: 'required' }));
  assert.equal(required.results[0].status, 'deferred');
  assert.match(required.results[0].reply, /^421 4\.7\.0 TLS negotiation failed with mx-badtls\.rcpt\.test/);
  assert.equal(srv.received.length, 1);
});

test('a server that drops the connection mid-DATA: deferred, no crash, no second MX', async () => {
  let srv: Srv | undefined;
  srv = await startSmtp('mx-middrop.rcpt.test', {
    onData(stream, _s, cb) {
      stream.on('error', () => {});
      stream.once('data', () => {
        for (const s of srv!.sockets) s.destroy();
      });
      stream.on('end', () => cb());
    },
  });
  const backup = await startSmtp('mx-middrop2.rcpt.test');
  const big = Buffer.concat([Buffer.from('Subject: big\r\n\r\n'), Buffer.from(`${'y'.repeat(76)}\r\n`.repeat(40_000))]);
  const res = await client().send([srv.target, backup.target], opts({ body: big }));
  assert.equal(res.results[0].status, 'deferred');
  assert.match(res.results[0].reply, /^421 4\.4\.2 connection lost with mx-middrop\.rcpt\.test \[127\.0\.0\.\d+\] during the transaction/);
  assert.equal(res.results[0].code, 421);
  // The first host may have taken the message: handing it to another now risks a duplicate.
  assert.equal(backup.connections, 0);
  const again = await client().send([backup.target], opts());
  assert.equal(again.results[0].status, 'delivered');
});

test('smarthost AUTH over STARTTLS; a wrong password defers, never bounces', async () => {
  const srv = await startSmtp(
    'smarthost.relay.test',
    {
      onAuth(auth, _s, cb) {
        if (auth.username === 'relay' && auth.password === 's3cret') return cb(null, { user: 'relay' });
        cb(smtpError(535, '5.7.8 Authentication credentials invalid'));
      },
    },
    { authOptional: false },
  );
  const ok = await client().send([srv.target], opts({ tls: 'required', auth: { user: 'relay', pass: 's3cret' } }));
  assert.equal(ok.results[0].status, 'delivered', ok.results[0].reply);
  assert.equal(srv.received[0].user, 'relay');
  assert.equal(srv.received[0].secure, true);

  const bad = await client().send([srv.target], opts({ tls: 'required', auth: { user: 'relay', pass: 'wrong' } }));
  assert.equal(bad.results[0].status, 'deferred');
  assert.equal(
    bad.results[0].reply,
    `451 4.7.0 authentication failed at smarthost.relay.test [${srv.target.address}]: 535 5.7.8 Authentication credentials invalid`,
  );
  assert.equal(srv.received.length, 1);
});

test('smarthost credentials are never sent without TLS', async () => {
  let authTried = false;
  const srv = await startSmtp(
    'plain-smarthost.relay.test',
    {
      onAuth(_a, _s, cb) {
        authTried = true;
        cb(null, { user: 'relay' });
      },
    },
    { hideSTARTTLS: true, allowInsecureAuth: true, authOptional: false },
  );
  const res = await client().send([srv.target], opts({ auth: { user: 'relay', pass: 's3cret' } }));
  assert.equal(res.results[0].status, 'deferred');
  assert.equal(res.results[0].reply, `451 4.7.0 refusing to authenticate to plain-smarthost.relay.test [${srv.target.address}] without TLS`);
  assert.equal(authTried, false);
  assert.equal(srv.received.length, 0);
});

test('close() ends pooled idle connections', async () => {
  const srv = await startSmtp('mx-close.rcpt.test');
  const c = createSmtpClient({ maxIdleMs: 60_000 });
  await c.send([srv.target], opts());
  await new Promise((r) => setTimeout(r, 100));
  assert.equal(srv.active(), 1, 'kept idle for reuse');
  await c.close();
  for (let i = 0; i < 40 && srv.active(); i++) await new Promise((r) => setTimeout(r, 25));
  assert.equal(srv.active(), 0);
});

test('a message over the SIZE the server announces bounces without being sent', async () => {
  const srv = await startSmtp('mx-size.rcpt.test', {}, { size: 1000 });
  const res = await client().send([srv.target], opts({ body: Buffer.alloc(2000, 0x61) }));
  assert.equal(res.results[0].status, 'bounced');
  assert.equal(res.results[0].reply, `552 5.3.4 message size 2000 exceeds the limit 1000 of mx-size.rcpt.test [${srv.target.address}]`);
  assert.equal(srv.received.length, 0);
  // Under the limit it goes, with SIZE declared (RFC 1870).
  const small = await client().send([srv.target], opts({ body: ASCII_BODY }));
  assert.equal(small.results[0].status, 'delivered');
  assert.equal(srv.mailArgs.at(-1)!.SIZE, String(ASCII_BODY.length));
});

test('SMTPUTF8: requested for a non-ASCII mailbox; refused mailboxes bounce when not offered', async () => {
  const yes = await startSmtp('mx-utf8.rcpt.test');
  const a = await client().send([yes.target], opts({ recipients: ['josé@rcpt.test'] }));
  assert.equal(a.results[0].status, 'delivered', a.results[0].reply);
  assert.equal(yes.mailArgs[0].SMTPUTF8, true);
  assert.deepEqual(yes.received[0].to, ['josé@rcpt.test']);

  const no = await startSmtp('mx-noutf8.rcpt.test', {}, { hideSMTPUTF8: true });
  const b = await client().send([no.target], opts({ recipients: ['josé@rcpt.test', 'ok@rcpt.test'] }));
  assert.equal(b.results[0].status, 'bounced');
  assert.match(b.results[0].reply, /^553 5\.6\.7 SMTPUTF8 is required but was not offered by mx-noutf8\.rcpt\.test/);
  assert.equal(b.results[1].status, 'delivered');
  assert.deepEqual(no.received[0].to, ['ok@rcpt.test']);
});

test('addresses that would break the SMTP command are refused before connecting', async () => {
  const srv = await startSmtp('mx-inject.rcpt.test');
  const res = await client().send([srv.target], opts({ recipients: ['evil@rcpt.test>\r\nRCPT TO:<x@y.test', 'ok@rcpt.test'] }));
  assert.equal(res.results[0].status, 'bounced');
  assert.equal(res.results[0].reply, '553 5.1.3 invalid recipient address');
  assert.equal(res.results[1].status, 'delivered');
  assert.deepEqual(srv.received[0].to, ['ok@rcpt.test']);

  const badFrom = await client().send([srv.target], opts({ mailFrom: 'a@b.test>\r\nDATA' }));
  assert.equal(badFrom.results[0].reply, '553 5.1.7 invalid sender address');
  assert.equal(srv.connections, 1);
});
