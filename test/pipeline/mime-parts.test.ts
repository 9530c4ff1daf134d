import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import iconv from 'iconv-lite';
import { simpleParser } from 'mailparser';
import {
  parseHeaders,
  parseStructured,
  qpDecode,
  qpEncode,
  rewriteHtmlParts,
  splitHeaderBody,
  type HtmlPartContext,
} from '../../src/pipeline/mime-parts.js';
import { rewriteHtml, type TrackedLink } from '../../src/pipeline/track-rewrite.js';

const FIXTURES = new URL('../fixtures/mime/', import.meta.url);
const load = (name: string): Buffer => readFileSync(new URL(name, FIXTURES));
const PIXEL_URL = 'https://t.test/t/o/PIX';

/** The pipeline's use: rewriteHtml on each part, recording what it saw. */
function tracker(): {
  fn: (html: string, ctx: HtmlPartContext) => string;
  links: TrackedLink[][];
  contexts: HtmlPartContext[];
} {
  const links: TrackedLink[][] = [];
  const contexts: HtmlPartContext[] = [];
  const fn = (html: string, ctx: HtmlPartContext): string => {
    contexts.push(ctx);
    const r = rewriteHtml(html, {
      clicks: true,
      openPixelUrl: PIXEL_URL,
      clickUrl: ({ index }) => `https://t.test/t/c/L${index}`,
      charset: ctx.binary ? ctx.charset : undefined,
    });
    links.push(r.links);
    return r.html;
  };
  return { fn, links, contexts };
}

/** Everything before `start` and from `end` (offsets in the original) is byte-identical. */
function assertOnlyRangeChanged(orig: Buffer, out: Buffer, start: number, end: number): void {
  let pre = 0;
  while (pre < orig.length && pre < out.length && orig[pre] === out[pre]) pre++;
  let suf = 0;
  while (suf < orig.length - pre && suf < out.length - pre && orig[orig.length - 1 - suf] === out[out.length - 1 - suf]) suf++;
  assert.ok(pre >= start, `unchanged prefix reaches the html body (${pre} >= ${start})`);
  assert.ok(orig.length - suf <= end, `unchanged suffix starts at the html body end (${orig.length - suf} <= ${end})`);
}

/** [start, end) of the body following `headerTail` and ending before `delimiter`. */
function range(buf: Buffer, headerTail: string, delimiter: string | null): [number, number] {
  const h = buf.indexOf(headerTail);
  assert.ok(h >= 0, `fixture has ${headerTail}`);
  const start = h + headerTail.length;
  const end = delimiter === null ? buf.length : buf.indexOf(delimiter, start);
  assert.ok(end > start);
  return [start, end];
}

function expectedHtml(original: string, urls: string[]): string {
  let html = original;
  urls.forEach((u, i) => {
    html = html.replace(`href="${u}"`, `href="https://t.test/t/c/L${i}"`);
  });
  return html.replace(/<\/body>(?![\s\S]*<\/body>)/i, () => `<img src="${PIXEL_URL}" width="1" height="1" alt="" style="display:block;border:0;width:1px;height:1px" /></body>`);
}

function lines(buf: Buffer): string[] {
  return buf.toString('latin1').split('\r\n');
}

test('multipart/alternative, quoted-printable html: rewritten, re-encoded as QP, the rest untouched', async () => {
  const orig = load('alternative-qp.eml');
  const t = tracker();
  const r = rewriteHtmlParts(orig, t.fn);
  assert.equal(r.htmlParts, 1);
  assert.deepEqual(t.contexts, [{ charset: 'utf-8', binary: true, type: 'text/html' }]);
  assert.deepEqual(t.links[0].map((l) => l.url), [
    'https://shop.weeklyroast.example/guji?utm_source=nl&utm_medium=email',
    'https://blog.weeklyroast.example/größe?x=1',
  ]);
  const [s, e] = range(orig, 'Content-Type: text/html; charset="utf-8"\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n', '\r\n--=_alt_7f3a--');
  assertOnlyRangeChanged(orig, r.message, s, e);
  const body = r.message.subarray(s, r.message.length - (orig.length - e));
  for (const l of lines(body)) {
    assert.ok(l.length <= 76, `QP line ≤ 76: ${l}`);
    assert.ok(!/[ \t]$/.test(l), 'no trailing whitespace');
    assert.ok(!/[^\x20-\x7e]/.test(l), 'QP output is 7bit');
  }
  const before = await simpleParser(orig);
  const after = await simpleParser(r.message);
  assert.equal(after.html, expectedHtml(before.html as string, [
    'https://shop.weeklyroast.example/guji?utm_source=nl&amp;utm_medium=email',
    'https://blog.weeklyroast.example/größe?x=1',
  ]));
  assert.equal(after.text, before.text);
});

test('base64 html: re-encoded as base64 wrapped at 76 columns', async () => {
  const orig = load('alternative-base64.eml');
  const r = rewriteHtmlParts(orig, tracker().fn);
  assert.equal(r.htmlParts, 1);
  const [s, e] = range(orig, 'Content-Transfer-Encoding: base64\r\n\r\n', '\r\n--b64-boundary-01--');
  assertOnlyRangeChanged(orig, r.message, s, e);
  const body = lines(r.message.subarray(s, r.message.length - (orig.length - e)));
  assert.ok(body.length > 1);
  body.forEach((l, i) => {
    assert.match(l, /^[A-Za-z0-9+/=]+$/);
    if (i < body.length - 1) assert.equal(l.length, 76);
  });
  const before = await simpleParser(orig);
  const after = await simpleParser(r.message);
  assert.ok((after.html as string).includes('href="https://t.test/t/c/L1"'));
  assert.equal(after.html, expectedHtml(before.html as string, [
    'https://shop.weeklyroast.example/guji?utm_source=nl&amp;utm_medium=email',
    'https://blog.weeklyroast.example/größe?x=1',
  ]));
});

test('8bit html with a 1200-octet line switches to quoted-printable; only its CTE header changes', async () => {
  const orig = load('long-line-8bit.eml');
  assert.ok(lines(orig).some((l) => l.length > 1200));
  const r = rewriteHtmlParts(orig, tracker().fn);
  assert.equal(r.htmlParts, 1);
  const out = r.message.toString('latin1');
  assert.ok(lines(r.message).every((l) => l.length <= 998), 'no line over 998 octets');
  const htmlHeaders = 'Content-Type: text/html; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n';
  assert.ok(out.includes(htmlHeaders));
  assert.ok(out.includes('Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\nTsch'), 'text part keeps 8bit');
  const [s] = range(orig, 'Content-Type: text/html; charset=utf-8\r\n', null);
  assertOnlyRangeChanged(orig, r.message, s, orig.indexOf('--XyZ--'));
  const before = await simpleParser(orig);
  const after = await simpleParser(r.message);
  const urls = Array.from({ length: 24 }, (_, i) => `https://shop.example/p/${i}`);
  assert.equal(after.html, expectedHtml(before.html as string, urls));
  assert.equal(after.text, before.text);
});

test('a 7bit part without CTE header whose line grows past 998 gets one inserted', async () => {
  const orig = load('grows-past-998.eml');
  assert.ok(lines(orig).every((l) => l.length <= 998));
  const r = rewriteHtmlParts(orig, tracker().fn);
  const { header } = splitHeaderBody(r.message);
  const origHeader = splitHeaderBody(orig).header;
  assert.deepEqual(header, Buffer.concat([origHeader, Buffer.from('Content-Transfer-Encoding: quoted-printable\r\n')]));
  assert.ok(lines(r.message).every((l) => l.length <= 76));
  const after = await simpleParser(r.message);
  assert.equal((after.html as string).match(/https:\/\/t\.test\/t\/c\/L\d+/g)?.length, 26);
});

test('short lines stay in their 7bit/8bit encoding; the GB2312 part round-trips byte for byte', async () => {
  const orig = load('gb2312.eml');
  const t = tracker();
  const r = rewriteHtmlParts(orig, t.fn);
  assert.equal(r.htmlParts, 1);
  assert.deepEqual(t.contexts, [{ charset: 'gb2312', binary: true, type: 'text/html' }]);
  assert.deepEqual(t.links[0].map((l) => l.url), ['https://shop.example.cn/活动/秋季?来源=邮件&期=12', 'https://shop.example.cn/help']);
  const [s, e] = range(orig, 'Content-Transfer-Encoding: 8bit\r\n\r\n', '--gb--');
  assertOnlyRangeChanged(orig, r.message, s, e);
  const origHtml = iconv.decode(orig.subarray(s, e), 'gb2312');
  const newHtml = iconv.decode(r.message.subarray(s, r.message.length - (orig.length - e)), 'gb2312');
  assert.equal(newHtml, expectedHtml(origHtml, ['https://shop.example.cn/活动/秋季?来源=邮件&amp;期=12', 'https://shop.example.cn/help']));
  // Re-encoding the expected text must give exactly the output bytes: no charset drift.
  assert.deepEqual(r.message.subarray(s, r.message.length - (orig.length - e)), iconv.encode(newHtml, 'gb2312'));
  const after = await simpleParser(r.message);
  assert.ok((after.html as string).includes('秋季特卖'));
});

test('multipart/mixed: the PDF attachment and text part keep their exact bytes', async () => {
  const orig = load('mixed-pdf.eml');
  const r = rewriteHtmlParts(orig, tracker().fn);
  assert.equal(r.htmlParts, 1);
  const pdfStart = orig.indexOf('--mixed-001\r\nContent-Type: application/pdf');
  const pdf = orig.subarray(pdfStart);
  assert.deepEqual(r.message.subarray(r.message.length - pdf.length), pdf, 'PDF part and closing boundary byte-identical');
  const [s, e] = range(orig, 'Content-Type: text/html; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n', '\r\n--alt-001--');
  assertOnlyRangeChanged(orig, r.message, s, e);
  const before = await simpleParser(orig);
  const after = await simpleParser(r.message);
  assert.equal(after.attachments.length, 1);
  assert.deepEqual(after.attachments[0].content, before.attachments[0].content);
  assert.ok(after.attachments[0].content.includes('https://inside.pdf.example/'), 'links inside a PDF are not touched');
  assert.equal(after.text, before.text);
});

test('multipart/related: the inline cid image is byte-identical and the cid reference survives', async () => {
  const orig = load('related-cid.eml');
  const r = rewriteHtmlParts(orig, tracker().fn);
  assert.equal(r.htmlParts, 1);
  const img = orig.subarray(orig.indexOf('--rel-42\r\nContent-Type: image/png'));
  assert.deepEqual(r.message.subarray(r.message.length - img.length), img);
  const [s] = range(orig, 'Content-Transfer-Encoding: quoted-printable\r\n\r\n', null);
  const html = qpDecode(r.message.subarray(s, r.message.length - img.length)).toString();
  assert.ok(html.startsWith('<html><body><p><img src="cid:logo@weeklyroast" alt="logo" width="120"></p><p><a href="https://t.test/t/c/L0">'));
  const after = await simpleParser(r.message);
  assert.equal(after.attachments[0].contentId, '<logo@weeklyroast>');
  assert.ok((after.html as string).includes('href="https://t.test/t/c/L0"'));
});

test('text/html attachments (disposition attachment, or a named file) are left alone', () => {
  const orig = load('html-attachment.eml');
  let calls = 0;
  const r = rewriteHtmlParts(orig, (h) => (calls++, h + 'X'));
  assert.equal(calls, 0);
  assert.equal(r.htmlParts, 0);
  assert.ok(r.message.equals(orig));
});

test('single-part text/html message: the message headers are the part headers', async () => {
  const orig = load('single-html.eml');
  const r = rewriteHtmlParts(orig, tracker().fn);
  assert.equal(r.htmlParts, 1);
  const { bodyOffset } = splitHeaderBody(orig);
  assertOnlyRangeChanged(orig, r.message, bodyOffset, orig.length);
  const after = await simpleParser(r.message);
  assert.ok((after.html as string).includes('https://t.test/t/c/L1'));
  assert.ok((after.html as string).includes(PIXEL_URL));
});

test('missing final boundary: does not throw, rewrites the unterminated html part', () => {
  const orig = load('missing-final-boundary.eml');
  const r = rewriteHtmlParts(orig, tracker().fn);
  assert.equal(r.htmlParts, 1);
  const s = orig.indexOf('<html>');
  assertOnlyRangeChanged(orig, r.message, s, orig.length);
  assert.ok(r.message.toString().endsWith('<a href="https://t.test/t/c/L0">a</a><img src="https://t.test/t/o/PIX" width="1" height="1" alt="" style="display:block;border:0;width:1px;height:1px" /></body></html>\r\n'));
  assert.ok(!r.message.toString().includes('quoted-printable'), 'short 7bit part stays 7bit');
});

test('nested multipart three levels deep; message/rfc822 is not descended', async () => {
  const orig = load('nested-3-levels.eml');
  const t = tracker();
  const r = rewriteHtmlParts(orig, t.fn);
  assert.equal(r.htmlParts, 1, 'only the deep html part, not the forwarded message');
  assert.deepEqual(t.links[0].map((l) => l.url), ['https://deep.example/nested?a=1&b=2']);
  const [s, e] = range(orig, 'Content-Type: text/html; charset=us-ascii\r\nContent-Transfer-Encoding: base64\r\n\r\n', '\r\n--L1-L2-L3--');
  assertOnlyRangeChanged(orig, r.message, s, e);
  const out = r.message.toString('latin1');
  assert.ok(out.includes('<a href="https://forwarded.example/">fwd</a>'));
  assert.ok(out.startsWith(orig.subarray(0, orig.indexOf('--L1\r\n')).toString('latin1')), 'preamble');
  assert.ok(out.endsWith('--L1--\r\nepilogue of level one\r\n'), 'epilogue');
  const after = await simpleParser(r.message);
  assert.ok((after.html as string).includes('href="https://t.test/t/c/L0"'));
});

test('lines that merely start with the boundary are content, not delimiters', () => {
  const msg = Buffer.from(
    'Content-Type: multipart/alternative; boundary=b1\r\n\r\n--b1\r\n' +
      'Content-Type: text/html\r\n\r\n<html><body>\r\n--b1x not a delimiter\r\n' +
      '--b1--also not a close\r\n<a href="https://x.test/">x</a>\r\n</body></html>\r\n--b1--\r\n',
  );
  const t = tracker();
  const r = rewriteHtmlParts(msg, t.fn);
  assert.equal(r.htmlParts, 1);
  assert.deepEqual(t.links[0].map((l) => l.url), ['https://x.test/']);
  assert.ok(r.message.toString().includes('--b1--also not a close\r\n<a href="https://t.test/t/c/L0">'));
  assert.ok(r.message.toString().endsWith('" /></body></html>\r\n--b1--\r\n'));
});

test('no Content-Type means text/plain: untouched', () => {
  const orig = Buffer.from('From: a@b.example\r\nSubject: x\r\n\r\n<html><body><a href="https://x.test/">x</a></body></html>\r\n');
  let calls = 0;
  const r = rewriteHtmlParts(orig, (h) => (calls++, h));
  assert.equal(calls, 0);
  assert.ok(r.message.equals(orig));
});

test('when fn changes nothing, the message keeps every byte (no re-encoding)', () => {
  for (const name of ['alternative-qp.eml', 'alternative-base64.eml', 'long-line-8bit.eml', 'nested-3-levels.eml']) {
    const orig = load(name);
    const r = rewriteHtmlParts(orig, (h) => h);
    assert.equal(r.htmlParts, 1, name);
    assert.ok(r.message.equals(orig), name);
  }
});

test('fn sees exactly the decoded part bytes (latin1 string) for each encoding', () => {
  const seen: string[] = [];
  rewriteHtmlParts(load('alternative-qp.eml'), (h) => (seen.push(h), h));
  rewriteHtmlParts(load('alternative-base64.eml'), (h) => (seen.push(h), h));
  // QP hard line breaks decode to CRLF; the base64 fixture encoded LF-only text as is.
  assert.equal(seen[0], seen[1].replace(/\n/g, '\r\n'));
  assert.equal(Buffer.from(seen[0], 'latin1').toString('utf8').split('\r\n')[3], '<p style="font-family:Georgia,serif;font-size:16px">Grüße, Dana! This week’s roast: Guji – bright &amp; floral.</p>');
});

test('UTF-16LE html (BOM, base64) is decoded for fn and re-encoded in the same byte order', () => {
  const html = '<html><body><a href="https://x.test/ü">ü</a></body></html>';
  const bytes = Buffer.concat([Buffer.from([0xff, 0xfe]), iconv.encode(html, 'utf-16le')]);
  const msg = Buffer.from(`Content-Type: text/html; charset=utf-16\r\nContent-Transfer-Encoding: base64\r\n\r\n${bytes.toString('base64')}\r\n`);
  const t = tracker();
  const r = rewriteHtmlParts(msg, t.fn);
  assert.deepEqual(t.contexts, [{ charset: 'utf-16', binary: false, type: 'text/html' }]);
  assert.deepEqual(t.links[0], [{ index: 0, url: 'https://x.test/ü' }]);
  const out = Buffer.from(splitHeaderBody(r.message).body.toString('latin1'), 'base64');
  assert.deepEqual(out.subarray(0, 2), Buffer.from([0xff, 0xfe]));
  assert.ok(iconv.decode(out.subarray(2), 'utf-16le').startsWith('<html><body><a href="https://t.test/t/c/L0">ü</a>'));
});

test('a charset iconv-lite cannot encode (ISO-2022-JP) is left untouched', () => {
  const msg = Buffer.from('Content-Type: text/html; charset=ISO-2022-JP\r\n\r\n<a href="https://x.test/">\x1b$B$3$s\x1b(B</a>\r\n', 'latin1');
  let calls = 0;
  const r = rewriteHtmlParts(msg, (h) => (calls++, h + 'X'));
  assert.equal(calls, 0);
  assert.ok(r.message.equals(msg));
});

test('meta charset is used when the part declares none', () => {
  const html = Buffer.from('<html><head><meta charset="windows-1252"></head><body><a href="https://x.test/caf\xe9">c</a></body></html>', 'latin1');
  const msg = Buffer.concat([Buffer.from('Content-Type: text/html\r\nContent-Transfer-Encoding: 8bit\r\n\r\n'), html]);
  const t = tracker();
  rewriteHtmlParts(msg, t.fn);
  assert.equal(t.contexts[0].charset, 'windows-1252');
  assert.equal(t.links[0][0].url, 'https://x.test/café');
});

test('a 7bit part that fn makes 8bit is switched to quoted-printable', () => {
  const msg = Buffer.from('Content-Type: text/html; charset=utf-8\r\nContent-Transfer-Encoding: 7bit\r\n\r\n<p>x</p>\r\n');
  const r = rewriteHtmlParts(msg, (h) => h.replace('x', Buffer.from('ü').toString('latin1')));
  assert.equal(r.message.toString(), 'Content-Type: text/html; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n<p>=C3=BC</p>\r\n');
});

test('errors thrown by fn propagate', () => {
  assert.throws(() => rewriteHtmlParts(load('single-html.eml'), () => { throw new Error('boom'); }), /boom/);
});

test('malformed MIME never throws: truncations, garbage, missing boundaries', () => {
  const names = ['alternative-qp.eml', 'mixed-pdf.eml', 'nested-3-levels.eml', 'alternative-base64.eml', 'long-line-8bit.eml'];
  for (const name of names) {
    const orig = load(name);
    for (let cut = 0; cut <= orig.length; cut += 37) {
      const r = rewriteHtmlParts(orig.subarray(0, cut), tracker().fn);
      assert.ok(Buffer.isBuffer(r.message));
    }
  }
  const cases = [
    '',
    '\r\n',
    'garbage without headers',
    'Content-Type: multipart/mixed\r\n\r\n--x\r\nContent-Type: text/html\r\n\r\n<a href="https://x.test/">x</a>\r\n--x--\r\n',
    'Content-Type: multipart/mixed; boundary=""\r\n\r\n--\r\n\r\n',
    'Content-Type: multipart/mixed; boundary=zz\r\n\r\nno delimiter at all\r\n',
    'Content-Type: multipart/alternative; boundary=zz\r\n\r\n--zz--\r\n--zz\r\nContent-Type: text/html\r\n\r\n<a href="https://x.test/">x</a>\r\n',
    'Content-Type: text/html; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\n!!!not base64###\r\n',
    'Content-Type: text/html\r\nContent-Transfer-Encoding: x-uuencode\r\n\r\nbegin 644 x\r\n',
    'Content-Type: text/html\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n=\r\n=4\r\n=ZZ<a href=3D"https://x.test/">=',
  ];
  for (const c of cases) {
    const msg = Buffer.from(c, 'latin1');
    assert.doesNotThrow(() => rewriteHtmlParts(msg, tracker().fn), c);
  }
  const noBoundary = Buffer.from(cases[3]);
  assert.ok(rewriteHtmlParts(noBoundary, tracker().fn).message.equals(noBoundary), 'multipart without boundary is untouched');
  const closedFirst = Buffer.from(cases[6]);
  assert.ok(rewriteHtmlParts(closedFirst, tracker().fn).message.equals(closedFirst), 'nothing after the close delimiter is a part');
  const deep = Buffer.from('Content-Type: multipart/mixed; boundary=a\r\n\r\n' + '--a\r\nContent-Type: multipart/mixed; boundary=a\r\n\r\n'.repeat(200));
  assert.doesNotThrow(() => rewriteHtmlParts(deep, tracker().fn));
});

test('qpEncode/qpDecode round-trip arbitrary bytes; lines ≤ 76, no trailing whitespace', () => {
  const samples = [
    Buffer.from('a = b\r\nline with trailing space \r\ntab\t\r\n\r\n.dot start\r\nbare\nLF and bare\rCR', 'latin1'),
    Buffer.from('x'.repeat(300) + '=' + 'ü'.repeat(100)),
    Buffer.from(Array.from({ length: 2048 }, (_, i) => (i * 7919) % 256)),
    Buffer.from(' '),
    Buffer.alloc(0),
  ];
  for (const b of samples) {
    const enc = qpEncode(b);
    for (const l of enc.toString('latin1').split('\r\n')) {
      assert.ok(l.length <= 76, l);
      assert.ok(!/[ \t]$/.test(l), `trailing ws: ${JSON.stringify(l)}`);
    }
    assert.deepEqual(qpDecode(enc), b);
  }
  assert.deepEqual(qpDecode(Buffer.from('a=3Db=\r\nc =\r\nd=e9=E9 \r\n=XY')), Buffer.from('a=bc d\xe9\xe9\r\n=XY', 'latin1'));
});

test('splitHeaderBody and parseHeaders keep raw bytes and unfold values', () => {
  const msg = Buffer.from('Subject: one\r\n two\r\nX-Empty:\r\nContent-Type: text/html;\r\n\tcharset="utf-8"\r\n\r\nbody\r\n');
  const { header, body, bodyOffset } = splitHeaderBody(msg);
  assert.equal(header.toString(), 'Subject: one\r\n two\r\nX-Empty:\r\nContent-Type: text/html;\r\n\tcharset="utf-8"\r\n');
  assert.equal(body.toString(), 'body\r\n');
  assert.equal(bodyOffset, header.length + 2);
  const fields = parseHeaders(header);
  assert.deepEqual(fields.map((f) => [f.name, f.value]), [
    ['Subject', 'one two'],
    ['X-Empty', ''],
    ['Content-Type', 'text/html;\tcharset="utf-8"'],
  ]);
  assert.equal(Buffer.concat(fields.map((f) => f.raw)).toString(), header.toString());
  assert.equal(parseStructured(fields[2].value).params.get('charset'), 'utf-8');
  assert.deepEqual(splitHeaderBody(Buffer.from('A: b\r\n')), { header: Buffer.from('A: b\r\n'), body: Buffer.alloc(0), bodyOffset: 6 });
});

test('parseStructured handles quoting, escapes, RFC 2231 and odd spacing', () => {
  const ct = parseStructured('Multipart/Mixed ; boundary = "a\\"b;c" ; charset*=utf-8\'\'%E2%82%AC; x=1');
  assert.equal(ct.type, 'multipart/mixed');
  assert.equal(ct.params.get('boundary'), 'a"b;c');
  assert.equal(ct.params.get('charset'), '€');
  assert.equal(ct.params.get('x'), '1');
});
