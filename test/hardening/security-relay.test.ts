// Security suite, part 1 (issue 6, part 4): who can get mail relayed.
// - open-relay matrix: no AUTH (several EHLO names, next to an IP credential), AUTH
//   with a foreign or look-alike envelope sender or From header, and address tricks
//   (%-hack, source routes, quoted local parts, bang paths, IP literals, trailing
//   dots, mixed case, a Cyrillic look-alike of the domain) → relay attempts / relayed;
// - AUTH brute force from one IP is throttled after smtp.authFailureLimit failures.
// The address forms one by one, with their exact replies: test/relay/sender-policy.test.ts.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { addCredential } from '../../src/auth/credentials.js';
import { startMxSink, until, type MxSink } from '../helpers/gateway.js';
import { rawSmtp, type RawSmtp } from '../helpers/raw-smtp.js';
import { DOMAIN, eml, startRelay, type RelayFixture } from '../helpers/relay.js';

let f: RelayFixture;
let dest: MxSink;
let victim: MxSink;
let other: MxSink;
const open: RawSmtp[] = [];

before(async () => {
  f = await startRelay({ smtp: { authFailureLimit: 5 } });
  const { dns, mxPort } = f.t;
  for (const [name, ip] of [['dest.test', '127.0.0.81'], ['victim.test', '127.0.0.82'], ['other.test', '127.0.0.83']]) {
    dns.set(name, [{ type: 'MX', exchange: `mx.${name}`, priority: 10 }]);
    dns.set(`mx.${name}`, [{ type: 'A', address: ip }]);
  }
  [dest, victim, other] = await Promise.all(['127.0.0.81', '127.0.0.82', '127.0.0.83'].map((ip) => startMxSink(ip, mxPort)));
});
after(async () => {
  await Promise.all(open.map((c) => c.close()));
  await f?.stop();
  await Promise.all([dest, victim, other].map((s) => s?.close()));
});

describe('open-relay matrix', () => {
  interface Attempt {
    what: string;
    auth: boolean;
    localAddress?: string;
    helo?: string;
    from: string;
    to: string;
    header?: string;
  }
  const LOOKALIKE = 'ex\u0430mple.test'; // Cyrillic а
  const attempts: Attempt[] = [];
  const senders = [`app@${DOMAIN}`, 'boss@victim.test', '', 'APP@EXAMPLE.TEST', `postmaster@${DOMAIN}`, `user%victim.test@${DOMAIN}`, `@${DOMAIN}:app@${DOMAIN}`];
  const targets = ['eve@victim.test', 'bob@dest.test', 'eve%victim.test@dest.test', '@dest.test:eve@victim.test', 'eve@[127.0.0.82]', 'postmaster'];
  for (const helo of ['client.test', 'localhost', DOMAIN]) {
    for (const from of senders) for (const to of targets) attempts.push({ what: `no AUTH (EHLO ${helo})`, auth: false, helo, from, to });
  }
  // An IP credential covers 127.0.0.90 only; its neighbour still needs AUTH.
  for (const to of targets) attempts.push({ what: 'no AUTH, next to an IP credential', auth: false, localAddress: '127.0.0.91', from: `app@${DOMAIN}`, to });
  const foreignSenders = [
    'boss@victim.test',
    'boss@other.test',
    `app@${DOMAIN}.victim.test`,
    'app@EXAMPLE.TEST.victim.test',
    'app@evilexample.test',
    'app@examp1e.test',
    'app@example.tes',
    `app@${LOOKALIKE}`,
    'app@xn--exmple-4nf.test',
    `app@${DOMAIN}.`,
    'app@[127.0.0.1]',
    'app@[IPv6:::1]',
    `"app"@${DOMAIN}`,
    `"boss@victim.test"@${DOMAIN}`,
    `boss%victim.test@${DOMAIN}`,
    `victim.test!boss@${DOMAIN}`,
    `@${DOMAIN}:boss@victim.test`,
    `app@${DOMAIN}@victim.test`,
    'boss@VICTIM.TEST',
  ];
  for (const from of foreignSenders) attempts.push({ what: 'AUTH, foreign envelope sender', auth: true, from, to: 'eve@victim.test' });
  for (const from of foreignSenders.slice(0, 4)) attempts.push({ what: 'IP credential, foreign envelope sender', auth: false, localAddress: '127.0.0.90', from, to: 'eve@victim.test' });
  const foreignFrom = [
    'Boss <boss@victim.test>',
    `App <app@${LOOKALIKE}>`,
    `"app@${DOMAIN}" <boss@victim.test>`,
    `app@${DOMAIN}.victim.test`,
    'BOSS@VICTIM.TEST',
    `team: app@${DOMAIN}, boss@victim.test;`,
    `boss@victim.test (app@${DOMAIN})`,
  ];
  for (const from of foreignFrom) attempts.push({ what: 'AUTH, own sender, foreign From header', auth: true, from: `app@${DOMAIN}`, to: 'eve@victim.test', header: from });
  const tricks = [
    'eve%victim.test@dest.test',
    'victim.test!eve@dest.test',
    '"eve@victim.test"@dest.test',
    '"eve"@dest.test',
    'eve@[127.0.0.82]',
    'eve@[IPv6:::ffff:127.0.0.82]',
    'eve@127.0.0.82',
    'eve@dest.test@victim.test',
    'eve@victim.test.',
    `eve@${'dest.test'}.`,
    '@victim.test:bob@dest.test',
    '@victim.test,@other.test:bob@dest.test',
  ];
  for (const to of tricks) attempts.push({ what: 'AUTH, own sender, routing trick in RCPT', auth: true, from: `app@${DOMAIN}`, to });

  test(`${attempts.length} relay attempts: none is relayed`, async () => {
    await addCredential(f.t.gw.store, DOMAIN, { ip: '127.0.0.90/32' });
    const outcome = { refusedAtMail: 0, refusedAtRcpt: 0, refusedAtData: 0, accepted: [] as Attempt[] };
    const runOne = async (a: Attempt, i: number) => {
      const c = await rawSmtp({ port: f.t.smtpPort, localAddress: a.localAddress, timeoutMs: 10_000 });
      try {
        assert.match(await c.cmd(`EHLO ${a.helo ?? 'client.test'}`), /^250/);
        if (a.auth) assert.match(await c.authPlain(f.cred.username, f.cred.password), /^235 /);
        const mail = await c.cmd(`MAIL FROM:<${a.from}>`);
        if (!mail.startsWith('250')) {
          assert.match(mail, /^(530 5\.7\.0|550 5\.7\.1|501 5\.1\.7|501 5\.5\.4) /, `${a.what} ${a.from}`);
          outcome.refusedAtMail++;
          return;
        }
        const rcpt = await c.cmd(`RCPT TO:<${a.to}>`);
        if (!rcpt.startsWith('250')) {
          assert.match(rcpt, /^501 5\.1\.3 /, `${a.what} ${a.to}`);
          outcome.refusedAtRcpt++;
          return;
        }
        assert.match(await c.cmd('DATA'), /^354 /);
        c.write(`${eml({ From: a.header ?? `app@${DOMAIN}`, To: a.to, Subject: `relay attempt ${i}` })}.\r\n`);
        const end = await c.reply();
        if (end.startsWith('250')) outcome.accepted.push(a);
        else {
          assert.match(end, /^(550 5\.7\.1|550 5\.6\.0) /, `${a.what} ${a.header}`);
          outcome.refusedAtData++;
        }
      } finally {
        await c.close();
      }
    };
    let next = 0;
    await Promise.all(Array.from({ length: 8 }, async () => {
      while (next < attempts.length) {
        const i = next++;
        await runOne(attempts[i], i);
      }
    }));
    // The one accepted form: a source route in RCPT, which RFC 5321 §4.1.2 says to ignore;
    // the mail goes to the mailbox (bob@dest.test), never to the route's host.
    const legit = (a: Attempt) => a.to.startsWith('@victim.test') && a.to.endsWith(':bob@dest.test');
    const attemptsAtDest = () => dest.received.filter((m) => m.body.includes('Subject: relay attempt'));
    await until(() => attemptsAtDest().length >= outcome.accepted.length, 'deliveries of accepted attempts', 15_000);
    await new Promise((r) => setTimeout(r, 500));
    const atVictim = victim.received.length + other.received.length;
    const trickAtDest = attemptsAtDest().filter((m) => m.to.some((t) => t !== 'bob@dest.test')).length;
    const relayed = outcome.accepted.filter((a) => !legit(a)).length + atVictim + trickAtDest;
    console.log(
      `[security] open-relay matrix: ${attempts.length} relay attempts, ${relayed} relayed ` +
        `(refused at MAIL ${outcome.refusedAtMail}, at RCPT ${outcome.refusedAtRcpt}, at DATA ${outcome.refusedAtData}; ` +
        `${outcome.accepted.length} source-routed RCPTs delivered to the mailbox, not the route host)`,
    );
    assert.equal(relayed, 0, outcome.accepted.map((a) => `${a.what}: ${a.from} → ${a.to}`).join('\n'));
    assert.equal(outcome.accepted.length, 2);
    assert.equal(atVictim, 0);
  });
});

// ---------------------------------------------------------------------------
describe('AUTH brute force', () => {
  test('guesses from one IP are throttled after authFailureLimit failures, over PLAIN and LOGIN and many connections', async () => {
    const ip = '127.0.0.50';
    const limit = f.t.config.smtp.authFailureLimit;
    const conns = await Promise.all(Array.from({ length: 8 }, () => rawSmtp({ port: f.t.smtpPort, localAddress: ip })));
    open.push(...conns);
    await Promise.all(conns.map((c) => c.cmd('EHLO brute.test')));
    const answers: string[] = [];
    const b64 = (s: string) => Buffer.from(s).toString('base64');
    await Promise.all(
      conns.map(async (c, k) => {
        for (let i = 0; i < 5; i++) {
          const guess = `guess-${k}-${i}`;
          if ((k + i) % 2) answers.push(await c.authPlain(f.cred.username, guess));
          else {
            const r1 = await c.cmd(`AUTH LOGIN ${b64(f.cred.username)}`);
            answers.push(r1.startsWith('334') ? await c.cmd(b64(guess)) : r1);
          }
        }
      }),
    );
    const checked = answers.filter((a) => a.startsWith('535 5.7.8 ')).length;
    const throttled = answers.filter((a) => a === '454 4.7.0 Too many failed authentication attempts; try again later').length;
    console.log(`[security] AUTH brute force: ${answers.length} guesses from one IP, ${checked} checked, ${throttled} throttled (limit ${limit})`);
    assert.equal(checked + throttled, answers.length, answers.join('\n'));
    assert.equal(checked, limit);
    // Locked out: even the right password is refused now, on a new connection too.
    const late = await rawSmtp({ port: f.t.smtpPort, localAddress: ip });
    open.push(late);
    await late.cmd('EHLO brute.test');
    assert.equal(await late.authPlain(f.cred.username, f.cred.password), '454 4.7.0 Too many failed authentication attempts; try again later');
    const elsewhere = await rawSmtp({ port: f.t.smtpPort, localAddress: '127.0.0.51' });
    open.push(elsewhere);
    await elsewhere.cmd('EHLO ok.test');
    assert.equal(await elsewhere.authPlain(f.cred.username, f.cred.password), '235 2.7.0 Authentication successful');
  });
});

