import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { decodeHTMLAttribute } from 'entities';
import iconv from 'iconv-lite';
import { MAX_TRACKED_URL, rewriteHtml, type RewriteOptions } from '../../src/pipeline/track-rewrite.js';

const FIXTURES = new URL('../fixtures/html/', import.meta.url);
const PIXEL_URL = 'https://t.test/t/o/PIX';
const PIXEL = `<img src="${PIXEL_URL}" width="1" height="1" alt="" style="display:block;border:0;width:1px;height:1px" />`;
const UNSUB = 'https://news.example.com/unsubscribe?id=42&list=7';
const marker = (i: number): string => `https://t.test/t/c/L${i}`;

function options(extra: Partial<RewriteOptions> = {}): RewriteOptions {
  return {
    clicks: true,
    openPixelUrl: PIXEL_URL,
    clickUrl: ({ index }) => marker(index),
    unsubscribeUrl: UNSUB,
    ...extra,
  };
}

// Fixtures are read as latin1 "binary" strings: one char per byte, as rewriteHtmlParts hands
// them out, so GB2312 and UTF-8 files go through the same byte-faithful path.
const read = (name: string): string => readFileSync(new URL(name, FIXTURES), 'latin1');

/**
 * Independent of the tokenizer: walk output and input together. Outside the pixel, the removed
 * notrack attributes and the href values replaced by our markers, every byte must be equal; each
 * replaced raw href must decode (charset, then entities, once) to the link reported.
 */
function assertOnlyTrackedSpansChanged(input: string, output: string, urls: string[], charset: string): void {
  let out = output;
  const p = out.indexOf(PIXEL);
  assert.ok(p >= 0, 'pixel present');
  assert.equal(out.indexOf(PIXEL, p + 1), -1, 'exactly one pixel');
  const after = out.slice(p + PIXEL.length);
  assert.ok(after === '' || /^<\/body/i.test(after), 'pixel sits just before </body> or at the end');
  assert.ok(!/<\/body/i.test(after.slice(7).replace(/<!--[\s\S]*?-->/g, '')), 'it is the last real </body>');
  out = out.slice(0, p) + after;
  const src = input.replace(/\s+data-relaygate-notrack(?:="[^"]*")?(?=[\s>])/gi, '');

  let o = 0;
  let i = 0;
  for (let k = 0; k < urls.length; k++) {
    const m = out.indexOf(marker(k), o);
    assert.ok(m >= 0, `marker L${k} present`);
    const same = out.slice(o, m);
    assert.equal(src.slice(i, i + same.length), same, `bytes before L${k} unchanged`);
    i += same.length;
    const quote = out[m - 1];
    let end: number;
    if (quote === '"' || quote === "'") end = src.indexOf(quote, i);
    else end = src.slice(i).search(/[\s>]/) + i;
    const raw = src.slice(i, end);
    const decoded = decodeHTMLAttribute(iconv.decode(Buffer.from(raw, 'latin1'), charset)).trim();
    assert.equal(decoded, urls[k], `raw href #${k} decodes once to the tracked url`);
    i = end;
    o = m + marker(k).length;
  }
  assert.equal(out.slice(o), src.slice(i), 'bytes after the last link unchanged');
  assert.equal(output.split('https://t.test/t/c/').length - 1, urls.length, 'no extra tracked links');
}

const GOLDEN: { name: string; charset?: string; urls: string[] | number }[] = [
  {
    name: 'newsletter-tables',
    urls: [
      'https://www.weeklyroast.example/?utm_source=newsletter&utm_medium=email&utm_campaign=issue42',
      'https://www.weeklyroast.example/blog/guji-2024?ref=nl42&utm_medium=email',
      'https://shop.weeklyroast.example/products/guji-natural?variant=334455&utm_content=img',
      'https://shop.weeklyroast.example/products/guji-natural?variant=334455&utm_content=text',
      'https://shop.weeklyroast.example/products/v60-kit',
      'https://shop.weeklyroast.example/products/v60-kit',
      'https://www.weeklyroast.example/preferences?u=9f8e7d&l=3',
    ],
  },
  {
    name: 'outlook-mso-vml',
    urls: [
      'https://billing.acme.example/invoices/0193?src=email&btn=vml',
      'https://billing.acme.example/invoices/0193?src=email&btn=html',
      'https://billing.acme.example/help?from=outlook',
      'https://acme.example/support',
    ],
  },
  {
    name: 'center-layout',
    urls: [
      'https://view.shoemart.example/v/2024-spring?e=abc123',
      'https://www.shoemart.example/spring',
      'https://www.shoemart.example/women',
      'https://www.shoemart.example/men',
      'https://www.shoemart.example/kids',
      'https://www.shoemart.example/sale',
    ],
  },
  {
    name: 'entities-hrefs',
    urls: [
      'https://example.com/a.html?x=1&y=2',
      'https://example.com/search?q=fish&chips&sort=asc',
      'https://example.com/p?text=a&amp;b',
      'https://example.com/c?x=1&copy=2&not=3',
      'https://example.com/d?sign=©&n=1',
      'https://example.com/e?q="hello world"&lang=en',
      'https://example.com/f?a=1&b=2',
      'https://example.com/~user/docs',
    ],
  },
  {
    name: 'quoting',
    urls: [
      'https://example.org/single?x=1&y=2',
      'https://example.org/unquoted?x=1&y=2',
      'https://example.org/spaced',
      'https://example.org/multiline',
      'https://example.org/padded',
      'https://example.org/first',
      'https://example.org/after-gt',
      "https://example.org/it's",
    ],
  },
  { name: 'uppercase', urls: ['HTTPS://ORDERS.EXAMPLE.NET/Track?ID=77812&Z=1', 'Http://Orders.Example.Net/Returns'] },
  {
    name: 'intl-links',
    urls: [
      'https://bücher.example/neuheiten#herbst',
      'https://xn--bcher-kva.example/angebote?kategorie=krimi&seite=2#liste',
      'https://shop.example.de/kategorie/größen/übersicht?farbe=grün',
      'https://shop.example.de/kategorie/gr%C3%B6%C3%9Fen?q=%E2%82%AC',
      'https://例え.テスト/パス/ページ?検索=日本語#見出し',
      'https://example.com/#/app/route?tab=1',
      'https://user:pa%40ss@example.com:8443/p;param?q=a+b&r=c%20d#top',
    ],
  },
  { name: 'untracked-links', urls: ['https://bank.example/offers'] },
  {
    name: 'fragment-no-body',
    urls: ['https://ci.example.dev/builds/4821?tab=logs&line=311', 'https://ci.example.dev/settings/notifications'],
  },
  { name: 'double-body', urls: ['https://a.example/one', 'https://b.example/two'] },
  { name: 'long-line', urls: 61 },
  {
    name: 'gb2312',
    charset: 'gb2312',
    urls: ['https://shop.example.cn/活动/秋季?来源=邮件&期=12', 'https://shop.example.cn/help/faq.html#退货'],
  },
];

for (const g of GOLDEN) {
  test(`golden: ${g.name}`, () => {
    const input = read(`${g.name}.html`);
    const charset = g.charset ?? 'utf-8';
    const seen: { index: number; url: string }[] = [];
    const r = rewriteHtml(input, options({ charset, clickUrl: (l) => (seen.push(l), marker(l.index)) }));
    assert.equal(r.html, read(`${g.name}.expected.html`));
    const urls = r.links.map((l) => l.url);
    if (typeof g.urls === 'number') assert.equal(urls.length, g.urls);
    else assert.deepEqual(urls, g.urls);
    assert.deepEqual(r.links.map((l) => l.index), urls.map((_, i) => i), 'indexes 0..n-1');
    assert.deepEqual(seen, r.links, 'clickUrl called once per link, in document order');
    assertOnlyTrackedSpansChanged(input, r.html, urls, charset);
  });
}

test('golden: >10 KB single-line document keeps its one line', () => {
  const input = read('long-line.html');
  assert.ok(input.length > 10_240 && !input.includes('\n'));
  const r = rewriteHtml(input, options());
  assert.ok(!r.html.includes('\n'));
  assert.equal(r.links[0].url, 'https://store.example/p/1000?utm_source=email&utm_campaign=flash&pos=0');
  assert.equal(r.links[60].url, 'https://store.example/help');
});

test('MSO: revealed blocks are ordinary markup; commented-out links stay untouched', () => {
  const out = rewriteHtml(read('outlook-mso-vml.html'), options()).html;
  assert.ok(out.includes('<!--[if !mso]><!-- -->\r\n  <a href="https://t.test/t/c/L1"'));
  assert.ok(out.includes('<!-- <a href="https://old.acme.example/commented-out">old link</a> -->'));
  assert.ok(out.includes('<w:anchorlock/>') && out.includes('<o:AllowPNG/>'));
  assert.ok(!/[^\r]\n/.test(out), 'CRLF line endings preserved');
});

test('entity decoding happens exactly once and writing escapes per quote style', () => {
  const html = `<a href="https://a.test/?q=1&amp;amp;r=2">x</a><a href='https://b.test/'>y</a><a href=https://c.test/>z</a>`;
  const tricky = `https://t.test/c?a=1&b="2"&c='3'`;
  const r = rewriteHtml(html, options({ clickUrl: () => tricky }));
  assert.equal(r.links[0].url, 'https://a.test/?q=1&amp;r=2');
  assert.equal(
    r.html,
    `<a href="https://t.test/c?a=1&amp;b=&quot;2&quot;&amp;c='3'">x</a>` +
      `<a href='https://t.test/c?a=1&amp;b=&quot;2&quot;&amp;c=&#39;3&#39;'>y</a>` +
      `<a href="https://t.test/c?a=1&amp;b=&quot;2&quot;&amp;c='3'">z</a>` +
      PIXEL,
  );
  const values = [...r.html.matchAll(/href=(?:"([^"]*)"|'([^']*)')/g)].map((m) => m[1] ?? m[2]);
  assert.equal(values.length, 3);
  for (const v of values) assert.equal(decodeHTMLAttribute(v), tricky);
});

test('unquoted href stays unquoted when the new value is safe', () => {
  const r = rewriteHtml('<A HREF=http://x.test/a>a</A>', options({ openPixelUrl: undefined }));
  assert.equal(r.html, '<A HREF=https://t.test/t/c/L0>a</A>');
});

test('clicks:false leaves hrefs alone but still inserts the pixel and strips notrack', () => {
  const html = '<body><a href="https://x.test/" data-relaygate-notrack>a</a><a href="https://y.test/">b</a></body>';
  const r = rewriteHtml(html, options({ clicks: false }));
  assert.deepEqual(r.links, []);
  assert.equal(r.html, `<body><a href="https://x.test/">a</a><a href="https://y.test/">b</a>${PIXEL}</body>`);
});

test('no openPixelUrl: no pixel; empty input stays empty', () => {
  const html = '<html><body><p>hi</p></body></html>';
  assert.equal(rewriteHtml(html, options({ openPixelUrl: undefined })).html, html);
  assert.equal(rewriteHtml('', options({ openPixelUrl: undefined })).html, '');
  assert.equal(rewriteHtml('', options()).html, PIXEL);
});

test('the pixel URL is attribute-escaped', () => {
  const r = rewriteHtml('<body></body>', options({ openPixelUrl: 'https://t.test/o?a=1&b="x"' }));
  assert.ok(r.html.startsWith('<body><img src="https://t.test/o?a=1&amp;b=&quot;x&quot;" width="1"'));
});

test('unsubscribe link is recognised after entity decoding and trimming', () => {
  const html = `<a href=" ${UNSUB.replace('&', '&amp;')} ">u</a><a href="${UNSUB}x">other</a>`;
  const r = rewriteHtml(html, options({ openPixelUrl: undefined }));
  assert.deepEqual(r.links, [{ index: 0, url: `${UNSUB}x` }]);
  assert.ok(r.html.startsWith(`<a href=" ${UNSUB.replace('&', '&amp;')} ">u</a>`));
});

test('tab and newline inside an href are dropped from the url, as a browser does', () => {
  const r = rewriteHtml('<a href="https://x.test/very\n\tlong/path?a=1\r\n&amp;b=2">x</a>', options());
  assert.equal(r.links[0].url, 'https://x.test/verylong/path?a=1&b=2');
});

test('a normal (non-binary) Unicode string keeps its characters', () => {
  const html = '<p>Grüße – 日本</p><a href="https://bücher.example/ö?q=é">x</a>';
  const r = rewriteHtml(html, options({ openPixelUrl: undefined }));
  assert.equal(r.links[0].url, 'https://bücher.example/ö?q=é');
  assert.equal(r.html, '<p>Grüße – 日本</p><a href="https://t.test/t/c/L0">x</a>');
});

test('charset given for a string that is already Unicode: the href is taken as is', () => {
  const r = rewriteHtml('<a href="https://例え.jp/ö">x</a>', options({ charset: 'utf-8' }));
  assert.equal(r.links[0].url, 'https://例え.jp/ö');
});

test('bytes that are invalid in the declared charset: the link is left untracked, not mangled', () => {
  const html = Buffer.from('<a href="https://x.test/caf\xe9">a</a><a href="https://y.test/">b</a>', 'latin1').toString('latin1');
  const r = rewriteHtml(html, options({ charset: 'utf-8', openPixelUrl: undefined }));
  assert.deepEqual(r.links, [{ index: 0, url: 'https://y.test/' }]);
  assert.ok(r.html.startsWith('<a href="https://x.test/caf\xe9">a</a>'));
  const latin1 = rewriteHtml(html, options({ charset: 'iso-8859-1', openPixelUrl: undefined }));
  assert.equal(latin1.links[0].url, 'https://x.test/café');
});

test('malformed markup: an unterminated tag or attribute is never rewritten and never throws', () => {
  for (const html of ['<a href="https://x.test/', '<a href=https://x.test/', '<a href="https://x.test/">ok</a><a', '<<a>>', '<!--', '<a href="x"></a']) {
    const r = rewriteHtml(html, options({ openPixelUrl: undefined }));
    assert.ok(r.html.length >= html.length - 1);
    if (!html.includes('">ok')) assert.equal(r.html, html);
  }
  const ok = rewriteHtml('<a href="https://x.test/">ok</a><a href="https://y.test/', options({ openPixelUrl: undefined }));
  assert.deepEqual(ok.links.map((l) => l.url), ['https://x.test/']);
});

test('links inside <script>, <style>, <textarea> and plain comments are not links', () => {
  const r = rewriteHtml(read('untracked-links.html'), options());
  assert.ok(r.html.includes(`"<a href='https://script.example/not-a-link'>"`));
  assert.ok(r.html.includes('<a href="https://css.example/not-a-link">'));
  assert.ok(r.html.includes('<textarea><a href="https://textarea.example/not-a-link"></a></textarea>'));
  assert.ok(r.html.includes('<a href="mailto:support@example.com?subject=Help&amp;body=Hi">'));
  assert.ok(!/data-relaygate-notrack/i.test(r.html));
});

test('a large document (~1 MB, 5000 links) is rewritten quickly', () => {
  const chunk = '<tr><td style="padding:4px"><a href="https://x.test/p?id=1&amp;u=2">item</a> &nbsp; text text text text text text text text text text text text text text text text</td></tr>\n';
  const html = `<html><body><table>${chunk.repeat(5000)}</table></body></html>`;
  const t0 = performance.now();
  const r = rewriteHtml(html, options());
  assert.ok(performance.now() - t0 < 3000);
  assert.equal(r.links.length, 5000);
  assert.equal(r.links[4999].index, 4999);
});

test('a link longer than MAX_TRACKED_URL is left as sent; one at the limit is tracked', () => {
  const at = `https://long.test/?q=${'a'.repeat(MAX_TRACKED_URL - 'https://long.test/?q='.length)}`;
  const over = `${at}b`;
  const input = `<html><body><a href="${over}">x</a> <a href="${at}">y</a></body></html>`;
  const r = rewriteHtml(input, options());
  assert.deepEqual(r.links.map((l) => l.url.length), [MAX_TRACKED_URL]);
  assert.ok(r.html.includes(`href="${over}"`), 'the over-long link is unchanged');
  assert.ok(r.html.includes(`href="${marker(0)}"`), 'the one at the limit is tracked');
});

test('the limit counts the Location header the redirect will send: non-ASCII percent-encoded', () => {
  // 1,000 CJK characters are 9,000 bytes once percent-encoded: over the limit though the URL is short.
  const cjk = `https://long.test/${'链'.repeat(1_000)}`;
  assert.ok(cjk.length < MAX_TRACKED_URL);
  const r = rewriteHtml(`<html><body><a href="${cjk}">x</a></body></html>`, options());
  assert.deepEqual(r.links, []);
});
