// Bad MIME and HTML over SMTP (issue 6, part 3): broken or missing boundaries,
// 100-level nesting, a 1 MB header, unknown charsets, invalid base64/QP, missing
// final boundaries, 8-bit headers, and HTML that breaks parsers. Each message is
// accepted or refused with an exact reply, never crashes or hangs the gateway;
// what is accepted is delivered once, with no bare CR or LF, its header block and
// every non-HTML part byte for byte, and exactly the expected number of tracked
// links. A fresh client is served after every case.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startMxSink, type MxSink } from '../helpers/gateway.js';
import { openTransaction, rawSmtp } from '../helpers/raw-smtp.js';
import { DOMAIN, startRelay, type RelayFixture } from '../helpers/relay.js';
import { bareLineBreaks, isTimeout, newTally, report } from './tally.js';

interface MimeCase {
  name: string;
  /** Header fields after From/To/Subject/MIME-Version (each ending CRLF), and the body. */
  headers: string | Buffer;
  body: string | Buffer;
  /** The whole body must arrive unchanged (no HTML part that we rewrite). */
  same?: boolean;
  /** Chunks (non-HTML parts) that must arrive verbatim. */
  keep?: (string | Buffer)[];
  /** How many links must come out rewritten to /t/c/ (default: not checked). */
  clicks?: number;
  /** Exact refusal instead of a 250. */
  refuse?: string;
  /** More checks on the delivered bytes. */
  check?: (delivered: string) => void;
}

const buf = (s: string | Buffer) => (typeof s === 'string' ? Buffer.from(s, 'latin1') : s);
const bytes = (...parts: (string | number[])[]) => Buffer.concat(parts.map((p) => (typeof p === 'string' ? Buffer.from(p, 'latin1') : Buffer.from(p))));
const part = (headers: string, body: string) => `${headers}\r\n${body}`;
/** A multipart body: parts joined by `--b` lines, closed unless `open`. */
function multipart(b: string, parts: string[], o: { open?: boolean; preamble?: string; epilogue?: string } = {}): string {
  return `${o.preamble ?? ''}${parts.map((p) => `--${b}\r\n${p}`).join('\r\n')}\r\n${o.open ? '' : `--${b}--\r\n${o.epilogue ?? ''}`}`;
}
const ct = (type: string) => `Content-Type: ${type}\r\n`;
const HTML = ct('text/html; charset=utf-8');
const TEXT = ct('text/plain; charset=utf-8');
const link = (u = 'http://shop.test/offer') => `<a href="${u}">offer</a>`;
/** `depth` nested multiparts around `inner` (a whole entity: headers, blank line, body). */
function nested(depth: number, inner: string): { headers: string; body: string } {
  let entity = inner;
  for (let i = depth - 1; i >= 1; i--) entity = `${ct(`multipart/mixed; boundary="n${i}"`)}\r\n${multipart(`n${i}`, [entity])}`;
  return { headers: ct('multipart/mixed; boundary="n0"'), body: multipart('n0', [entity]) };
}

const TEXT_PART = part(TEXT, 'plain words stay exactly as they are\r\n');
const HTML_PART = part(HTML, `<html><body><p>Hi ${link()}</p></body></html>\r\n`);
const ATTACHMENT = part(`${ct('application/pdf; name="a.pdf"')}Content-Transfer-Encoding: base64\r\nContent-Disposition: attachment; filename="a.pdf"\r\n`, 'JVBERi0xLjQKJcfsj6IKNSAwIG9iago8PC9MZW5ndGggNiAwIFI+PgpzdHJlYW0K\r\n');

function cases(): MimeCase[] {
  const deep100 = nested(100, HTML_PART);
  const deep30 = nested(30, HTML_PART);
  const deep1000 = nested(1000, HTML_PART);
  return [
    // ---- boundaries
    { name: 'boundary parameter that matches no delimiter', headers: ct('multipart/mixed; boundary="abc"'), body: multipart('abd', [HTML_PART, TEXT_PART]), same: true, clicks: 0 },
    { name: 'multipart without a boundary parameter', headers: ct('multipart/mixed'), body: multipart('abc', [HTML_PART]), same: true, clicks: 0 },
    { name: 'an empty boundary', headers: ct('multipart/mixed; boundary=""'), body: multipart('', [HTML_PART]), same: true, clicks: 0 },
    { name: 'a 200-character boundary (RFC 2046 allows 70)', headers: ct(`multipart/alternative; boundary="${'b'.repeat(200)}"`), body: multipart('b'.repeat(200), [TEXT_PART, HTML_PART]), keep: [TEXT_PART], clicks: 1 },
    { name: 'a boundary full of specials', headers: ct('multipart/alternative; boundary="=_?:()<>@,;\\"/[]x"'), body: multipart('=_?:()<>@,;"/[]x', [TEXT_PART, HTML_PART]), keep: [TEXT_PART] },
    { name: 'the missing final boundary (text and html)', headers: ct('multipart/alternative; boundary="q"'), body: multipart('q', [TEXT_PART, HTML_PART], { open: true }), keep: [TEXT_PART], clicks: 1 },
    { name: 'the missing final boundary (text only)', headers: ct('multipart/mixed; boundary="q"'), body: multipart('q', [TEXT_PART, ATTACHMENT], { open: true }), same: true },
    { name: 'a delimiter look-alike in the preamble', headers: ct('multipart/mixed; boundary="z"'), body: multipart('z', [HTML_PART, TEXT_PART], { preamble: 'preamble --z is not a delimiter\r\n', epilogue: 'epilogue --z--\r\n' }), keep: ['preamble --z is not a delimiter\r\n', TEXT_PART, 'epilogue --z--\r\n'], clicks: 1 },
    { name: 'a delimiter with trailing junk (a longer boundary)', headers: ct('multipart/mixed; boundary="z"'), body: `--zz\r\n${HTML_PART}\r\n--z\r\n${TEXT_PART}\r\n--z--\r\n`, keep: [`--zz\r\n${HTML_PART}`], clicks: 0 },
    { name: 'parts with no header block', headers: ct('multipart/mixed; boundary="h"'), body: multipart('h', ['\r\nno headers at all\r\n', '\r\n<a href="http://x.test/">x</a>\r\n']), same: true, clicks: 0 },
    { name: 'a part whose header block never ends', headers: ct('multipart/mixed; boundary="h"'), body: multipart('h', [`${HTML}X-A: 1\r\nX-B: 2`]), same: true, clicks: 0 },
    { name: '10,000 empty parts', headers: ct('multipart/mixed; boundary="m"'), body: multipart('m', Array(10_000).fill(part(TEXT, 'x'))), same: true },
    { name: '300 HTML parts of one link each', headers: ct('multipart/mixed; boundary="m"'), body: multipart('m', Array(300).fill(part(HTML, link()))), clicks: 300 },

    // ---- nesting
    { name: '100 levels of multipart nesting (HTML at the bottom is left alone)', headers: deep100.headers, body: deep100.body, same: true, clicks: 0 },
    { name: '1,000 levels of multipart nesting', headers: deep1000.headers, body: deep1000.body, same: true, clicks: 0 },
    { name: '30 levels of nesting (HTML at the bottom is tracked)', headers: deep30.headers, body: deep30.body, clicks: 1 },
    { name: 'message/rfc822 holding HTML is someone else’s message', headers: ct('multipart/mixed; boundary="r"'), body: multipart('r', [part(ct('message/rfc822'), `From: x@y.test\r\n${HTML}\r\n${link()}\r\n`)]), same: true, clicks: 0 },

    // ---- huge headers
    { name: 'a 1 MB header line', headers: `X-Big: ${'a'.repeat(1_000_000)}\r\n${TEXT}`, body: 'hi\r\n', same: true },
    // Refused: the DKIM signer's header parser is quadratic in continuation lines (see submit.ts).
    { name: 'a 1 MB header folded over 20,000 lines', headers: `X-Big: ${Array.from({ length: 20_000 }, () => 'a'.repeat(48)).join('\r\n ')}\r\n${TEXT}`, body: 'hi\r\n', refuse: '552 5.3.4 Message header exceeds 10000 lines' },
    { name: 'a header folded 9,000 times', headers: `X-Big: ${Array.from({ length: 9_000 }, () => 'a'.repeat(48)).join('\r\n ')}\r\n${TEXT}`, body: 'hi\r\n', same: true },
    { name: '200,000 header lines without a blank line', headers: `${TEXT}${'X-A: 1\r\n'.repeat(200_000)}X-Last: 1`, body: '', refuse: '552 5.3.4 Message header exceeds 10000 lines' },
    { name: '5,000 header fields', headers: `${Array.from({ length: 5_000 }, (_, i) => `X-H${i}: v${i}\r\n`).join('')}${HTML}`, body: `${link()}\r\n`, clicks: 1 },
    { name: 'header lines without a colon', headers: `this is not a header\r\n: no name\r\n${TEXT}`, body: 'hi\r\n', same: true },
    { name: 'a header block that never ends (no body)', headers: `${TEXT}X-Last: 1`, body: '', check: (d) => assert.match(d, /X-Last: 1\r\n(\r\n)?$/) },
    { name: 'Content-Type twice (html, then text)', headers: `${HTML}${TEXT}`, body: `${link()}\r\n` },
    { name: 'a garbage Content-Type', headers: ct(';;;==;"'), body: `${link()}\r\n`, same: true },
    { name: 'an RFC 2231 charset with bad percent-encoding', headers: ct("text/html; charset*=''%ZZ%"), body: `${link()}\r\n`, clicks: 1 },

    // ---- charsets
    { name: 'an unknown charset on text/plain', headers: ct('text/plain; charset=x-klingon'), body: 'qapla\xe9\r\n', same: true },
    { name: 'an unknown charset on text/html with an 8-bit href', headers: ct('text/html; charset=x-klingon'), body: `${link('http://x.test/caf\xe9')}\r\n`, clicks: 1 },
    { name: 'charset=utf-16 on ASCII bytes', headers: ct('text/html; charset=utf-16'), body: `${link()}\r\n` },
    { name: 'UTF-16LE HTML with an odd byte count', headers: ct('text/html; charset=utf-16le'), body: Buffer.concat([Buffer.from(`${link()}`, 'utf16le'), Buffer.from([0x41, 13, 10])]) },
    { name: 'charset=utf-7', headers: ct('text/html; charset=utf-7'), body: `+ADw-a href+AD0AIg-http://x.test/+ACI-+AD4-x+ADw-/a+AD4-\r\n` },
    { name: 'ISO-2022-JP HTML (no codec) is left alone', headers: ct('text/html; charset=iso-2022-jp'), body: `\x1b$B$3$s\x1b(B ${link()}\r\n`, same: true, clicks: 0 },
    { name: 'invalid UTF-8 around a link', headers: HTML, body: bytes([0xff, 0xfe, 0xc3], ` ${link()} `, [0xe2, 0x82], '\r\n'), clicks: 1, check: (d) => assert.ok(d.includes('\xff\xfe\xc3 <a href="http')) },
    { name: 'a UTF-8 BOM before the HTML', headers: HTML, body: bytes([0xef, 0xbb, 0xbf], `${link()}\r\n`), clicks: 1 },

    // ---- transfer encodings
    { name: 'invalid base64 in an attachment', headers: ct('multipart/mixed; boundary="e"'), body: multipart('e', [part(`${ct('application/octet-stream')}Content-Transfer-Encoding: base64\r\n`, '!!!! not base64 @@@@\r\n')]), same: true },
    { name: 'invalid base64 in the HTML part is left as sent', headers: `${HTML}Content-Transfer-Encoding: base64\r\n`, body: '!!!!not base64 at all@@@@\r\n', same: true, clicks: 0 },
    { name: 'base64 HTML of impossible length', headers: `${HTML}Content-Transfer-Encoding: base64\r\n`, body: 'PGEgaHJlZj0iaHR0cDovL3gudGVzdC8iPng8L2E+P\r\n', same: true, clicks: 0 },
    {
      name: 'valid base64 HTML is tracked',
      headers: `${HTML}Content-Transfer-Encoding: base64\r\n`,
      body: `${Buffer.from(link()).toString('base64')}\r\n`,
      check: (d) => assert.match(Buffer.from(d.slice(d.lastIndexOf('\r\n\r\n')), 'base64').toString(), /^<a href="http:\/\/127\.0\.0\.1:\d+\/t\/c\/[\w-]{22}">offer<\/a><img /),
    },
    { name: 'invalid quoted-printable in text/plain', headers: `${TEXT}Content-Transfer-Encoding: quoted-printable\r\n`, body: 'a=ZZ b= c=4\r\n=\r\n', same: true },
    { name: 'invalid quoted-printable in HTML', headers: `${HTML}Content-Transfer-Encoding: quoted-printable\r\n`, body: '<a href=3D"http://x.test/=ZZ">x=\r\n=\r\n=4</a>=\r\n', clicks: 1 },
    { name: 'an unknown transfer encoding on HTML', headers: `${HTML}Content-Transfer-Encoding: x-gzip\r\n`, body: `${link()}\r\n`, same: true, clicks: 0 },
    { name: 'x-uuencode HTML', headers: `${HTML}Content-Transfer-Encoding: x-uuencode\r\n`, body: 'begin 644 a.html\r\n`\r\nend\r\n', same: true, clicks: 0 },
    { name: '8-bit text under Content-Transfer-Encoding: 7bit', headers: `${TEXT}Content-Transfer-Encoding: 7bit\r\n`, body: 'caf\xe9 na\xefve\r\n', same: true },
    { name: 'NUL bytes in a text body', headers: TEXT, body: 'nul\0here\0\r\n', same: true },
    { name: 'a 2 MB line in a text body', headers: TEXT, body: `${'y'.repeat(2_000_000)}\r\n`, same: true },
    { name: 'an HTML attachment is not the body', headers: ct('multipart/mixed; boundary="a"'), body: multipart('a', [TEXT_PART, part(`${HTML}Content-Disposition: attachment; filename="page.html"\r\n`, link())]), same: true, clicks: 0 },
    { name: 'text, html and a PDF: only the html changes', headers: ct('multipart/mixed; boundary="x1"'), body: multipart('x1', [`${ct('multipart/alternative; boundary="x2"')}\r\n${multipart('x2', [TEXT_PART, HTML_PART])}`, ATTACHMENT]), keep: [TEXT_PART, ATTACHMENT], clicks: 1 },

    // ---- 8-bit headers
    { name: '8-bit bytes in a header value', headers: bytes('X-Latin: ', [0xe9, 0xff, 0x80, 0xc3], `\r\n${TEXT}`), body: 'hi\r\n', same: true },
    { name: '8-bit bytes in a header name', headers: bytes('X-', [0xe9, 0xe9], `: v\r\n${TEXT}`), body: 'hi\r\n', same: true },
    { name: 'invalid UTF-8 in the Subject (a second Subject)', headers: bytes('Subject: caf', [0xe9, 0xfe], `\r\n${TEXT}`), body: 'hi\r\n', same: true },
    { name: 'NUL in a header value', headers: `X-Nul: a\0b\r\n${TEXT}`, body: 'hi\r\n', same: true },
    { name: 'an 8-bit display name in Cc', headers: bytes('Cc: J', [0xf6], `rg <j@dest.test>\r\n${TEXT}`), body: 'hi\r\n', same: true },

    // ---- refusals
    { name: 'no header at all', headers: '', body: 'just a body line\r\n', refuse: '550 5.6.0 Message has no From header' },

    // ---- HTML that breaks parsers
    { name: 'unclosed tags everywhere', headers: HTML, body: `<html><body><div><table><tr><td>${link()}<p><b><i>\r\n`, clicks: 1 },
    { name: '<a href= at the end of the part', headers: HTML, body: '<html><body><a href=', clicks: 0 },
    { name: '<a href=" with an unterminated value at the end', headers: HTML, body: '<html><body><a href="http://x.test/', clicks: 0 },
    { name: 'a 500 KB attribute', headers: HTML, body: `<a title="${'t'.repeat(500_000)}" href="http://x.test/">x</a>\r\n`, clicks: 1 },
    // Over MAX_TRACKED_URL: left untracked, since its redirect would need a 300 KB Location header.
    { name: 'a 300 KB href', headers: HTML, body: `<a href="http://x.test/${'p'.repeat(300_000)}">x</a>\r\n`, clicks: 0 },
    { name: '10,000 attributes on one tag', headers: HTML, body: `<a ${Array.from({ length: 10_000 }, (_, i) => `d${i}="${i}"`).join(' ')} href="http://x.test/">x</a>\r\n`, clicks: 1 },
    { name: 'nested comments', headers: HTML, body: '<!-- a <!-- b <a href="http://in.test/">x</a> --> <a href="http://out.test/">y</a> -->\r\n', clicks: 1 },
    { name: 'an unterminated comment', headers: HTML, body: `<p>before</p><!-- ${link()}\r\n`, clicks: 0 },
    { name: 'MSO conditional comments', headers: HTML, body: `<!--[if mso]>${link('http://mso.test/')}<![endif]--><!--[if !mso]><!-->${link()}<!--<![endif]-->\r\n` },
    { name: 'a link inside a script string', headers: HTML, body: `<script>var s = '${link()}';</script>\r\n`, clicks: 0 },
    { name: '</body> inside a style element', headers: HTML, body: `<style>/* </body> */</style>${link()}</body>\r\n`, clicks: 1 },
    { name: 'a link inside a textarea', headers: HTML, body: `<textarea>${link()}</textarea>\r\n`, clicks: 0 },
    { name: 'CDATA in HTML', headers: HTML, body: `<![CDATA[ ${link()} ]]>\r\n` },
    { name: '50,000 nested divs', headers: HTML, body: `${'<div>'.repeat(50_000)}${link()}</body>\r\n`, clicks: 1 },
    { name: '5,000 links', headers: HTML, body: `${Array.from({ length: 5_000 }, (_, i) => link(`http://x.test/${i}`)).join('\r\n')}</body>\r\n`, clicks: 5_000 },
    { name: 'a 100 KB line of links (re-encoded as quoted-printable)', headers: HTML, body: `${Array.from({ length: 2_000 }, (_, i) => link(`http://x.test/${i}`)).join(' ')}\r\n`, clicks: 2_000, check: (d) => assert.match(d, /Content-Transfer-Encoding: quoted-printable/) },
    { name: 'NUL and control bytes inside an href', headers: HTML, body: '<a href="http://x.test/\0\x02\x7f">x</a></body>\r\n', clicks: 1 },
    { name: 'the tracker’s own placeholder bytes in the HTML are left alone', headers: HTML, body: '<a href="http://x.test/">\x01c0\x01</a> \x01o\x01 \x01u\x01 \x01c99\x01</body>\r\n', same: true, clicks: 0 },
    { name: 'broken entities in an href', headers: HTML, body: '<a href="http://x.test/?a=1&amp&b=&#xZZ;&#99999999;">x</a>\r\n', clicks: 1 },
    { name: 'href with no value, empty, blank, javascript:, data:, mailto:', headers: HTML, body: '<a href>a</a><a href="">b</a><a href="   ">c</a><a href="javascript:alert(1)">d</a><a href="data:text/html,x">e</a><a href="mailto:a@b.test">f</a>\r\n', clicks: 0 },
    { name: 'two href attributes on one link', headers: HTML, body: '<a href="http://first.test/" href="http://second.test/">x</a>\r\n' },
    { name: 'an upper-case unquoted HREF', headers: HTML, body: '<A HREF=HTTP://X.TEST/A>x</A>\r\n', clicks: 1 },
    { name: 'relative links under <base href>', headers: HTML, body: '<base href="http://evil.test/"><a href="/path">x</a><a href="page.html">y</a>\r\n', clicks: 0 },
    { name: 'tab, CR and LF inside an href value', headers: HTML, body: '<a href="ht\ttp://x.test/a\r\nb">x</a>\r\n', clicks: 1 },
    { name: '1,000 </body> tags', headers: HTML, body: `${link()}${'</body>'.repeat(1_000)}\r\n`, clicks: 1 },
    { name: 'an SVG link', headers: HTML, body: '<svg><a xlink:href="http://x.test/"><text>x</text></a></svg>\r\n' },
    { name: '> and quotes inside unquoted attribute values', headers: HTML, body: '<a title=a"b\'c href=http://x.test/?q=">"x</a>\r\n' },
  ];
}

let f: RelayFixture;
let mx: MxSink;
const tally = newTally();
const startedAt = Date.now();

before(async () => {
  f = await startRelay({ smtp: { maxMessageSize: 10 * 1024 * 1024 } });
  f.t.dns.set('dest.test', [{ type: 'MX', exchange: 'mx.dest.test', priority: 10 }]);
  f.t.dns.set('mx.dest.test', [{ type: 'A', address: '127.0.0.61' }]);
  mx = await startMxSink('127.0.0.61', f.t.mxPort);
});
after(async () => {
  await mx?.close();
  await f?.stop();
  report('bad input: MIME and HTML', tally, startedAt);
});

/** The submitted bytes: a fixed envelope header block, the case's headers, blank line, body; CRLF-terminated. */
function build(c: MimeCase, i: number): { raw: Buffer; head: Buffer; body: Buffer } {
  const own = c.headers === '' && c.refuse ? '' : `From: app@${DOMAIN}\r\nTo: bob@dest.test\r\nSubject: bad-mime-${i}\r\nMIME-Version: 1.0\r\n`;
  const head = Buffer.concat([Buffer.from(own, 'latin1'), buf(c.headers)]);
  let body = buf(c.body);
  if (body.length && !(body.at(-2) === 13 && body.at(-1) === 10)) body = Buffer.concat([body, Buffer.from('\r\n')]);
  const raw = c.body === '' && !c.refuse ? Buffer.concat([head, Buffer.from('\r\n')]) : Buffer.concat([head, Buffer.from('\r\n'), body]);
  return { raw, head, body };
}

/** Dot-stuffing (RFC 5321 §4.5.2). */
const stuff = (raw: Buffer) => Buffer.from(raw.toString('latin1').replace(/(^|\r\n)\./g, '$1..'), 'latin1');

async function delivered(id: string, timeoutMs = 20_000): Promise<Buffer[]> {
  const marker = `Message-ID: <${id}@relay.test>\r\n`;
  const end = Date.now() + timeoutMs;
  for (;;) {
    const got = mx.received.filter((m) => m.body.includes(marker));
    const rows = f.recipients(id);
    if (got.length && rows.every((r) => r.status === 'delivered')) return got.map((m) => m.body);
    if (rows.some((r) => r.status === 'bounced' || r.status === 'expired')) throw new Error(`${id} was ${rows.map((r) => `${r.status} ${r.last_reply}`).join()}`);
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for delivery of ${id}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

describe('bad MIME and HTML are accepted or refused cleanly', { concurrency: 4 }, () => {
  const list = cases();
  test('the table has no duplicate names', () => assert.equal(new Set(list.map((c) => c.name)).size, list.length));
  list.forEach((c, i) => {
    test(c.name, async () => {
      tally.tried++;
      const { raw, head, body } = build(c, i);
      const conn = await rawSmtp({ port: f.t.smtpPort, timeoutMs: 20_000 });
      let reply: string;
      try {
        await openTransaction(conn, { auth: f.auth, from: `app@${DOMAIN}`, to: ['bob@dest.test'] });
        conn.write(stuff(raw));
        conn.write('.\r\n');
        reply = await conn.reply(30_000);
      } catch (e) {
        if (isTimeout(e)) tally.hangs++;
        tally.failures.push(`${c.name}: ${(e as Error).message}`);
        throw e;
      } finally {
        await conn.close();
      }
      try {
        const fresh = await rawSmtp({ port: f.t.smtpPort, timeoutMs: 5_000 });
        assert.match(fresh.greeting, /^220 /);
        await fresh.close();
      } catch (e) {
        tally.crashes++;
        throw e;
      }
      try {
        if (c.refuse) {
          assert.equal(reply, c.refuse);
          return;
        }
        const m = /^250 2\.0\.0 Ok: queued as (\S+)$/.exec(reply);
        assert.ok(m, `expected 250 queued, got ${reply}`);
        const copies = await delivered(m[1]);
        assert.equal(copies.length, 1, 'delivered exactly once');
        const out = copies[0];
        assert.deepEqual(bareLineBreaks(out).slice(0, 5), [], 'no bare CR or LF');
        assert.ok(out.includes(head), 'the submitted header block arrives verbatim');
        const outBody = out.subarray(out.indexOf(head) + head.length + 2);
        if (c.same) assert.ok(outBody.equals(body), 'the body arrives byte for byte');
        for (const k of c.keep ?? []) assert.ok(out.includes(buf(k)), `kept verbatim: ${buf(k).toString('latin1').slice(0, 60)}`);
        const text = out.toString('latin1');
        if (c.clicks !== undefined) {
          // Quoted-printable may split a URL across soft line breaks: count on the decoded form.
          const unfolded = text.replace(/=\r\n/g, '').replace(/=3D/g, '=');
          assert.equal((unfolded.match(/\/t\/c\/[A-Za-z0-9_-]{22}/g) ?? []).length, c.clicks, 'tracked links');
        }
        c.check?.(text);
      } catch (e) {
        tally.failures.push(`${c.name}: ${(e as Error).message}`);
        throw e;
      }
    });
  });
});
