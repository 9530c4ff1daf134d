// Tracking tokens and the hits recorded against them.
import type { Db } from './db.js';
import type { EventLog } from './events.js';
import type { QueueStore } from './queue.js';
import type { TenantStore } from './tenants.js';

export interface TokenInfo {
  token: string;
  kind: 'c' | 'o' | 'u';
  message_id: string;
  recipient_id: number;
  link_index: number | null;
  url: string | null;
  email: string;
  domain: string;
}

export interface Hit {
  token: TokenInfo;
  at: number;
  ip: string;
  userAgent: string;
  isBot: boolean;
  isProxy: boolean;
  detail?: Record<string, unknown>;
}

export class TrackingStore {
  private s;

  constructor(
    db: Db,
    private events: EventLog,
    private queue: QueueStore,
    private tenants: TenantStore,
  ) {
    const p = (sql: string) => db.prepare(sql);
    this.s = {
      token: p(
        `SELECT t.*, r.email, m.domain FROM tracking_tokens t
         JOIN recipients r ON r.id = t.recipient_id JOIN messages m ON m.id = t.message_id
         WHERE t.token = ?`,
      ),
      firstOpen: p('UPDATE recipients SET first_open_at = ? WHERE id = ? AND first_open_at IS NULL'),
      firstClick: p('UPDATE recipients SET first_click_at = ? WHERE id = ? AND first_click_at IS NULL'),
      clicker: p('INSERT OR IGNORE INTO link_clickers (message_id, url, recipient_id) VALUES (?, ?, ?)'),
      linkStat: p(
        `INSERT INTO link_stats (message_id, url, clicks, clicks_unique, first_at, last_at) VALUES (?, ?, 1, ?, ?, ?)
         ON CONFLICT (message_id, url) DO UPDATE SET clicks = clicks + 1,
           clicks_unique = clicks_unique + excluded.clicks_unique, last_at = max(last_at, excluded.last_at)`,
      ),
      // ORDER BY at (not id) so the events_recipient index yields the newest rows and LIMIT
      // stops the scan: sorting by id read every click in the window first, and a link
      // clicked thousands of times in seconds (a scanner, a load test) made each hit O(n).
      recentClicks: p(
        `SELECT at, data FROM events WHERE recipient_id = ? AND type = 'clicked' AND at >= ? ORDER BY at DESC LIMIT 20`,
      ),
      deliveredAt: p(`SELECT max(at) AS at FROM events WHERE recipient_id = ? AND type = 'delivered'`),
    };
  }

  lookup(token: string): TokenInfo | undefined {
    return this.s.token.get(token) as TokenInfo | undefined;
  }

  /** When the recipient's copy was delivered (for the "clicked seconds after delivery" scanner heuristic). */
  deliveredAt(recipientId: number): number | null {
    return (this.s.deliveredAt.get(recipientId) as { at: number | null }).at;
  }

  recentClickLinks(recipientId: number, since: number): number[] {
    const rows = this.s.recentClicks.all(recipientId, since) as { data: string | null }[];
    return rows.map((r) => (r.data ? (JSON.parse(r.data).link_index as number) : -1));
  }

  /** Writes one open or click (called inside a committer batch). */
  recordHit(h: Hit): void {
    const ref = this.queue.ref(h.token.message_id);
    if (!ref) return;
    const flagged = h.isBot || h.isProxy;
    const click = h.token.kind === 'c';
    const type = click ? 'clicked' : 'opened';
    const metrics: string[] = [];
    if (flagged) metrics.push(`${type}_flagged`);
    else {
      metrics.push(type);
      const first = (click ? this.s.firstClick : this.s.firstOpen).run(h.at, h.token.recipient_id).changes > 0;
      if (first) metrics.push(`${type}_unique`);
      if (click && h.token.url) {
        const newClicker = this.s.clicker.run(h.token.message_id, h.token.url, h.token.recipient_id).changes;
        this.s.linkStat.run(h.token.message_id, h.token.url, newClicker, h.at, h.at);
      }
    }
    const data: Record<string, unknown> = {
      ip: h.ip,
      user_agent: h.userAgent,
      is_bot: h.isBot,
      is_proxy: h.isProxy,
      ...(h.detail ?? {}),
    };
    if (click) Object.assign(data, { url: h.token.url, link_index: h.token.link_index });
    this.events.record(
      ref,
      { type, at: h.at, recipientId: h.token.recipient_id, recipient: h.token.email, data },
      metrics,
    );
  }

  /** One-click unsubscribe: suppress on the sending domain; returns false when already suppressed. */
  unsubscribe(token: TokenInfo, at: number, data: Record<string, unknown>): boolean {
    const ref = this.queue.ref(token.message_id);
    if (!ref) return false;
    if (!this.tenants.suppress(token.domain, token.email, 'unsubscribe', at)) return false;
    this.events.record(ref, { type: 'unsubscribed', at, recipientId: token.recipient_id, recipient: token.email, data });
    return true;
  }
}
