// Bad input on the SMTP submission edge (issue 6, part 3): over-long lines, NUL
// bytes, invalid UTF-8, commands out of order, pipelining floods, AUTH junk and
// over-long base64, unknown commands. Every case asserts the exact replies, that
// the session goes on (or was closed on purpose), that a fresh client still gets
// its 220, and that nothing was queued. Exact wording of the smtp-server replies
// is pinned on purpose: a dependency update that changes them should be noticed.
//
// Related cases elsewhere: size and recipient limits, address syntax and control
// headers in test/relay/input.test.ts, the open-relay address forms in
// test/relay/sender-policy.test.ts, smuggling in test/relay/smuggling.test.ts.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { rawSmtp, type RawSmtp } from '../helpers/raw-smtp.js';
import { DOMAIN, startRelay, type RelayFixture } from '../helpers/relay.js';
import { isTimeout, newTally, report } from './tally.js';

type Stage = 'greeting' | 'ehlo' | 'auth' | 'mail' | 'rcpt';

interface SmtpCase {
  name: string;
  at: Stage;
  /** Bytes sent as they are (strings as latin1); use `l()` for a CRLF-terminated line. */
  send: (string | Buffer)[];
  /** The replies, in order: an exact string or a pattern. */
  expect: (string | RegExp)[];
  /** The server closes the connection after the last reply. */
  closes?: boolean;
  /** A command that must still work on the same connection afterwards (default NOOP); null: none. */
  next?: [string, string | RegExp] | null;
  /** Messages this case queues on purpose (floods of valid transactions). */
  queues?: number;
}

const l = (s: string) => `${s}\r\n`;
const b = (...parts: (string | number[])[]) => Buffer.concat(parts.map((p) => (typeof p === 'string' ? Buffer.from(p, 'latin1') : Buffer.from(p))));
const b64 = (s: string | Buffer) => Buffer.from(s).toString('base64');
const n = <T>(count: number, v: T): T[] => Array(count).fill(v);

const OK = '250 2.0.0 OK';
const MAIL_OK = '250 2.1.0 Accepted';
const RCPT_OK = '250 2.1.5 Accepted';
const NEED_EHLO = '503 5.5.1 Error: send HELO/EHLO first';
const UNKNOWN = '500 5.5.2 Error: command not recognized';
const BAD_SENDER = '501 5.1.7 Error: Bad sender address syntax';
const BAD_RCPT = '501 5.1.3 Error: Bad recipient address syntax';
const INVALID_USERDATA = '501 5.5.4 Error: invalid userdata';
const AUTH_INVALID = '535 5.7.8 Authentication credentials invalid';
const TOO_LONG = '421 4.4.2 Error: Command line too long';
const FROM = `app@${DOMAIN}`;

let f: RelayFixture;
/** The previous case's "next client": it got its 220 after that case, and runs this one. */
let spare: RawSmtp | null = null;
let user = '';
let pass = '';
const tally = newTally();
const startedAt = Date.now();

/** Filled in before() once the credential exists; everything else is static. */
function cases(): SmtpCase[] {
  const plain = (u: string, p: string) => `AUTH PLAIN ${b64(`\0${u}\0${p}`)}`;
  return [
    // ---- over-long lines
    { name: 'NOOP with 600 characters of argument (over RFC 5321 512, under the 16 KiB cap)', at: 'ehlo', send: [l(`NOOP ${'a'.repeat(600)}`)], expect: [OK] },
    { name: 'a 16,385-byte command line', at: 'ehlo', send: [l(`NOOP ${'a'.repeat(16_380)}`)], expect: [TOO_LONG], closes: true },
    { name: '1 MB without any line end', at: 'ehlo', send: ['x'.repeat(1_000_000)], expect: [TOO_LONG], closes: true },
    { name: 'an over-long line before EHLO', at: 'greeting', send: [l('E'.repeat(20_000))], expect: [TOO_LONG], closes: true },
    { name: 'EHLO with a 400-character host name', at: 'greeting', send: [l(`EHLO ${'h'.repeat(400)}`)], expect: ['501 Error: Bad hostname syntax'] },
    { name: 'MAIL FROM with a 65-character local part', at: 'auth', send: [l(`MAIL FROM:<${'a'.repeat(65)}@${DOMAIN}>`)], expect: [/^501 5\.1\.7 Bad sender address syntax: a{65}@example\.test$/] },
    { name: 'MAIL FROM with a 300-character domain', at: 'auth', send: [l(`MAIL FROM:<a@${'d'.repeat(290)}.${DOMAIN}>`)], expect: [BAD_SENDER] },
    { name: 'RCPT TO with a 1,000-character address', at: 'mail', send: [l(`RCPT TO:<${'r'.repeat(990)}@dest.test>`)], expect: [BAD_RCPT] },
    { name: 'RCPT TO with a 64-character label', at: 'mail', send: [l(`RCPT TO:<r@${'l'.repeat(64)}.test>`)], expect: [`501 5.1.3 Bad recipient address syntax: r@${'l'.repeat(64)}.test`] },
    { name: 'MAIL FROM with 500 parameters', at: 'auth', send: [l(`MAIL FROM:<${FROM}> ${Array.from({ length: 500 }, (_, i) => `X${i}=1`).join(' ')}`)], expect: [MAIL_OK] },

    // ---- NUL bytes
    { name: 'NUL inside the EHLO name', at: 'greeting', send: [l('EHLO cli\0ent.test')], expect: ['501 Error: Bad hostname syntax'] },
    { name: 'a line of NULs', at: 'ehlo', send: [l('\0\0\0\0')], expect: [UNKNOWN] },
    { name: 'NUL after NOOP', at: 'ehlo', send: [l('NOOP\0')], expect: [UNKNOWN] },
    { name: 'NUL inside the MAIL FROM address', at: 'auth', send: [l(`MAIL FROM:<app\0@${DOMAIN}>`)], expect: [BAD_SENDER] },
    { name: 'NUL inside the RCPT TO address', at: 'mail', send: [l('RCPT TO:<bob\0@dest.test>')], expect: [BAD_RCPT] },
    { name: 'NUL inside an ESMTP parameter', at: 'auth', send: [l(`MAIL FROM:<${FROM}> BODY=8BIT\0MIME`)], expect: [BAD_SENDER] },
    { name: 'NUL after DATA', at: 'rcpt', send: [l('DATA\0')], expect: [UNKNOWN] },
    { name: 'NUL inside AUTH PLAIN credentials (extra field)', at: 'ehlo', send: [l(`AUTH PLAIN ${b64('\0a\0b\0c')}`)], expect: [INVALID_USERDATA] },
    { name: 'AUTH PLAIN of NULs only', at: 'ehlo', send: [l(`AUTH PLAIN ${b64('\0\0')}`)], expect: [/^(501 5\.5\.4 |535 5\.7\.8 )/] },

    // ---- invalid UTF-8
    { name: 'invalid UTF-8 in the RCPT local part', at: 'mail', send: [b('RCPT TO:<b', [0xff, 0xc3], '@dest.test>\r\n')], expect: [/^501 5\.1\.3 Bad recipient address syntax: b/] },
    { name: 'invalid UTF-8 in the RCPT domain', at: 'mail', send: [b('RCPT TO:<bob@d', [0xe9], 'st.test>\r\n')], expect: [/^501 5\.1\.3 /] },
    { name: 'an overlong UTF-8 "/" in RCPT', at: 'mail', send: [b('RCPT TO:<a', [0xc0, 0xaf], 'b@dest.test>\r\n')], expect: [/^501 5\.1\.3 /] },
    { name: 'a UTF-16 surrogate encoded in UTF-8 in RCPT', at: 'mail', send: [b('RCPT TO:<a', [0xed, 0xa0, 0x80], '@dest.test>\r\n')], expect: [/^501 5\.1\.3 /] },
    { name: 'invalid UTF-8 in the MAIL FROM local part', at: 'auth', send: [b('MAIL FROM:<a', [0xfe, 0xff], `@${DOMAIN}>\r\n`)], expect: [/^501 5\.1\.7 Bad sender address syntax: a/] },
    // The EHLO name is only a courtesy (we add no Received header from it): taken as sent.
    { name: 'invalid UTF-8 in the EHLO name', at: 'greeting', send: [b('EHLO ', [0xff, 0xfe], '.test\r\n')], expect: [/^250-relay\.test Nice to meet you/] },
    { name: 'invalid UTF-8 as the command name', at: 'ehlo', send: [b([0xc3, 0x28, 0xa0, 0xa1], '\r\n')], expect: [UNKNOWN] },
    { name: 'valid UTF-8 (SMTPUTF8) recipient is accepted', at: 'mail', send: [b('RCPT TO:<', Array.from(Buffer.from('jörg@dëst.test')), '>\r\n')], expect: [RCPT_OK] },

    // ---- commands out of order
    { name: 'RCPT before MAIL', at: 'auth', send: [l('RCPT TO:<bob@dest.test>')], expect: ['503 5.5.1 Error: need MAIL command'] },
    { name: 'DATA before RCPT', at: 'mail', send: [l('DATA')], expect: ['503 5.5.1 Error: need RCPT command'] },
    { name: 'DATA before MAIL', at: 'auth', send: [l('DATA')], expect: ['503 5.5.1 Error: need RCPT command'] },
    { name: 'a second MAIL in one transaction', at: 'mail', send: [l(`MAIL FROM:<${FROM}>`)], expect: ['503 5.5.1 Error: nested MAIL command'] },
    { name: 'a second MAIL after RCPT', at: 'rcpt', send: [l(`MAIL FROM:<${FROM}>`)], expect: ['503 5.5.1 Error: nested MAIL command'] },
    { name: 'MAIL before EHLO', at: 'greeting', send: [l(`MAIL FROM:<${FROM}>`)], expect: [NEED_EHLO] },
    { name: 'RCPT before EHLO', at: 'greeting', send: [l('RCPT TO:<bob@dest.test>')], expect: [NEED_EHLO] },
    { name: 'DATA before EHLO', at: 'greeting', send: [l('DATA')], expect: [NEED_EHLO] },
    { name: 'AUTH before EHLO', at: 'greeting', send: [l('AUTH PLAIN AGEAYg==')], expect: [NEED_EHLO] },
    { name: 'AUTH a second time', at: 'auth', send: [l(plain('x', 'y'))], expect: ['503 5.5.1 Error: No identity changes permitted'] },
    { name: 'AUTH inside a transaction', at: 'mail', send: [l(plain('x', 'y'))], expect: ['503 5.5.1 Error: No identity changes permitted'] },
    { name: 'MAIL without AUTH', at: 'ehlo', send: [l(`MAIL FROM:<${FROM}>`)], expect: ['530 5.7.0 Authentication required'] },
    { name: 'RCPT and DATA after a refused MAIL', at: 'ehlo', send: [l(`MAIL FROM:<${FROM}>`), l('RCPT TO:<bob@dest.test>'), l('DATA')], expect: ['530 5.7.0 Authentication required', '503 5.5.1 Error: need MAIL command', '503 5.5.1 Error: need RCPT command'] },
    { name: 'EHLO in the middle of a transaction resets it', at: 'rcpt', send: [l('EHLO again.test'), l('DATA')], expect: [/^250-relay\.test Nice to meet you/, '503 5.5.1 Error: need RCPT command'] },
    { name: 'RSET then DATA', at: 'rcpt', send: [l('RSET'), l('DATA')], expect: ['250 2.0.0 Flushed', '503 5.5.1 Error: need RCPT command'] },
    { name: 'STARTTLS with an argument', at: 'ehlo', send: [l('STARTTLS now')], expect: ['501 5.5.4 Error: syntax: STARTTLS'] },
    { name: 'BDAT (CHUNKING is not offered)', at: 'rcpt', send: [l('BDAT 10 LAST')], expect: [UNKNOWN] },
    { name: 'the end-of-data dot as a command', at: 'rcpt', send: [l('.')], expect: [UNKNOWN] },
    { name: 'a message body sent without DATA', at: 'rcpt', send: [l(`From: ${FROM}`), l('Subject: no data'), l(''), l('.')], expect: [UNKNOWN, UNKNOWN, UNKNOWN, UNKNOWN] },
    { name: 'HELO then the ESMTP AUTH command', at: 'greeting', send: [l('HELO client.test'), l(plain('x', 'y'))], expect: ['250 relay.test Nice to meet you, [127.0.0.1]', AUTH_INVALID] },

    // ---- pipelining floods
    { name: '10,000 pipelined NOOPs in one write', at: 'ehlo', send: [l('NOOP').repeat(10_000)], expect: n(10_000, OK) },
    { name: '2,000 pipelined RSETs', at: 'rcpt', send: [l('RSET').repeat(2_000)], expect: n(2_000, '250 2.0.0 Flushed') },
    { name: '1,000 pipelined RCPTs: 100 taken, the rest 452 4.5.3', at: 'mail', send: [Array.from({ length: 1_000 }, (_, i) => l(`RCPT TO:<r${i}@dest.test>`)).join('')], expect: [...n(100, RCPT_OK), ...n(900, '452 4.5.3 Error: too many recipients')], next: ['RSET', '250 2.0.0 Flushed'] },
    { name: '1,000 pipelined MAIL FROMs without AUTH', at: 'ehlo', send: [l(`MAIL FROM:<${FROM}>`).repeat(1_000)], expect: n(1_000, '530 5.7.0 Authentication required') },
    { name: '50 pipelined unknown commands: closed after the tenth', at: 'ehlo', send: [l('FROB').repeat(50)], expect: [...n(9, UNKNOWN), '421 4.4.2 Error: too many unrecognized commands'], closes: true },
    { name: '20 pipelined bad AUTH PLAIN guesses', at: 'ehlo', send: [Array.from({ length: 20 }, (_, i) => l(plain(`nobody${i}@${DOMAIN}`, 'x'))).join('')], expect: n(20, AUTH_INVALID) },
    {
      name: '20 whole transactions pipelined in one write',
      at: 'auth',
      send: [Array.from({ length: 20 }, (_, i) => `MAIL FROM:<${FROM}>\r\nRCPT TO:<p${i}@dest.test>\r\nDATA\r\nFrom: ${FROM}\r\nSubject: flood ${i}\r\n\r\nbody\r\n.\r\n`).join('')],
      expect: Array.from({ length: 20 }, () => [MAIL_OK, RCPT_OK, /^354 /, /^250 2\.0\.0 Ok: queued as \S+$/]).flat(),
      queues: 20,
    },
    { name: 'commands pipelined after QUIT are never run', at: 'auth', send: [l('QUIT') + l(`MAIL FROM:<${FROM}>`) + l('RCPT TO:<bob@dest.test>')], expect: ['221 2.0.0 Bye'], closes: true },
    { name: 'an HTTP request (cross-protocol attack)', at: 'greeting', send: ['GET / HTTP/1.1\r\nHost: x\r\n\r\n'], expect: ['421 4.4.2 HTTP requests not allowed'], closes: true },
    { name: 'a POST request after EHLO', at: 'ehlo', send: ['POST /api HTTP/1.0\r\n\r\n'], expect: ['421 4.4.2 HTTP requests not allowed'], closes: true },
    { name: 'a TLS ClientHello on the plain port', at: 'greeting', send: [b([0x16, 0x03, 0x01, 0x00, 0xa5, 0x01, 0x00, 0x00, 0xa1, 0x03, 0x03], 'x'.repeat(40), '\r\n')], expect: [UNKNOWN] },

    // ---- AUTH junk and over-long base64
    { name: 'AUTH PLAIN with characters outside base64', at: 'ehlo', send: [l('AUTH PLAIN !!!notbase64!!!')], expect: [INVALID_USERDATA] },
    { name: 'AUTH PLAIN with base64 of no NULs', at: 'ehlo', send: [l('AUTH PLAIN AAAA')], expect: [INVALID_USERDATA] },
    { name: 'AUTH PLAIN with 7,000 bytes of base64 junk', at: 'ehlo', send: [l(`AUTH PLAIN ${b64(Buffer.alloc(7_000, 'a'))}`)], expect: [INVALID_USERDATA] },
    { name: 'AUTH PLAIN with 75,000 bytes of base64 (over the line cap)', at: 'ehlo', send: [l(`AUTH PLAIN ${b64(Buffer.alloc(75_000, 'a'))}`)], expect: [TOO_LONG], closes: true },
    { name: 'AUTH PLAIN with a 5,000-character password', at: 'ehlo', send: [l(plain(user, 'p'.repeat(5_000)))], expect: [AUTH_INVALID] },
    { name: 'AUTH PLAIN with a 500-character user name', at: 'ehlo', send: [l(plain('u'.repeat(500), 'x'))], expect: [AUTH_INVALID] },
    { name: 'AUTH PLAIN with an invalid UTF-8 user name', at: 'ehlo', send: [l(`AUTH PLAIN ${b64(b('\0', [0xff, 0xfe, 0xfd], '\0pw'))}`)], expect: [AUTH_INVALID] },
    { name: 'AUTH PLAIN with the password only', at: 'ehlo', send: [l(`AUTH PLAIN ${b64('\0\0secret')}`)], expect: [/^(501 5\.5\.4 |535 5\.7\.8 )/] },
    { name: 'AUTH PLAIN with whitespace inside the base64', at: 'ehlo', send: [l('AUTH PLAIN AGEA YgA=')], expect: ['501 5.5.4 Error: syntax: AUTH PLAIN token'] },
    { name: 'AUTH PLAIN then junk as the response', at: 'ehlo', send: [l('AUTH PLAIN'), l('%%%%')], expect: ['334 ', INVALID_USERDATA] },
    { name: 'AUTH PLAIN then * (cancel)', at: 'ehlo', send: [l('AUTH PLAIN'), l('*')], expect: ['334 ', '501 5.5.4 Authentication aborted'] },
    { name: 'AUTH PLAIN then an empty response', at: 'ehlo', send: [l('AUTH PLAIN'), l('')], expect: ['334 ', INVALID_USERDATA] },
    { name: 'AUTH PLAIN then 14 KiB of base64 as the response', at: 'ehlo', send: [l('AUTH PLAIN'), l(b64(Buffer.alloc(11_000, 'z')))], expect: ['334 ', INVALID_USERDATA] },
    { name: 'AUTH LOGIN then junk as the user name', at: 'ehlo', send: [l('AUTH LOGIN'), l('@@@')], expect: ['334 VXNlcm5hbWU6', '501 5.5.4 Error: missing username'] },
    { name: 'AUTH LOGIN then * (cancel)', at: 'ehlo', send: [l('AUTH LOGIN'), l('*')], expect: ['334 VXNlcm5hbWU6', '501 5.5.4 Authentication aborted'] },
    { name: 'AUTH LOGIN with a wrong password', at: 'ehlo', send: [l(`AUTH LOGIN ${b64(user)}`), l(b64('wrong'))], expect: ['334 UGFzc3dvcmQ6', AUTH_INVALID] },
    { name: 'AUTH LOGIN with 10 KiB of base64 as the password', at: 'ehlo', send: [l(`AUTH LOGIN ${b64('someone')}`), l(b64(Buffer.alloc(10_000, 'q')))], expect: ['334 UGFzc3dvcmQ6', AUTH_INVALID] },
    { name: 'AUTH with no mechanism', at: 'ehlo', send: [l('AUTH')], expect: ['504 5.5.4 Error: Unrecognized authentication type'] },
    { name: 'AUTH CRAM-MD5 (not offered)', at: 'ehlo', send: [l('AUTH CRAM-MD5')], expect: ['504 5.5.4 Error: Unrecognized authentication type'] },
    { name: 'AUTH XOAUTH2 (not offered)', at: 'ehlo', send: [l('AUTH XOAUTH2 dXNlcj1h')], expect: ['504 5.5.4 Error: Unrecognized authentication type'] },
    { name: 'AUTH with a 1,000-character mechanism name', at: 'ehlo', send: [l(`AUTH ${'M'.repeat(1_000)}`)], expect: ['504 5.5.4 Error: Unrecognized authentication type'] },
    { name: 'AUTH PLAIN in lower case with the right password works', at: 'ehlo', send: [l(`auth plain ${b64(`\0${user}\0${pass}`)}`)], expect: ['235 2.7.0 Authentication successful'] },

    // ---- unknown and unusual commands
    { name: 'an unknown command', at: 'ehlo', send: [l('FROBNICATE now')], expect: [UNKNOWN] },
    { name: 'EXPN', at: 'ehlo', send: [l('EXPN staff')], expect: [UNKNOWN] },
    { name: 'TURN', at: 'ehlo', send: [l('TURN')], expect: [UNKNOWN] },
    { name: 'ETRN', at: 'ehlo', send: [l('ETRN example.test')], expect: [UNKNOWN] },
    { name: 'ATRN', at: 'ehlo', send: [l('ATRN')], expect: [UNKNOWN] },
    { name: 'VRFY discloses nothing', at: 'ehlo', send: [l('VRFY root')], expect: ['252 2.1.5 Try to send something. No promises though'] },
    { name: 'HELP', at: 'ehlo', send: [l('HELP')], expect: ['214 2.0.0 See https://tools.ietf.org/html/rfc5321 for details'] },
    { name: 'an empty line', at: 'ehlo', send: [l('')], expect: [UNKNOWN] },
    { name: 'a line of spaces and tabs', at: 'ehlo', send: [l('  \t  ')], expect: [UNKNOWN] },
    { name: 'a tab instead of a space after EHLO', at: 'greeting', send: [l('EHLO\tclient.test')], expect: [UNKNOWN] },
    { name: 'EHLO without a name', at: 'greeting', send: [l('EHLO')], expect: ['501 Error: syntax: EHLO hostname'] },
    { name: 'EHLO with three words', at: 'greeting', send: [l('EHLO a b c')], expect: ['501 Error: syntax: EHLO hostname'] },
    { name: 'HELO without a name', at: 'greeting', send: [l('HELO')], expect: ['501 Error: Syntax: HELO hostname'] },
    { name: 'MAIL without FROM', at: 'auth', send: [l('MAIL')], expect: [BAD_SENDER] },
    { name: 'MAIL FROM without a colon', at: 'auth', send: [l(`MAIL FROM ${FROM}`)], expect: [BAD_SENDER] },
    { name: 'MAIL FROM without angle brackets', at: 'auth', send: [l(`MAIL FROM:${FROM}`)], expect: [BAD_SENDER] },
    { name: 'MAIL FROM with nested angle brackets', at: 'auth', send: [l(`MAIL FROM:<<${FROM}>>`)], expect: [BAD_SENDER] },
    { name: 'RCPT TO with an empty address', at: 'mail', send: [l('RCPT TO:<>')], expect: [BAD_RCPT] },
    { name: 'RCPT TO with no address at all', at: 'mail', send: [l('RCPT TO:')], expect: [BAD_RCPT] },
    { name: 'RCPT TO with a comma list', at: 'mail', send: [l('RCPT TO:<a@dest.test>,<b@dest.test>')], expect: [BAD_RCPT] },
    { name: 'MAIL FROM:<> (null sender)', at: 'auth', send: [l('MAIL FROM:<>')], expect: ['550 5.7.1 A null envelope sender is not allowed; use an address in your sending domain'] },
    { name: 'MAIL with SIZE=abc', at: 'auth', send: [l(`MAIL FROM:<${FROM}> SIZE=abc`)], expect: ['501 5.5.4 Error: Bad message size syntax'] },
    { name: 'MAIL with SIZE=-1', at: 'auth', send: [l(`MAIL FROM:<${FROM}> SIZE=-1`)], expect: ['501 5.5.4 Error: Bad message size syntax'] },
    { name: 'MAIL with a 30-digit SIZE', at: 'auth', send: [l(`MAIL FROM:<${FROM}> SIZE=${'9'.repeat(30)}`)], expect: ['501 5.5.4 Error: Bad message size syntax'] },
    { name: 'MAIL with BODY=7BITX', at: 'auth', send: [l(`MAIL FROM:<${FROM}> BODY=7BITX`)], expect: ['501 5.5.4 Invalid BODY parameter value. Must be 7BIT or 8BITMIME'] },
    { name: 'MAIL with SIZE twice', at: 'auth', send: [l(`MAIL FROM:<${FROM}> SIZE=1 SIZE=2`)], expect: ['501 5.5.4 Error: duplicate SIZE parameter'] },
    { name: 'MAIL with CR LF smuggled through xtext', at: 'auth', send: [l(`MAIL FROM:<${FROM}> ENVID=ab+0D+0AMAIL`)], expect: [BAD_SENDER] },
    { name: 'RCPT with NOTIFY=BOGUS', at: 'mail', send: [l('RCPT TO:<bob@dest.test> NOTIFY=BOGUS')], expect: [/^(250 2\.1\.5 Accepted|501 5\.5\.4 )/] },
    { name: 'a CR alone inside a command line', at: 'ehlo', send: [l('NOOP\rRSET')], expect: [UNKNOWN] },
    { name: 'commands ended by a bare LF', at: 'ehlo', send: ['NOOP\nNOOP\n'], expect: [OK, OK] },
    { name: 'smtp-server easter egg WIZ', at: 'ehlo', send: [l('WIZ')], expect: ['500 5.5.2 You are no wizard!'] },
    { name: 'smtp-server easter egg SHELL', at: 'ehlo', send: [l('SHELL')], expect: ['500 5.5.2 Mere mortals must not mutter that mantra'] },
    { name: 'smtp-server easter egg KILL', at: 'ehlo', send: [l('KILL')], expect: ['500 5.5.2 Can not kill Mom'] },
    { name: 'QUIT with an argument', at: 'ehlo', send: [l('QUIT now')], expect: ['221 2.0.0 Bye'], closes: true },
  ];
}

async function connect(): Promise<RawSmtp> {
  return rawSmtp({ port: f.t.smtpPort, timeoutMs: 5_000 });
}

/** Brings a fresh session to `stage`, each step checked. */
async function prepare(c: RawSmtp, stage: Stage): Promise<void> {
  if (stage === 'greeting') return;
  assert.match(await c.cmd('EHLO client.test'), /^250-/);
  if (stage === 'ehlo') return;
  assert.equal(await c.authPlain(user, pass), '235 2.7.0 Authentication successful');
  if (stage === 'auth') return;
  assert.equal(await c.cmd(`MAIL FROM:<${FROM}>`), MAIL_OK);
  if (stage === 'mail') return;
  assert.equal(await c.cmd('RCPT TO:<bob@dest.test>'), RCPT_OK);
}

async function waitClosed(c: RawSmtp, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  while (!c.closed() && Date.now() < end) await new Promise((r) => setTimeout(r, 10));
  return c.closed();
}

before(async () => {
  // authFailureLimit: the cases make many AUTH mistakes from 127.0.0.1 on purpose; the
  // lock-out itself is the security suite's subject.
  f = await startRelay({ smtp: { authFailureLimit: 100_000 } });
  user = f.cred.username;
  pass = f.cred.password;
});
after(async () => {
  await spare?.close();
  await f?.stop();
  report('bad input: SMTP commands', tally, startedAt);
});

describe('bad SMTP command lines get exact replies and the next client is served', () => {
  // Names are known before the credential exists; the table is built again inside each test.
  const names = cases().map((c) => c.name);
  test('the table has no duplicate names', () => assert.equal(new Set(names).size, names.length));
  names.forEach((name, i) => {
    test(name, async () => {
      const c0 = cases()[i];
      tally.tried++;
      const before = f.count();
      const c = spare ?? (await connect());
      spare = null;
      try {
        await prepare(c, c0.at);
        for (const chunk of c0.send) c.write(typeof chunk === 'string' ? Buffer.from(chunk, 'latin1') : chunk);
        for (let k = 0; k < c0.expect.length; k++) {
          let got: string;
          try {
            got = await c.reply(10_000);
          } catch (e) {
            if (isTimeout(e)) tally.hangs++;
            throw new Error(`reply ${k + 1} of ${c0.expect.length}: ${(e as Error).message}`);
          }
          const want = c0.expect[k];
          if (typeof want === 'string') assert.equal(got, want, `reply ${k + 1}`);
          else assert.match(got, want, `reply ${k + 1}`);
        }
        if (c0.closes) {
          assert.ok(await waitClosed(c, 3_000), 'the server closed the connection');
        } else {
          // Nothing more was said, and the session still works.
          await new Promise((r) => setTimeout(r, 20));
          assert.deepEqual(c.pending(), [], 'no further replies');
          const next = c0.next === undefined ? (['NOOP', OK] as [string, string]) : c0.next;
          if (next) {
            const r = await c.cmd(next[0]);
            if (typeof next[1] === 'string') assert.equal(r, next[1]);
            else assert.match(r, next[1]);
          }
        }
        assert.equal(f.count(), before + (c0.queues ?? 0), 'messages queued');
      } catch (e) {
        tally.failures.push(`${name}: ${(e as Error).message}`);
        throw e;
      } finally {
        await c.close();
      }
      // The next client is served (and then runs the next case: smtp-server holds every
      // greeting back 100 ms to catch early talkers, so connections are not free).
      try {
        const fresh = await connect();
        assert.match(fresh.greeting, /^220 relay\.test ESMTP /);
        assert.equal(await fresh.cmd('NOOP'), OK);
        spare = fresh;
      } catch (e) {
        tally.crashes++;
        throw e;
      }
    });
  });
});
