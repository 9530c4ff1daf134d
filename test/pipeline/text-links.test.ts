import { test } from 'node:test';
import assert from 'node:assert/strict';
import { rewriteTextLinks } from '../../src/pipeline/text-links.js';
import { MAX_TRACKED_URL } from '../../src/pipeline/track-rewrite.js';

const clickUrl = ({ index }: { index: number }) => `https://t.test/c/${index}`;

test('bare URLs in text are replaced; surrounding punctuation and brackets stay outside', () => {
  const text = 'See https://a.test/x?y=1&z=2. Or <https://b.test/> and (https://c.test/p), "http://d.test/q"!\r\n';
  const r = rewriteTextLinks(text, { clickUrl });
  assert.deepEqual(
    r.links.map((l) => l.url),
    ['https://a.test/x?y=1&z=2', 'https://b.test/', 'https://c.test/p', 'http://d.test/q'],
  );
  assert.equal(r.text, 'See https://t.test/c/0. Or <https://t.test/c/1> and (https://t.test/c/2), "https://t.test/c/3"!\r\n');
});

test('a parenthesis that belongs to the URL is kept; schemes alone and other schemes are left', () => {
  const r = rewriteTextLinks('https://en.wikipedia.test/wiki/Mail_(protocol) and https:// and ftp://x.test/ mailto:a@b.test', { clickUrl });
  assert.deepEqual(r.links.map((l) => l.url), ['https://en.wikipedia.test/wiki/Mail_(protocol)']);
  assert.match(r.text, /^https:\/\/t\.test\/c\/0 and https:\/\/ and ftp:\/\/x\.test\/ mailto:a@b\.test$/);
});

test('text without URLs is returned unchanged', () => {
  const text = 'No links here.\r\nhttp is a protocol.\r\n';
  assert.deepEqual(rewriteTextLinks(text, { clickUrl }), { text, links: [] });
});

test('a URL longer than MAX_TRACKED_URL is left as written', () => {
  const long = `https://long.test/${'x'.repeat(MAX_TRACKED_URL)}`;
  const r = rewriteTextLinks(`see ${long} and https://short.test/`, { clickUrl });
  assert.deepEqual(r.links.map((l) => l.url), ['https://short.test/']);
  assert.equal(r.text, `see ${long} and https://t.test/c/0`);
});
