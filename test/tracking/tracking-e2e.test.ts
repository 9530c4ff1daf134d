// Tracking from submission to stats: the rewritten mail as the MX receives it,
// then the clicks, opens and unsubscribes a recipient makes over real HTTP.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { simpleParser } from 'mailparser';
import { addCredential } from '../../src/auth/credentials.js';
import { createDomainService } from '../../src/domains/service.js';
import { startMxSink, startTestGateway, submitMail, until, type MxSink, type TestGateway } from '../helpers/gateway.js';

let t: TestGateway;
let mx: MxSink;
let auth: { user: string; pass: string };

const HTML =
  '<!DOCTYPE html><html><body><table><tr><td>' +
  '<a href="https://shop.test/a.html?x=1&amp;y=2#top">buy</a> ' +
  '<a href="mailto:help@example.test">mail</a> <a href="#sec">jump</a> ' +
  '<a data-relaygate-notrack href="https://keep.test/raw">raw</a> ' +
  '<a href="https://bücher.test/straße?q=ä">intl</a>' +
  '</td></tr></table></body></html>';
const TEXT = 'Plain part with https://shop.test/a.html?x=1&y=2 kept as is.\n';

before(async () => {
  t = await startTestGateway();
  await createDomainService({ config: t.config, store: t.gw.store }).add('example.test');
  const c = (await addCredential(t.gw.store, 'example.test', {})) as { username: string; password: string };
  auth = { user: c.username, pass: c.password };
  t.dns.set('dest.test', [{ type: 'MX', exchange: 'mx.dest.test', priority: 10 }]);
  t.dns.set('mx.dest.test', [{ type: 'A', address: '127.0.0.6' }]);
  mx = await startMxSink('127.0.0.6', t.mxPort);
});
after(async () => {
  await mx?.close();
  await t?.stop();
});

async function sendAndReceive(to: string[], headers: Record<string, string> = {}) {
  const before = mx.received.length;
  const r = await submitMail({ port: t.smtpPort, auth, to, html: HTML, text: TEXT, headers });
  await mx.waitFor(before + 1);
  return { id: r.id, mail: mx.received[before] };
}

const tokens = (html: string, kind: 'c' | 'o' | 'u') => [...html.matchAll(new RegExp(`/t/${kind}/([A-Za-z0-9_-]+)`, 'g'))].map((m) => m[1]);

test('links are rewritten per recipient; untracked links, text part and structure survive', async () => {
  const a = await sendAndReceive(['ann@dest.test']);
  const b = await sendAndReceive(['ben@dest.test']);
  const pa = await simpleParser(a.mail.body);
  const pb = await simpleParser(b.mail.body);
  const html = pa.html as string;
  const clicks = tokens(html, 'c');
  assert.equal(clicks.length, 2, 'the two http(s) links are tracked');
  assert.ok(clicks.every((tok) => tok.length >= 22), 'tokens carry at least 128 bits');
  assert.ok(html.includes('href="mailto:help@example.test"'));
  assert.ok(html.includes('href="#sec"'));
  assert.ok(html.includes('href="https://keep.test/raw"'));
  assert.ok(!html.includes('data-relaygate-notrack'), 'the opt-out attribute is removed');
  assert.match(html, /<img src="http:\/\/127\.0\.0\.1:\d+\/t\/o\/[A-Za-z0-9_-]{22}" width="1" height="1" alt=""[^>]*><\/body>/);
  assert.equal(pa.text, TEXT, 'the text part is unchanged');
  const otherTokens = tokens(pb.html as string, 'c');
  assert.equal(otherTokens.filter((x) => clicks.includes(x)).length, 0, 'each recipient has their own tokens');
});

test('a click redirects to the stored URL, entities decoded once, and is recorded', async () => {
  const { id, mail } = await sendAndReceive(['cat@dest.test']);
  const html = (await simpleParser(mail.body)).html as string;
  const [buy, intl] = tokens(html, 'c');
  const res = await fetch(`${t.httpUrl}/t/c/${buy}`, { redirect: 'manual', headers: { 'User-Agent': 'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36' } });
  assert.equal(res.status, 302);
  assert.equal(res.headers.get('location'), 'https://shop.test/a.html?x=1&y=2#top');
  const res2 = await fetch(`${t.httpUrl}/t/c/${intl}`, { redirect: 'manual' });
  assert.equal(res2.status, 302);
  assert.equal(res2.headers.get('location'), 'https://xn--bcher-kva.test/stra%C3%9Fe?q=%C3%A4');
  const ev = await until(() => t.gw.store.events.forMessage(id).find((e) => e.type === 'clicked'), 'clicked event', 5000);
  const data = JSON.parse((ev as any).data ?? '{}');
  assert.equal(data.url ?? (ev as any).url, 'https://shop.test/a.html?x=1&y=2#top');
});

test('unknown or altered tokens get 404 and never redirect', async () => {
  const { mail } = await sendAndReceive(['dan@dest.test']);
  const [tok] = tokens((await simpleParser(mail.body)).html as string, 'c');
  const flipped = tok.slice(0, -1) + (tok.endsWith('A') ? 'B' : 'A');
  for (const bad of [flipped, 'x'.repeat(22), 'short', `${tok}x`, '..%2f..%2fetc']) {
    const res = await fetch(`${t.httpUrl}/t/c/${bad}`, { redirect: 'manual' });
    assert.equal(res.status, 404, bad);
    assert.equal(res.headers.get('location'), null);
  }
  const o = await fetch(`${t.httpUrl}/t/o/${flipped}`);
  assert.equal(o.status, 404);
});

test('the open pixel is a 43-byte GIF that caches nowhere, and counts as an open', async () => {
  const { id, mail } = await sendAndReceive(['eve@dest.test']);
  const [tok] = tokens((await simpleParser(mail.body)).html as string, 'o');
  const res = await fetch(`${t.httpUrl}/t/o/${tok}`, { headers: { 'User-Agent': 'Mozilla/5.0 (Macintosh; Intel Mac OS X 14_0) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.0 Safari/605.1.15' } });
  assert.equal(res.status, 200);
  assert.equal(res.headers.get('content-type'), 'image/gif');
  assert.match(res.headers.get('cache-control') ?? '', /no-store/);
  assert.equal((await res.arrayBuffer()).byteLength, 43);
  await until(() => t.gw.store.events.forMessage(id).some((e) => e.type === 'opened'), 'opened event', 5000);
});

test('a Gmail image-proxy open is flagged and kept out of the unique-open total', async () => {
  const { id, mail } = await sendAndReceive(['fay@dest.test']);
  const [tok] = tokens((await simpleParser(mail.body)).html as string, 'o');
  const before = t.gw.store.stats.totals({ since: Date.now() - 3_600_000, until: Date.now() + 3_600_000 });
  const res = await fetch(`${t.httpUrl}/t/o/${tok}`, { headers: { 'User-Agent': 'Mozilla/5.0 (Windows NT 5.1; rv:11.0) Gecko Firefox/11.0 (via ggpht.com GoogleImageProxy)' } });
  assert.equal(res.status, 200);
  await until(() => t.gw.store.events.forMessage(id).some((e) => e.type === 'opened'), 'opened event', 5000);
  const after = t.gw.store.stats.totals({ since: Date.now() - 3_600_000, until: Date.now() + 3_600_000 });
  assert.equal((after.opened_flagged ?? 0) - (before.opened_flagged ?? 0), 1);
  assert.equal(after.opened_unique ?? 0, before.opened_unique ?? 0);
});

test('one-click unsubscribe: GET changes nothing, POST suppresses, the next mail is not delivered', async () => {
  const { id, mail } = await sendAndReceive(['gus@dest.test'], { 'X-Relaygate-Track': 'opens,clicks,unsubscribe' });
  const lu = /^List-Unsubscribe: (.*)\r$/m.exec(mail.body.toString())?.[1] ?? '';
  const m = /\/t\/u\/([A-Za-z0-9_-]{22})/.exec(lu);
  assert.ok(m, `List-Unsubscribe present: ${lu}`);
  assert.match(mail.body.toString(), /^List-Unsubscribe-Post: List-Unsubscribe=One-Click\r$/m);
  assert.match(mail.body.toString(), /^DKIM-Signature:[^]*h=[^;]*List-Unsubscribe/im);

  const page = await fetch(`${t.httpUrl}/t/u/${m[1]}`);
  assert.equal(page.status, 200);
  assert.match(page.headers.get('content-type') ?? '', /text\/html/);
  assert.equal(t.gw.store.tenants.isSuppressed('example.test', 'gus@dest.test'), undefined, 'GET does not unsubscribe');

  const post = await fetch(`${t.httpUrl}/t/u/${m[1]}`, { method: 'POST', body: 'List-Unsubscribe=One-Click', headers: { 'Content-Type': 'application/x-www-form-urlencoded' }, redirect: 'manual' });
  assert.equal(post.status, 200);
  assert.ok(t.gw.store.tenants.isSuppressed('example.test', 'gus@dest.test'));
  await until(() => t.gw.store.events.forMessage(id).some((e) => e.type === 'unsubscribed'), 'unsubscribed event', 5000);

  const count = mx.received.length;
  const r = await submitMail({ port: t.smtpPort, auth, to: 'gus@dest.test', html: HTML });
  assert.match(r.response, /^250 /);
  assert.equal(t.gw.store.queue.recipientsOf(r.id)[0].status, 'suppressed');
  await new Promise((res) => setTimeout(res, 700));
  assert.equal(mx.received.length, count, 'a suppressed recipient gets nothing');
  assert.ok(t.gw.store.events.forMessage(r.id).some((e) => e.type === 'suppressed'));
});

test('X-Relaygate-Track: none sends the HTML untouched', async () => {
  const { mail } = await sendAndReceive(['hal@dest.test'], { 'X-Relaygate-Track': 'none' });
  const p = await simpleParser(mail.body);
  assert.equal(tokens(p.html as string, 'c').length, 0);
  assert.equal(tokens(p.html as string, 'o').length, 0);
  assert.ok(!/^X-Relaygate-/im.test(mail.body.toString()), 'control headers are stripped');
});

test('href="{{unsubscribe}}" becomes the recipient\'s own one-click page, never a click redirect', async () => {
  const before = mx.received.length;
  const html = '<html><body><a href="https://shop.test/">shop</a> <a href="{{unsubscribe}}">Unsubscribe</a></body></html>';
  await submitMail({ port: t.smtpPort, auth, to: ['ivy@dest.test', 'jon@dest.test'], html });
  await mx.waitFor(before + 2);
  const bodies = await Promise.all(mx.received.slice(before).map((m) => simpleParser(m.body)));
  const all = bodies.map((p) => p.html as string).join('\n');
  const unsub = tokens(all, 'u');
  assert.equal(unsub.length, 2, 'one unsubscribe link per recipient');
  assert.notEqual(unsub[0], unsub[1]);
  assert.equal(tokens(all, 'c').length, 2, 'only the shop link is click-tracked');
  assert.ok(!all.includes('{{unsubscribe}}'));
  const page = await fetch(`${t.httpUrl}/t/u/${unsub[0]}`);
  assert.equal(page.status, 200);
});
