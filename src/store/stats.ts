// Reads of the hourly rollups (never the event log) and per-link counters.
import type { Db } from './db.js';

export interface StatsFilter {
  since: number;
  until: number;
  domain?: string | null;
  tag?: string | null;
}

export class StatsStore {
  constructor(private db: Db) {}

  private where(f: StatsFilter): { sql: string; args: unknown[] } {
    const args: unknown[] = [f.tag ?? '', Math.floor(f.since / 1000), Math.floor(f.until / 1000)];
    let sql = 'tag = ? AND hour >= ? - 3599 AND hour < ?';
    if (f.domain) {
      sql += ' AND domain = ?';
      args.push(f.domain);
    }
    return { sql, args };
  }

  totals(f: StatsFilter): Record<string, number> {
    const { sql, args } = this.where(f);
    const rows = this.db
      .prepare(`SELECT metric, sum(n) AS n FROM stats_hourly WHERE ${sql} GROUP BY metric`)
      .all(...args) as { metric: string; n: number }[];
    return Object.fromEntries(rows.map((r) => [r.metric, r.n]));
  }

  /** Per-period sums; `bucket` is 3600 (hour) or 86400 (day), UTC. */
  series(f: StatsFilter, bucket: number): { period: number; metric: string; n: number }[] {
    const { sql, args } = this.where(f);
    return this.db
      .prepare(
        `SELECT (hour / ${bucket}) * ${bucket} AS period, metric, sum(n) AS n FROM stats_hourly
         WHERE ${sql} GROUP BY period, metric ORDER BY period`,
      )
      .all(...args) as { period: number; metric: string; n: number }[];
  }

  links(f: { messageId?: string; tag?: string }) {
    const base = `SELECT url, sum(clicks) AS clicks, sum(clicks_unique) AS clicks_unique, min(first_at) AS first_at,
      max(last_at) AS last_at FROM link_stats`;
    const tail = 'GROUP BY url ORDER BY clicks DESC, url';
    type Row = { url: string; clicks: number; clicks_unique: number; first_at: number; last_at: number };
    if (f.messageId) return this.db.prepare(`${base} WHERE message_id = ? ${tail}`).all(f.messageId) as Row[];
    if (f.tag) {
      return this.db
        .prepare(`${base} WHERE message_id IN (SELECT message_id FROM message_tags WHERE tag = ?) ${tail}`)
        .all(f.tag) as Row[];
    }
    return this.db.prepare(`${base} ${tail}`).all() as Row[];
  }
}
