import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BURST_DISTINCT_LINKS, classifyHit, MIN_HUMAN_CLICK_DELAY_MS, type HitInput } from '../../src/tracking/hit-classify.js';

const UA = {
  chromeWindows:
    'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36',
  safariIphone:
    'Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 Mobile/15E148 Safari/604.1',
  safariIpad:
    'Mozilla/5.0 (iPad; CPU OS 16_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/16.6 Mobile/15E148 Safari/604.1',
  chromeAndroid:
    'Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.6099.144 Mobile Safari/537.36',
  safariMac:
    'Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 Safari/605.1.15',
  outlookDesktop:
    'Mozilla/4.0 (compatible; MSIE 7.0; Windows NT 10.0; WOW64; Trident/7.0; .NET4.0C; .NET4.0E; Microsoft Outlook 16.0.17126; ms-office; MSOffice 16)',
  thunderbird: 'Mozilla/5.0 (X11; Linux x86_64; rv:115.0) Gecko/20100101 Thunderbird/115.5.0',
  gmailProxy: 'Mozilla/5.0 (Windows NT 5.1; rv:11.0) Gecko Firefox/11.0 (via ggpht.com GoogleImageProxy)',
  yahooProxy: 'YahooMailProxy; https://help.yahoo.com/kb/yahoo-mail-proxy-SLN28749.html',
  appleMppBare: 'Mozilla/5.0',
  appleMail: 'Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko)',
  curl: 'curl/8.4.0',
  googlebot: 'Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)',
  barracuda: 'Barracuda Sentinel (EE)',
  officeProbe: 'Microsoft Office Existence Discovery',
  pythonRequests: 'python-requests/2.31.0',
};

const T0 = 1_700_000_000_000;
const hit = (over: Partial<HitInput>): HitInput => ({
  userAgent: UA.chromeWindows,
  ip: '203.0.113.7',
  kind: 'open',
  deliveredAt: T0,
  at: T0 + 60_000,
  ...over,
});

test('people in browsers and mail clients are neither bots nor proxies, with parsed UA', () => {
  const cases: [string, 'open' | 'click', { browser?: string; os?: string; device?: string }][] = [
    [UA.chromeWindows, 'click', { browser: 'Chrome 120', os: 'Windows 10', device: 'desktop' }],
    [UA.safariIphone, 'click', { browser: 'Mobile Safari 17', os: 'iOS 17.1', device: 'mobile' }],
    [UA.safariIpad, 'open', { browser: 'Mobile Safari 16', os: 'iOS 16.6', device: 'tablet' }],
    [UA.chromeAndroid, 'click', { browser: 'Chrome 120', os: 'Android 14', device: 'mobile' }],
    [UA.safariMac, 'open', { browser: 'Safari 17', os: 'Mac OS 10.15.7', device: 'desktop' }],
    [UA.outlookDesktop, 'open', { browser: 'Outlook 16', os: 'Windows 10', device: 'desktop' }],
    [UA.thunderbird, 'open', { browser: 'Thunderbird 115', os: 'Linux', device: 'desktop' }],
  ];
  for (const [userAgent, kind, ua] of cases) {
    const r = classifyHit(hit({ userAgent, kind }));
    assert.deepEqual(r, { isBot: false, isProxy: false, ua }, userAgent);
  }
});

test('mail-privacy proxies are flagged is_proxy, not is_bot (isbot alone would call them bots)', () => {
  const gmail = classifyHit(hit({ userAgent: UA.gmailProxy }));
  assert.deepEqual([gmail.isProxy, gmail.isBot, gmail.reason], [true, false, 'gmail-image-proxy']);
  const yahoo = classifyHit(hit({ userAgent: UA.yahooProxy }));
  assert.deepEqual([yahoo.isProxy, yahoo.isBot, yahoo.reason], [true, false, 'yahoo-mail-proxy']);
  const bare = classifyHit(hit({ userAgent: UA.appleMppBare }));
  assert.deepEqual([bare.isProxy, bare.isBot, bare.reason], [true, false, 'apple-mail-privacy-protection']);
  const mail = classifyHit(hit({ userAgent: UA.appleMail }));
  assert.deepEqual([mail.isProxy, mail.isBot], [true, false]);
  assert.deepEqual(mail.ua, { browser: 'Apple Mail', os: 'Mac OS 10.15.7', device: 'desktop' });
});

test('the Apple MPP heuristic applies to opens only; Safari with Version/Safari tokens is a person', () => {
  const click = classifyHit(hit({ userAgent: UA.appleMail, kind: 'click' }));
  assert.deepEqual([click.isProxy, click.isBot], [false, false]);
  assert.equal(classifyHit(hit({ userAgent: UA.safariMac })).isProxy, false);
  // A bare `Mozilla/5.0` clicking is no proxy and no browser: isbot flags it.
  const bareClick = classifyHit(hit({ userAgent: UA.appleMppBare, kind: 'click' }));
  assert.deepEqual([bareClick.isProxy, bareClick.isBot], [false, true]);
});

test('tools, crawlers and security scanners are bots', () => {
  for (const [userAgent, reason] of [
    [UA.curl, 'bot-user-agent'],
    [UA.googlebot, 'bot-user-agent'],
    [UA.pythonRequests, 'bot-user-agent'],
    [UA.barracuda, 'scanner:Barracuda'],
    [UA.officeProbe, 'scanner:Microsoft Office link probe'],
  ]) {
    for (const kind of ['open', 'click'] as const) {
      const r = classifyHit(hit({ userAgent, kind }));
      assert.deepEqual([r.isBot, r.isProxy, r.reason], [true, false, reason], `${userAgent} ${kind}`);
    }
  }
});

test('gateway tokens anywhere in a browser-like UA mark a scanner', () => {
  const tokens: [string, string][] = [
    ['Mimecast', 'Mimecast'],
    ['Proofpoint', 'Proofpoint'],
    ['Symantec', 'Symantec'],
    ['TrendMicro', 'Trend Micro'],
    ['Cisco IronPort', 'Cisco IronPort'],
    ['Sophos', 'Sophos'],
    ['Forcepoint', 'Forcepoint'],
    ['SafeLinks', 'Microsoft SafeLinks'],
  ];
  for (const [token, label] of tokens) {
    const r = classifyHit(hit({ userAgent: `${UA.chromeWindows} ${token}/1.0`, kind: 'click' }));
    assert.equal(r.isBot, true, token);
    assert.equal(r.reason, `scanner:${label}`);
  }
});

test('an empty or blank user agent is a bot', () => {
  for (const userAgent of ['', '   ']) {
    const r = classifyHit(hit({ userAgent }));
    assert.deepEqual(r, { isBot: true, isProxy: false, reason: 'empty-user-agent', ua: {} });
  }
});

test('clicks on two links sooner than ~2 s after delivery are a scanner; one quick click, later clicks or opens are not', () => {
  const early = classifyHit(hit({ kind: 'click', at: T0 + 800, linkIndex: 1, priorClickLinkIndexes: [0] }));
  assert.deepEqual([early.isBot, early.reason], [true, 'click-too-soon-after-delivery']);
  const edge = classifyHit(hit({ kind: 'click', at: T0 + MIN_HUMAN_CLICK_DELAY_MS - 1, linkIndex: 1, priorClickLinkIndexes: [0] }));
  assert.equal(edge.isBot, true);
  const beforeDelivery = classifyHit(hit({ kind: 'click', at: T0 - 50, linkIndex: 1, priorClickLinkIndexes: [0] }));
  assert.equal(beforeDelivery.isBot, true, 'clicks before our delivered timestamp are a gateway too');
  assert.equal(classifyHit(hit({ kind: 'click', at: T0 + 800, linkIndex: 0 })).isBot, false, 'a single quick click is a reader');
  assert.equal(classifyHit(hit({ kind: 'click', at: T0 + 800, linkIndex: 0, priorClickLinkIndexes: [0] })).isBot, false, 'the same link twice is a reader');
  assert.equal(classifyHit(hit({ kind: 'click', at: T0 + MIN_HUMAN_CLICK_DELAY_MS, linkIndex: 1, priorClickLinkIndexes: [0] })).isBot, false);
  assert.equal(classifyHit(hit({ kind: 'open', at: T0 + 100 })).isBot, false);
  assert.equal(classifyHit(hit({ kind: 'click', deliveredAt: undefined, at: T0 })).isBot, false);
});

test('several different links hit in a burst is a scanner; repeats of one link are not', () => {
  assert.equal(BURST_DISTINCT_LINKS, 3);
  const burst = classifyHit(hit({ kind: 'click', linkIndex: 2, priorClickLinkIndexes: [0, 1] }));
  assert.deepEqual([burst.isBot, burst.reason], [true, 'multi-link-burst']);
  assert.equal(classifyHit(hit({ kind: 'click', linkIndex: 0, priorClickLinkIndexes: [0, 0, 0] })).isBot, false);
  assert.equal(classifyHit(hit({ kind: 'click', linkIndex: 1, priorClickLinkIndexes: [0] })).isBot, false);
  assert.equal(classifyHit(hit({ kind: 'click', linkIndex: 1, priorClickLinkIndexes: [] })).isBot, false);
  assert.equal(classifyHit(hit({ kind: 'open', linkIndex: 2, priorClickLinkIndexes: [0, 1] })).isBot, false);
});

test('signals combine into one reason', () => {
  const r = classifyHit(hit({ userAgent: UA.barracuda, kind: 'click', at: T0 + 10, linkIndex: 5, priorClickLinkIndexes: [3, 4] }));
  assert.equal(r.isBot, true);
  assert.equal(r.reason, 'scanner:Barracuda; click-too-soon-after-delivery; multi-link-burst');
  const proxyClickFast = classifyHit(hit({ userAgent: UA.gmailProxy, kind: 'click', at: T0 + 10 }));
  assert.deepEqual([proxyClickFast.isProxy, proxyClickFast.isBot], [true, true]);
});
