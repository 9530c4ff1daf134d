// Sign real message shapes, then verify with two independent verifiers:
// mailauth (key served by a real DNS server on loopback) and dkimpy.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import iconv from 'iconv-lite';
import { authenticate } from 'mailauth';
import { dkimRecordValue, generateDkimKey } from '../../src/dkim/keys.js';
import { SIGNED_HEADERS, dkimSignMessage, dkimSignatures, needsSimpleHeaderCanon, type SigningKey } from '../../src/dkim/sign.js';
import { isGatewayError } from '../../src/errors.js';
import { startTestDns, type TestDns, verifierResolver } from '../helpers/dns-server.js';
import { dkimpyVerify, dkimpyVerifyEach, ensureDkimpy } from '../helpers/dkimpy.js';

const DOMAIN = 'example.test';
const rsa = generateDkimKey('rsa');
const ed = generateDkimKey('ed25519');
const RSA_KEY: SigningKey = { domain: DOMAIN, selector: 'rg1', algorithm: 'rsa', privateKeyPem: rsa.privateKeyPem };
const ED_KEY: SigningKey = { domain: DOMAIN, selector: 'ed1', algorithm: 'ed25519', privateKeyPem: ed.privateKeyPem };
const RECORDS: Record<string, string> = {
  [`rg1._domainkey.${DOMAIN}`]: dkimRecordValue('rsa', rsa.publicKeyB64),
  [`ed1._domainkey.${DOMAIN}`]: dkimRecordValue('ed25519', ed.publicKeyB64),
};

// ---- message shapes (all already valid RFC 5322: CRLF, lines ≤ 998 octets) ----

type Part = string | Buffer;
const eml = (...parts: Part[]): Buffer =>
  Buffer.concat(parts.map((p) => (Buffer.isBuffer(p) ? p : Buffer.from(p, 'utf8'))));
const lines = (...ls: string[]) => ls.map((l) => `${l}\r\n`).join('');
const head = (extra: string[] = [], subject = 'Hello') =>
  lines(
    'From: App <app@example.test>',
    'To: Rcpt <rcpt@rcpt.test>',
    `Subject: ${subject}`,
    'Date: Sat, 21 Nov 2026 09:14:00 +0000',
    'Message-ID: <m1@example.test>',
    'MIME-Version: 1.0',
    ...extra,
  );
const b64Lines = (buf: Buffer) => (buf.toString('base64').match(/.{1,76}/g) ?? []).join('\r\n');
const qp = (buf: Buffer): string => {
  // Minimal quoted-printable with soft breaks so no line exceeds 76 chars.
  let out = '';
  let line = '';
  for (const byte of buf) {
    const c = byte === 0x3d || byte < 0x20 || byte > 0x7e ? `=${byte.toString(16).toUpperCase().padStart(2, '0')}` : String.fromCharCode(byte);
    if (line.length + c.length > 75) {
      out += `${line}=\r\n`;
      line = '';
    }
    line += c;
  }
  return out + line;
};
const ew = (charset: string, text: string) => `=?${charset}?B?${iconv.encode(text, charset).toString('base64')}?=`;

const SHAPES: Record<string, Buffer> = {
  'plain text, trailing whitespace and blank lines': eml(
    head(['Content-Type: text/plain; charset=us-ascii', 'Content-Transfer-Encoding: 7bit']),
    lines('', 'Hello there,  ', '\tindented line\t', '', 'Bye.', '', ''),
  ),
  'multipart/alternative, quoted-printable, List-Unsubscribe': eml(
    head([
      'List-Unsubscribe: <https://t.example.test/u/abc>, <mailto:unsub@example.test>',
      'List-Unsubscribe-Post: List-Unsubscribe=One-Click',
      'Content-Type: multipart/alternative; boundary="b1"',
    ]),
    lines(
      '',
      '--b1',
      'Content-Type: text/plain; charset=utf-8',
      'Content-Transfer-Encoding: quoted-printable',
      '',
      qp(Buffer.from('Your order has shipped — track it here: https://example.test/t?a=1&b=2')),
      '--b1',
      'Content-Type: text/html; charset=utf-8',
      'Content-Transfer-Encoding: quoted-printable',
      '',
      qp(Buffer.from(`<html><body><p style="color:#333">Your order has shipped — ${'<a href="https://example.test/x?a=1&amp;b=2">track</a> '.repeat(8)}</p></body></html>`)),
      '--b1--',
    ),
  ),
  'multipart/mixed with base64 attachments and an inline image': eml(
    head(['Content-Type: multipart/mixed; boundary="mix"']),
    lines(
      '',
      '--mix',
      'Content-Type: text/plain; charset=us-ascii',
      '',
      'See attached.',
      '--mix',
      'Content-Type: application/pdf; name="invoice.pdf"',
      'Content-Disposition: attachment; filename="invoice.pdf"',
      'Content-Transfer-Encoding: base64',
      '',
      b64Lines(randomBytes(3000)),
      '--mix',
      'Content-Type: image/png',
      'Content-ID: <logo@example.test>',
      'Content-Disposition: inline',
      'Content-Transfer-Encoding: base64',
      '',
      b64Lines(randomBytes(700)),
      '--mix--',
    ),
  ),
  'GB2312 base64 body, RFC 2047 GB2312 subject': eml(
    head(['Content-Type: text/plain; charset=GB2312', 'Content-Transfer-Encoding: base64'], ew('GB2312', '您的订单已发货')),
    lines('', b64Lines(iconv.encode('您好，\r\n您的订单已发货，请查收。\r\n', 'gb2312'))),
  ),
  'GBK quoted-printable body, RFC 2047 GBK display name': eml(
    lines(`From: ${ew('GBK', '北京商店')} <app@example.test>`),
    head(['Content-Type: text/plain; charset=GBK', 'Content-Transfer-Encoding: quoted-printable']).replace(/^From: .*\r\n/, ''),
    lines('', qp(iconv.encode('欢迎光临！我们的新品已上架，錕斤拷。', 'gbk'))),
  ),
  'ISO-8859-1 8bit body with raw high bytes': eml(
    head(['Content-Type: text/plain; charset=ISO-8859-1', 'Content-Transfer-Encoding: 8bit'], '=?ISO-8859-1?Q?Gr=FC=DFe_aus_K=F6ln?='),
    '\r\n',
    iconv.encode('Grüße aus Köln, à\u00a0bientôt ½ ©\r\n', 'latin1'), // 0xA0: NBSP is not WSP
  ),
  'a >998-octet paragraph as QP soft breaks; folded long headers': eml(
    head(
      [
        'Cc: ' + Array.from({ length: 30 }, (_, i) => `user${i}@rcpt.test`).join(',\r\n\t'),
        'Content-Type: text/plain; charset=utf-8',
        'Content-Transfer-Encoding: quoted-printable',
      ],
      Array.from({ length: 6 }, () => ew('UTF-8', 'Überlange Betreffzeile — ')).join('\r\n '),
    ),
    lines('', qp(Buffer.from('lorem ipsum dolor sit amet, '.repeat(120)))),
  ),
  'raw UTF-8 headers (SMTPUTF8) and odd header-name case/spacing': eml(
    lines(
      'FROM: App   <app@example.test>',
      'to:Rcpt <rcpt@rcpt.test>',
      'subject:   héllo   你好  ',
      'Date: Sat, 21 Nov 2026 09:14:00 +0000',
      'Message-Id: <m2@example.test>',
      'X-Not-Signed: changes in transit are fine',
      'content-type: text/plain;\r\n charset=utf-8',
      '',
      'Grüße — 你好',
    ),
  ),
};

// ---- DNS + verifiers ----

let dns: TestDns;
let resolve: (name: string, type: string) => Promise<unknown>;

before(async () => {
  dns = await startTestDns();
  for (const [name, value] of Object.entries(RECORDS)) dns.set(name, [{ type: 'TXT', data: value }]);
  resolve = verifierResolver(dns.server);
  await ensureDkimpy();
});
after(() => dns.close());

async function mailauthDkim(signed: Buffer) {
  const res = await authenticate(signed, {
    ip: '127.0.0.1',
    helo: 'client.test',
    sender: `app@${DOMAIN}`,
    mta: 'mx.test',
    resolver: resolve as never,
    disableArc: true,
    disableBimi: true,
  });
  return res.dkim.results.map((r) => ({ result: r.status.result, selector: r.selector }));
}

const signedHeaders = (signed: Buffer): string[][] =>
  [...signed.toString('latin1').matchAll(/^DKIM-Signature:[\s\S]*?\bh=([^;]+);/gm)].map((m) =>
    m[1].split(':').map((h) => h.trim().toLowerCase()),
  );

describe('dual RSA + ed25519 signatures on each message shape', () => {
  for (const [name, message] of Object.entries(SHAPES)) {
    test(name, async () => {
      const signed = await dkimSignMessage(message, [RSA_KEY, ED_KEY]);
      assert.ok(signed.subarray(signed.length - message.length).equals(message), 'original bytes follow the signatures');
      const ma = await mailauthDkim(signed);
      assert.deepEqual(
        ma.map((r) => [r.selector, r.result]).sort(),
        [['ed1', 'pass'], ['rg1', 'pass']],
      );
      const py = await dkimpyVerifyEach(signed, RECORDS);
      assert.deepEqual(py, [{ ok: true, error: null }, { ok: true, error: null }]);
    });
  }
});

describe('single-key signatures and tampering (dkimpy)', () => {
  const message = SHAPES['multipart/alternative, quoted-printable, List-Unsubscribe'];
  for (const key of [RSA_KEY, ED_KEY]) {
    test(`${key.algorithm}: valid, then invalid after one body byte changes`, async () => {
      const signed = await dkimSignMessage(message, [key]);
      assert.match(signed.toString('latin1'), new RegExp(`a=${key.algorithm}-sha256;`));
      assert.equal(await dkimpyVerify(signed, RECORDS), true);
      const [ma] = await mailauthDkim(signed);
      assert.equal(ma.result, 'pass');

      const tampered = Buffer.from(signed);
      const at = tampered.indexOf('track it here');
      assert.ok(at > 0);
      tampered[at] = 'T'.charCodeAt(0);
      assert.equal(await dkimpyVerify(tampered, RECORDS), false);
      const [mt] = await mailauthDkim(tampered);
      assert.notEqual(mt.result, 'pass');
    });
  }

  test('a changed signed header breaks the signature; an unsigned one does not', async () => {
    const signed = await dkimSignMessage(SHAPES['raw UTF-8 headers (SMTPUTF8) and odd header-name case/spacing'], [RSA_KEY]);
    const text = signed.toString('utf8');
    const unsignedChange = Buffer.from(text.replace('changes in transit are fine', 'changed'), 'utf8');
    assert.equal(await dkimpyVerify(unsignedChange, RECORDS), true);
    const signedChange = Buffer.from(text.replace('héllo', 'hallo'), 'utf8');
    assert.equal(await dkimpyVerify(signedChange, RECORDS), false);
  });

  test('a key not published under the selector fails', async () => {
    const other = generateDkimKey('rsa');
    const signed = await dkimSignMessage(message, [{ ...RSA_KEY, privateKeyPem: other.privateKeyPem }]);
    assert.equal(await dkimpyVerify(signed, RECORDS), false);
    const [ma] = await mailauthDkim(signed);
    assert.notEqual(ma.result, 'pass');
  });
});

describe('signature time', () => {
  // mailauth used to read the clock once for the t= it signed and again for
  // the t= it wrote; a second boundary in between gave a signature that no
  // verifier accepted (seen as a rare Ed25519 `fail` on a loaded machine).
  for (const key of [RSA_KEY, ED_KEY]) {
    test(`${key.algorithm}: a clock that ticks into the next second while signing still verifies`, async () => {
      const realNow = Date.now;
      let now = Math.floor(realNow() / 1000) * 1000 + 400;
      Date.now = () => (now += 700); // every read lands in a later second
      let signed: Buffer;
      try {
        signed = await dkimSignMessage(SHAPES['GBK quoted-printable body, RFC 2047 GBK display name'], [key]);
      } finally {
        Date.now = realNow;
      }
      const t = /\bt=(\d+);/.exec(signed.toString('latin1'));
      assert.ok(t, 'the signature carries a t= tag');
      assert.ok(Math.abs(Number(t[1]) - realNow() / 1000) < 600, 't= is the signing time');
      assert.equal(await dkimpyVerify(signed, RECORDS), true);
      const [ma] = await mailauthDkim(signed);
      assert.equal(ma.result, 'pass');
    });
  }
});

describe('signed header list', () => {
  test('h= holds exactly the SPEC §5 headers that are present', async () => {
    const message = eml(
      head([
        'Reply-To: support@example.test',
        'X-Mailer: test',
        'List-Unsubscribe: <https://t.example.test/u/abc>',
        'List-Unsubscribe-Post: List-Unsubscribe=One-Click',
        'Content-Type: text/plain',
      ]),
      lines('', 'body'),
    );
    const signed = await dkimSignMessage(message, [RSA_KEY]);
    const [h] = signedHeaders(signed);
    const expected = SIGNED_HEADERS.map((x) => x.toLowerCase()).filter((x) => x !== 'cc');
    assert.deepEqual([...h].sort(), [...expected].sort());
    assert.ok(!h.includes('reply-to') && !h.includes('x-mailer'));
  });

  test('two keys give two DKIM-Signature headers, each with its own selector and algorithm', async () => {
    const sigs = await dkimSignatures(SHAPES['plain text, trailing whitespace and blank lines'], [RSA_KEY, ED_KEY]);
    assert.ok(sigs.endsWith('\r\n'));
    const blocks = sigs.split(/\r\n(?=DKIM-Signature:)/);
    assert.equal(blocks.length, 2);
    assert.match(blocks[0], /a=rsa-sha256;[\s\S]*s=rg1;/);
    assert.match(blocks[1], /a=ed25519-sha256;[\s\S]*s=ed1;/);
    assert.match(sigs, /c=relaxed\/relaxed;/);
  });
});

describe('header canonicalization fallback for bytes mailauth misreads as whitespace', () => {
  const withSubject = (subject: string, extra: string[] = []) =>
    eml(head(['Content-Type: text/plain; charset=utf-8', ...extra], subject), lines('', 'body'));

  test('needsSimpleHeaderCanon looks only at signed headers', () => {
    assert.equal(needsSimpleHeaderCanon(withSubject('plain ascii')), false);
    assert.equal(needsSimpleHeaderCanon(withSubject('héllo')), false); // C3 A9: no 0xA0
    assert.equal(needsSimpleHeaderCanon(withSubject('voilà')), true); // C3 A0
    assert.equal(needsSimpleHeaderCanon(withSubject('folded\r\n 你好')), true); // E4 BD A0, on a continuation line
    assert.equal(needsSimpleHeaderCanon(withSubject('ascii', ['X-Note: voilà'])), false);
    assert.equal(needsSimpleHeaderCanon(eml(head([], 'x'), lines('', 'body voilà'))), false);
  });

  test('ASCII headers are signed relaxed/relaxed', async () => {
    const signed = await dkimSignMessage(withSubject('plain', ['X-Note: voilà']), [RSA_KEY]);
    assert.match(signed.toString('latin1'), /c=relaxed\/relaxed;/);
  });

  for (const key of [RSA_KEY, ED_KEY]) {
    test(`${key.algorithm}: a raw UTF-8 subject holding 0xA0 is signed simple/relaxed and verifies everywhere`, async () => {
      const signed = await dkimSignMessage(withSubject('voilà — 你好'), [key]);
      assert.match(signed.toString('latin1'), /c=simple\/relaxed;/);
      assert.equal(await dkimpyVerify(signed, RECORDS), true);
      const [ma] = await mailauthDkim(signed);
      assert.equal(ma.result, 'pass');
    });
  }
});

describe('failures never produce unsigned output', () => {
  const message = SHAPES['plain text, trailing whitespace and blank lines'];
  const rejectsWith = async (keys: SigningKey[], re: RegExp) => {
    await assert.rejects(dkimSignMessage(message, keys), (err: unknown) => {
      assert.ok(isGatewayError(err), 'GatewayError');
      assert.equal(err.code, 'dkim_sign_failed');
      assert.equal(err.smtp, 451);
      assert.match(err.message, re);
      return true;
    });
  };

  test('garbage private key', () => rejectsWith([{ ...RSA_KEY, privateKeyPem: 'not a key' }], /rg1\._domainkey\.example\.test/));
  test('RSA key declared as ed25519', () => rejectsWith([{ ...RSA_KEY, algorithm: 'ed25519' }], /Invalid key type/));
  test('one bad key among good ones still fails the whole message', () =>
    rejectsWith([RSA_KEY, { ...ED_KEY, privateKeyPem: rsa.privateKeyPem }], /ed1\._domainkey/));
  test('unknown algorithm', () => rejectsWith([{ ...RSA_KEY, algorithm: 'dsa' as never }], /unsupported DKIM algorithm/));
  test('no keys: the message comes back unchanged (the caller decided not to sign)', async () => {
    assert.equal(await dkimSignMessage(message, []), message);
  });
});
