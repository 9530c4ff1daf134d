// Webhook endpoints and their durable outbox.
import { durableBeforeSharing, type Db } from './db.js';

export interface WebhookRow {
  id: string;
  url: string;
  events: string;
  secret: string;
  created_at: number;
}

export interface OutboxRow {
  id: number;
  webhook_id: string;
  event_id: number;
  payload: string;
  status: 'pending' | 'delivered' | 'failed';
  attempts: number;
  next_attempt_at: number;
  last_status: number | null;
  last_error: string | null;
  created_at: number;
  updated_at: number;
  url: string;
  secret: string;
}

export class WebhookStore {
  private s;

  constructor(private db: Db) {
    const p = (sql: string) => db.prepare(sql);
    this.s = {
      insert: p('INSERT INTO webhooks (id, url, events, secret, created_at) VALUES (?, ?, ?, ?, ?)'),
      list: p('SELECT * FROM webhooks ORDER BY created_at, id'),
      get: p('SELECT * FROM webhooks WHERE id = ?'),
      remove: p('DELETE FROM webhooks WHERE id = ?'),
      dropOutbox: p(`DELETE FROM webhook_outbox WHERE webhook_id = ? AND status = 'pending'`),
      due: p(
        `SELECT o.*, w.url, w.secret FROM webhook_outbox o JOIN webhooks w ON w.id = o.webhook_id
         WHERE o.status = 'pending' AND o.next_attempt_at <= ? AND (o.lease_until IS NULL OR o.lease_until < ?)
           AND o.webhook_id NOT IN (SELECT value FROM json_each(?))
         ORDER BY o.next_attempt_at LIMIT ?`,
      ),
      lease: p('UPDATE webhook_outbox SET lease_until = ? WHERE id = ?'),
      releaseAll: p('UPDATE webhook_outbox SET lease_until = NULL WHERE lease_until IS NOT NULL'),
      result: p(
        `UPDATE webhook_outbox SET status = ?, attempts = attempts + 1, next_attempt_at = ?, lease_until = NULL,
           last_status = ?, last_error = ?, updated_at = ? WHERE id = ?`,
      ),
      recent: p(
        `SELECT id, event_id, status, attempts, last_status, last_error, created_at, updated_at, next_attempt_at
         FROM webhook_outbox WHERE webhook_id = ? ORDER BY id DESC LIMIT ?`,
      ),
      nextDue: p(`SELECT min(next_attempt_at) AS t FROM webhook_outbox WHERE status = 'pending'`),
    };
  }

  add(row: WebhookRow): void {
    this.s.insert.run(row.id, row.url, row.events, row.secret, row.created_at);
  }
  list(): WebhookRow[] {
    return this.s.list.all() as WebhookRow[];
  }
  get(id: string): WebhookRow | undefined {
    return this.s.get.get(id) as WebhookRow | undefined;
  }
  remove(id: string): boolean {
    return this.db.transaction(() => {
      this.s.dropOutbox.run(id);
      return this.s.remove.run(id).changes > 0;
    })();
  }

  claimDue(
    now: number,
    limit: number,
    busyHooks: string[],
    leaseMs: number,
    /** Chooses, inside the claim's transaction, which due rows to lease (default: all). */
    pick: (due: OutboxRow[]) => OutboxRow[] = (due) => due,
  ): OutboxRow[] {
    // Delivery outcomes (and their events) are committed without an fsync; the events
    // claimed here are about to be POSTed, so they must be durable first.
    return durableBeforeSharing(this.db, () =>
      this.db
        .transaction(() => {
          const rows = pick(this.s.due.all(now, now, JSON.stringify(busyHooks), limit) as OutboxRow[]);
          for (const r of rows) this.s.lease.run(now + leaseMs, r.id);
          return rows;
        })
        .immediate(),
    );
  }
  releaseAllLeases(): void {
    this.s.releaseAll.run();
  }
  result(id: number, r: { status: OutboxRow['status']; nextAttemptAt: number; httpStatus: number | null; error: string | null; at: number }): void {
    this.s.result.run(r.status, r.nextAttemptAt, r.httpStatus, r.error, r.at, id);
  }
  recent(webhookId: string, limit = 20) {
    return this.s.recent.all(webhookId, limit) as Omit<OutboxRow, 'payload' | 'url' | 'secret' | 'webhook_id'>[];
  }
  nextDueAt(): number | null {
    return (this.s.nextDue.get() as { t: number | null }).t;
  }
}
