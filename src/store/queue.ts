// Messages, their stored bodies and one row per recipient: the delivery queue.
import { withoutFsync, type Db } from './db.js';
import type { EventLog, EventType, MessageRef } from './events.js';

export type RecipientStatus =
  | 'queued'
  | 'scheduled'
  | 'deferred'
  | 'delivered'
  | 'bounced'
  | 'expired'
  | 'suppressed';

export interface NewToken {
  token: string;
  kind: 'c' | 'o' | 'u';
  linkIndex?: number | null;
  url?: string | null;
}

export interface NewMessage {
  id: string;
  domain: string;
  mailFrom: string;
  fromHeader: string | null;
  subject: string | null;
  messageIdHeader: string | null;
  tags: string[];
  metadata: Record<string, unknown> | null;
  source: 'smtp' | 'http';
  credentialId: string | null;
  size: number;
  createdAt: number;
  sendAt: number | null;
  bodies: Buffer[];
  /** Merged into each recipient's queued/scheduled event. */
  eventData?: Record<string, unknown>;
  recipients: {
    email: string;
    rcptDomain: string;
    bodyIndex: number;
    status: 'queued' | 'scheduled' | 'suppressed';
    reason?: string;
    tokens: NewToken[];
  }[];
}

export interface MessageRow {
  id: string;
  domain: string;
  mail_from: string;
  from_header: string | null;
  subject: string | null;
  message_id_header: string | null;
  tags: string;
  metadata: string | null;
  source: string;
  credential_id: string | null;
  size: number;
  created_at: number;
  send_at: number | null;
}

export interface RecipientRow {
  id: number;
  message_id: string;
  body_id: number | null;
  email: string;
  rcpt_domain: string;
  status: RecipientStatus;
  attempts: number;
  next_attempt_at: number | null;
  lease_until: number | null;
  last_reply: string | null;
  bounce_class: string | null;
  updated_at: number;
  first_open_at: number | null;
  first_click_at: number | null;
}

export interface ClaimedRecipient extends RecipientRow {
  mail_from: string;
  created_at: number;
  /** When a scheduled message became due; null when it was sent at once. */
  send_at: number | null;
  msg_domain: string;
}

export interface AttemptOutcome {
  recipientId: number;
  status: 'delivered' | 'deferred' | 'bounced' | 'expired';
  reply: string;
  bounceClass?: string | null;
  nextAttemptAt?: number | null;
  at: number;
  /** Extra event data (e.g. the MX host). */
  data?: Record<string, unknown>;
  /**
   * Which attempt this is (the recipient's attempts + 1 when it was claimed). Given, an
   * outcome already recorded is not recorded again: replaying the outcome journal after
   * a crash may meet entries whose commit did land.
   */
  attempt?: number;
}

export interface MessageFilter {
  status?: string;
  tag?: string;
  domain?: string;
  recipient?: string;
  since?: number;
  until?: number;
  limit: number;
  offset: number;
}

export const messageRef = (m: MessageRow): MessageRef => ({
  id: m.id,
  domain: m.domain,
  tags: JSON.parse(m.tags) as string[],
  metadata: m.metadata ? (JSON.parse(m.metadata) as Record<string, unknown>) : null,
});

export class QueueStore {
  private s;
  private refCache = new Map<string, MessageRef>();

  constructor(
    private db: Db,
    private events: EventLog,
  ) {
    const p = (sql: string) => db.prepare(sql);
    this.s = {
      insertMessage: p(
        `INSERT INTO messages (id, domain, mail_from, from_header, subject, message_id_header, tags, metadata,
           source, credential_id, size, created_at, send_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      ),
      insertTag: p('INSERT OR IGNORE INTO message_tags (tag, message_id) VALUES (?, ?)'),
      insertBody: p('INSERT INTO bodies (message_id, data) VALUES (?, ?)'),
      insertRecipient: p(
        `INSERT INTO recipients (message_id, body_id, email, rcpt_domain, status, next_attempt_at, updated_at)
         VALUES (?, ?, ?, ?, ?, ?, ?)`,
      ),
      insertToken: p(
        'INSERT INTO tracking_tokens (token, kind, message_id, recipient_id, link_index, url) VALUES (?, ?, ?, ?, ?, ?)',
      ),
      due: p(
        `SELECT r.*, m.mail_from, m.created_at, m.send_at, m.domain AS msg_domain FROM recipients r JOIN messages m ON m.id = r.message_id
         WHERE r.next_attempt_at <= ? AND (r.lease_until IS NULL OR r.lease_until < ?)
           AND r.rcpt_domain NOT IN (SELECT value FROM json_each(?))
         ORDER BY r.next_attempt_at LIMIT ?`,
      ),
      lease: p('UPDATE recipients SET lease_until = ? WHERE id = ?'),
      releaseAll: p('UPDATE recipients SET lease_until = NULL WHERE lease_until IS NOT NULL'),
      release: p('UPDATE recipients SET lease_until = NULL WHERE id = ?'),
      body: p('SELECT data FROM bodies WHERE id = ?'),
      recipient: p('SELECT * FROM recipients WHERE id = ?'),
      update: p(
        `UPDATE recipients SET status = ?, attempts = attempts + 1, next_attempt_at = ?, lease_until = NULL,
           last_reply = ?, bounce_class = ?, updated_at = ? WHERE id = ?`,
      ),
      message: p('SELECT * FROM messages WHERE id = ?'),
      recipientsOf: p('SELECT * FROM recipients WHERE message_id = ? ORDER BY id'),
      recipientsOfMany: p('SELECT * FROM recipients WHERE message_id IN (SELECT value FROM json_each(?)) ORDER BY id'),
      pending: p(
        `SELECT count(*) AS n, min(m.created_at) AS oldest FROM recipients r JOIN messages m ON m.id = r.message_id
         WHERE r.next_attempt_at IS NOT NULL`,
      ),
      nextDue: p('SELECT min(next_attempt_at) AS t FROM recipients WHERE next_attempt_at IS NOT NULL AND lease_until IS NULL'),
      pruneBodies: p(
        `DELETE FROM bodies WHERE message_id = ? AND NOT EXISTS
           (SELECT 1 FROM recipients WHERE message_id = ? AND next_attempt_at IS NOT NULL)`,
      ),
      bounces: p(
        `SELECT r.email, r.status, r.bounce_class, r.last_reply, r.updated_at, r.attempts, m.id AS message_id,
           m.domain, m.mail_from, m.subject
         FROM recipients r JOIN messages m ON m.id = r.message_id
         WHERE r.status IN ('bounced', 'expired') AND r.updated_at >= ? AND r.updated_at < ?
           AND (? IS NULL OR r.bounce_class = ?) AND (? IS NULL OR m.domain = ?)
         ORDER BY r.updated_at DESC LIMIT ? OFFSET ?`,
      ),
      countBounces: p(
        `SELECT count(*) AS n FROM recipients r JOIN messages m ON m.id = r.message_id
         WHERE r.status IN ('bounced', 'expired') AND r.updated_at >= ? AND r.updated_at < ?
           AND (? IS NULL OR r.bounce_class = ?) AND (? IS NULL OR m.domain = ?)`,
      ),
    };
  }

  /** Inserts a whole accepted message. Run inside the committer: durable once its promise resolves. */
  enqueue(m: NewMessage): void {
    this.s.insertMessage.run(
      m.id,
      m.domain,
      m.mailFrom,
      m.fromHeader,
      m.subject,
      m.messageIdHeader,
      JSON.stringify(m.tags),
      m.metadata ? JSON.stringify(m.metadata) : null,
      m.source,
      m.credentialId,
      m.size,
      m.createdAt,
      m.sendAt,
    );
    for (const tag of m.tags) this.s.insertTag.run(tag, m.id);
    const bodyIds = m.bodies.map((b) => Number(this.s.insertBody.run(m.id, b).lastInsertRowid));
    const ref: MessageRef = { id: m.id, domain: m.domain, tags: m.tags, metadata: m.metadata };
    for (const r of m.recipients) {
      const live = r.status !== 'suppressed';
      const next = r.status === 'scheduled' ? m.sendAt : live ? m.createdAt : null;
      const { lastInsertRowid } = this.s.insertRecipient.run(
        m.id,
        live ? bodyIds[r.bodyIndex] : null,
        r.email,
        r.rcptDomain,
        r.status,
        next,
        m.createdAt,
      );
      const rid = Number(lastInsertRowid);
      for (const t of r.tokens) this.s.insertToken.run(t.token, t.kind, m.id, rid, t.linkIndex ?? null, t.url ?? null);
      this.events.bump(ref, 'accepted', m.createdAt);
      const data: Record<string, unknown> = r.status === 'suppressed' ? {} : { ...m.eventData };
      if (r.status === 'scheduled') data.send_at = new Date(m.sendAt!).toISOString();
      if (r.reason) data.reason = r.reason;
      this.events.record(ref, { type: r.status, at: m.createdAt, recipientId: rid, recipient: r.email, data });
    }
    if (m.recipients.every((r) => r.status === 'suppressed')) this.s.pruneBodies.run(m.id, m.id);
  }

  /**
   * Leases up to `limit` due recipients. Domains already at their concurrency
   * limit are excluded in SQL so a slow domain's backlog cannot crowd out the rest.
   */
  claimDue(
    now: number,
    limit: number,
    busyDomains: string[],
    leaseMs: number,
    /** Chooses, inside the claim's transaction, which due rows to lease (default: all). */
    pick: (due: ClaimedRecipient[]) => ClaimedRecipient[] = (due) => due,
  ): ClaimedRecipient[] {
    return withoutFsync(this.db, () =>
      this.db
        .transaction(() => {
          const rows = pick(this.s.due.all(now, now, JSON.stringify(busyDomains), limit) as ClaimedRecipient[]);
          for (const r of rows) this.s.lease.run(now + leaseMs, r.id);
          return rows;
        })
        .immediate(),
    );
  }

  /** At start-up: whatever a crashed process had claimed is due again at once. */
  releaseAllLeases(): number {
    return this.s.releaseAll.run().changes;
  }
  release(recipientId: number): void {
    this.s.release.run(recipientId);
  }

  body(bodyId: number): Buffer | undefined {
    return (this.s.body.get(bodyId) as { data: Buffer } | undefined)?.data;
  }

  recipient(id: number): RecipientRow | undefined {
    return this.s.recipient.get(id) as RecipientRow | undefined;
  }

  ref(messageId: string): MessageRef | undefined {
    let ref = this.refCache.get(messageId);
    if (!ref) {
      const m = this.message(messageId);
      if (!m) return undefined;
      ref = messageRef(m);
      if (this.refCache.size > 10_000) this.refCache.clear();
      this.refCache.set(messageId, ref);
    }
    return ref;
  }

  /** Records one attempt's outcome for a recipient (attempts + 1, event, rollup). */
  /** Returns whether it was recorded (false: no such recipient, or this attempt is recorded already). */
  applyOutcome(o: AttemptOutcome): boolean {
    const r = this.recipient(o.recipientId);
    if (!r) return false;
    if (o.attempt !== undefined && r.attempts >= o.attempt) return false;
    const ref = this.ref(r.message_id)!;
    const final = o.status !== 'deferred';
    this.s.update.run(o.status, final ? null : (o.nextAttemptAt ?? o.at), o.reply, o.bounceClass ?? null, o.at, r.id);
    const data: Record<string, unknown> = { reply: o.reply, attempt: r.attempts + 1, ...(o.data ?? {}) };
    if (o.bounceClass) data.bounce_class = o.bounceClass;
    this.events.record(ref, { type: o.status as EventType, at: o.at, recipientId: r.id, recipient: r.email, data });
    if (final) this.s.pruneBodies.run(r.message_id, r.message_id);
    return true;
  }

  message(id: string): MessageRow | undefined {
    return this.s.message.get(id) as MessageRow | undefined;
  }
  recipientsOf(messageId: string): RecipientRow[] {
    return this.s.recipientsOf.all(messageId) as RecipientRow[];
  }

  /** Recipients of several messages in one query (a page of the message list). */
  recipientsOfMessages(messageIds: string[]): RecipientRow[] {
    if (!messageIds.length) return [];
    return this.s.recipientsOfMany.all(JSON.stringify(messageIds)) as RecipientRow[];
  }

  listMessages(f: MessageFilter): { rows: MessageRow[]; total: number } {
    const where: string[] = [];
    const args: unknown[] = [];
    if (f.since !== undefined) (where.push('m.created_at >= ?'), args.push(f.since));
    if (f.until !== undefined) (where.push('m.created_at < ?'), args.push(f.until));
    if (f.domain) (where.push('m.domain = ?'), args.push(f.domain));
    if (f.tag) (where.push('EXISTS (SELECT 1 FROM message_tags t WHERE t.message_id = m.id AND t.tag = ?)'), args.push(f.tag));
    if (f.status || f.recipient) {
      const cond = ['r.message_id = m.id'];
      if (f.status) (cond.push('r.status = ?'), args.push(f.status));
      // Local parts keep their case as submitted; the domain is stored lowercase.
      if (f.recipient) (cond.push('r.email IN (?, ?)'), args.push(f.recipient, f.recipient.toLowerCase()));
      where.push(`EXISTS (SELECT 1 FROM recipients r WHERE ${cond.join(' AND ')})`);
    }
    const w = where.length ? `WHERE ${where.join(' AND ')}` : '';
    const total = (this.db.prepare(`SELECT count(*) AS n FROM messages m ${w}`).get(...args) as { n: number }).n;
    const rows = this.db
      .prepare(`SELECT m.* FROM messages m ${w} ORDER BY m.created_at DESC, m.id DESC LIMIT ? OFFSET ?`)
      .all(...args, f.limit, f.offset) as MessageRow[];
    return { rows, total };
  }

  bounces(f: { since: number; until: number; bounceClass?: string | null; domain?: string | null; limit: number; offset: number }) {
    const c = f.bounceClass ?? null;
    const d = f.domain ?? null;
    const total = (this.s.countBounces.get(f.since, f.until, c, c, d, d) as { n: number }).n;
    const rows = this.s.bounces.all(f.since, f.until, c, c, d, d, f.limit, f.offset) as {
      email: string;
      status: string;
      bounce_class: string | null;
      last_reply: string | null;
      updated_at: number;
      attempts: number;
      message_id: string;
      domain: string;
      mail_from: string;
      subject: string | null;
    }[];
    return { rows, total };
  }

  /** Recipients not yet final, and the acceptance time of the oldest. */
  pending(): { count: number; oldest: number | null } {
    const r = this.s.pending.get() as { n: number; oldest: number | null };
    return { count: r.n, oldest: r.oldest };
  }

  nextDueAt(): number | null {
    return (this.s.nextDue.get() as { t: number | null }).t;
  }
}
