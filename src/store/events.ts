// The append-only event log. Every event also bumps the hourly rollups the
// stats API reads (so stats never scan this table) and fans out to the
// webhook outbox — all in the caller's transaction, so the three never disagree.
import type { Db } from './db.js';

export const EVENT_TYPES = [
  'queued',
  'scheduled',
  'deferred',
  'delivered',
  'bounced',
  'expired',
  'suppressed',
  'opened',
  'clicked',
  'unsubscribed',
] as const;
export type EventType = (typeof EVENT_TYPES)[number];

export interface MessageRef {
  id: string;
  domain: string;
  tags: string[];
  metadata: Record<string, unknown> | null;
}

export interface EventInput {
  type: EventType;
  at: number;
  recipientId?: number | null;
  recipient?: string | null;
  data?: Record<string, unknown>;
}

export interface EventRow {
  id: number;
  message_id: string;
  recipient_id: number | null;
  recipient: string | null;
  type: EventType;
  at: number;
  data: string | null;
}

const HOUR = 3_600_000;

export class EventLog {
  private s;

  constructor(private db: Db) {
    const p = (sql: string) => db.prepare(sql);
    this.s = {
      insert: p(
        'INSERT INTO events (message_id, recipient_id, recipient, type, at, data) VALUES (?, ?, ?, ?, ?, ?)',
      ),
      bump: p(
        `INSERT INTO stats_hourly (hour, domain, tag, metric, n) VALUES (?, ?, ?, ?, ?)
         ON CONFLICT (tag, domain, hour, metric) DO UPDATE SET n = n + excluded.n`,
      ),
      hooks: p('SELECT id, events FROM webhooks'),
      outbox: p(
        `INSERT INTO webhook_outbox (webhook_id, event_id, payload, status, next_attempt_at, created_at, updated_at)
         VALUES (?, ?, ?, 'pending', ?, ?, ?)`,
      ),
      forMessage: p('SELECT * FROM events WHERE message_id = ? ORDER BY id'),
    };
  }

  /** Adds `n` to a rollup metric for the message's domain, under '' and each of its tags. */
  bump(msg: MessageRef, metric: string, at: number, n = 1): void {
    const hour = Math.floor(at / HOUR) * 3600;
    this.s.bump.run(hour, msg.domain, '', metric, n);
    for (const tag of msg.tags) this.s.bump.run(hour, msg.domain, tag, metric, n);
  }

  /** Records the event; `metrics` are the rollup counters it moves (default: its own type). */
  record(msg: MessageRef, ev: EventInput, metrics: string[] = [ev.type]): number {
    const data = ev.data && Object.keys(ev.data).length ? JSON.stringify(ev.data) : null;
    const { lastInsertRowid } = this.s.insert.run(
      msg.id,
      ev.recipientId ?? null,
      ev.recipient ?? null,
      ev.type,
      ev.at,
      data,
    );
    const id = Number(lastInsertRowid);
    for (const m of metrics) this.bump(msg, m, ev.at);
    this.fanOut(msg, id, ev);
    return id;
  }

  private fanOut(msg: MessageRef, eventId: number, ev: EventInput): void {
    const hooks = this.s.hooks.all() as { id: string; events: string }[];
    if (!hooks.length) return;
    let payload: string | undefined;
    for (const h of hooks) {
      const wanted = JSON.parse(h.events) as string[];
      if (!wanted.includes(ev.type)) continue;
      payload ??= JSON.stringify({
        id: `evt_${eventId}`,
        type: ev.type,
        created_at: new Date(ev.at).toISOString(),
        message_id: msg.id,
        recipient: ev.recipient ?? null,
        data: { ...(ev.data ?? {}), metadata: msg.metadata ?? {}, tags: msg.tags },
      });
      this.s.outbox.run(h.id, eventId, payload, ev.at, ev.at, ev.at);
    }
  }

  forMessage(messageId: string): EventRow[] {
    return this.s.forMessage.all(messageId) as EventRow[];
  }
}
