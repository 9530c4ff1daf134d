// Bulk fixture for the stats benchmark: N messages and ~M events written
// through the storage module's own methods (queue.enqueue, queue.applyOutcome,
// tracking.recordHit), so the rows, the event log and the stats_hourly rollups
// that GET /api/v1/stats reads are exactly what the product would have
// written. Timestamps spread over the last `days` days; a seeded PRNG makes
// every run write the same shape of data.
//
// Per message: 2 recipients (queued events), each delivered (92 %), bounced
// (4 %) or deferred once and then delivered (4 %); then opens and clicks
// (about 2 : 1, some flagged as proxy/bot) on delivered copies until the
// event count reaches the target. The newest `clickTokens` recipients also get
// a click token, so the bench can time a redirect on the big database.
import { openStore } from '../src/store/index.js';
import { prng } from '../test/helpers/prng.js';
import type { NewMessage } from '../src/store/queue.js';
import type { TokenInfo } from '../src/store/tracking.js';
import { newId, newToken } from '../src/util/ids.js';

export interface SeedOptions {
  messages: number;
  events: number;
  days: number;
  /** Recipients (newest first) that get a click token the bench can request. */
  clickTokens: number;
  now?: number;
  onProgress?: (done: number, total: number) => void;
}

export interface SeedResult {
  messages: number;
  recipients: number;
  events: number;
  rollupRows: number;
  tokens: string[];
  ms: number;
}

const DOMAINS = ['sender.test', 'news.sender.test', 'shop.sender.test'];
const TAGS = ['welcome', 'receipt', 'password-reset', 'newsletter', 'digest', 'promo-spring', 'promo-summer', 'invoice', 'shipping', 'survey', 'winback', 'alert'];
const URLS = Array.from({ length: 10 }, (_, i) => `https://www.sender.test/p/item-${i}?utm_source=newsletter&utm_medium=email`);
const CHUNK = 1000;
const HOUR = 3_600_000;

export function seedStore(dataDir: string, o: SeedOptions): SeedResult {
  const t0 = performance.now();
  const now = o.now ?? Date.now();
  const rnd = prng(20261202);
  const store = openStore(dataDir);
  // Fixture generation needs no durability; one fsync at the end is plenty.
  store.db.pragma('synchronous = OFF');
  const body = Buffer.from('From: sender@sender.test\r\nTo: r@rcpt.test\r\nSubject: seeded\r\n\r\nseeded body\r\n');
  const RCPTS = 2;
  const span = o.days * 86_400_000 - 2 * HOUR;
  const tokens: string[] = [];
  let recipients = 0;
  /** Events written so far: each message tops the log up towards its share of the target with opens and clicks. */
  let written = 0;

  const writeOne = (i: number) => {
    const createdAt = now - span + Math.floor((span * i) / o.messages);
    const domain = DOMAINS[Math.floor(rnd() * DOMAINS.length)];
    const tags = rnd() < 0.7 ? [TAGS[Math.floor(rnd() * TAGS.length)]] : [];
    if (rnd() < 0.2) tags.push(TAGS[Math.floor(rnd() * TAGS.length)]);
    const withToken = i >= o.messages - Math.ceil(o.clickTokens / RCPTS);
    const msg: NewMessage = {
      id: newId(createdAt),
      domain,
      mailFrom: `bounces@${domain}`,
      fromHeader: `Sender <hello@${domain}>`,
      subject: `Seeded message ${i}`,
      messageIdHeader: `<seed-${i}@relay.bench.test>`,
      tags: [...new Set(tags)],
      metadata: rnd() < 0.3 ? { user_id: String(Math.floor(rnd() * 1e6)) } : null,
      source: rnd() < 0.8 ? 'smtp' : 'http',
      credentialId: null,
      size: body.length,
      createdAt,
      sendAt: null,
      bodies: [body],
      recipients: Array.from({ length: RCPTS }, (_, r) => {
        const token = withToken ? newToken() : null;
        if (token) tokens.push(token);
        return {
          email: `user${i}-${r}@rcpt${i % 50}.test`,
          rcptDomain: `rcpt${i % 50}.test`,
          bodyIndex: 0,
          status: 'queued' as const,
          tokens: token ? [{ token, kind: 'c' as const, linkIndex: 0, url: URLS[0] }] : [],
        };
      }),
    };
    store.queue.enqueue(msg);
    recipients += RCPTS;

    written += RCPTS;
    const rows = store.queue.recipientsOf(msg.id);
    // queued + outcome (+ a deferral now and then) per recipient, and a little jitter on the rest.
    const due = ((i + 1) * o.events) / o.messages - written - 2.04 * RCPTS;
    let hits = Math.max(0, Math.round(i === o.messages - 1 ? due : due * (0.5 + rnd())));
    rows.forEach((r, ri) => {
      let at = createdAt + 1000 + Math.floor(rnd() * 5000);
      const roll = rnd();
      if (roll < 0.04) {
        store.queue.applyOutcome({ recipientId: r.id, status: 'deferred', reply: '451 4.7.1 Try again later', nextAttemptAt: at + 60_000, at });
        at += 60_000;
        written++;
      }
      if (roll >= 0.04 && roll < 0.08) {
        store.queue.applyOutcome({ recipientId: r.id, status: 'bounced', reply: '550 5.1.1 <x>: Recipient address rejected: User unknown', bounceClass: 'bad-mailbox', at });
        written++;
        return;
      }
      store.queue.applyOutcome({ recipientId: r.id, status: 'delivered', reply: '250 2.0.0 Ok: queued as 4Xk2', at, data: { mx: 'mx.rcpt.test [127.0.0.2]' } });
      written++;
      // The last recipient takes what is left, so the event target is met.
      const share = ri === rows.length - 1 ? hits : Math.ceil(hits / RCPTS);
      for (let h = 0; h < share && hits > 0; h++, hits--) {
        const click = rnd() < 1 / 3;
        const link = Math.floor(rnd() * URLS.length);
        const token: TokenInfo = {
          token: 'seeded',
          kind: click ? 'c' : 'o',
          message_id: msg.id,
          recipient_id: r.id,
          link_index: click ? link : null,
          url: click ? URLS[link] : null,
          email: r.email,
          domain,
        };
        const hitAt = Math.min(now - 1000, at + Math.floor(rnd() * 48 * HOUR));
        const flagged = rnd();
        store.tracking.recordHit({
          token,
          at: hitAt,
          ip: `198.51.100.${Math.floor(rnd() * 250)}`,
          userAgent: 'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0 Safari/537.36',
          isBot: click && flagged < 0.05,
          isProxy: !click && flagged < 0.1,
        });
        written++;
      }
    });
  };

  try {
    for (let start = 0; start < o.messages; start += CHUNK) {
      const end = Math.min(o.messages, start + CHUNK);
      store.db.transaction(() => {
        for (let i = start; i < end; i++) writeOne(i);
      })();
      o.onProgress?.(end, o.messages);
    }
    store.db.pragma('wal_checkpoint(TRUNCATE)');
    // A read-only count for the report; the storage module has no method for table sizes.
    const count = (table: string) => (store.db.prepare(`SELECT count(*) AS n FROM ${table}`).get() as { n: number }).n;
    return { messages: count('messages'), recipients, events: count('events'), rollupRows: count('stats_hourly'), tokens, ms: performance.now() - t0 };
  } finally {
    store.close();
  }
}
