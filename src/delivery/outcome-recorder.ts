// Records delivery outcomes: first in the outcome journal (a file append that
// never waits for a lock), then in the database as soon as its write lock is
// free. The delivery thread's connection does not block on that lock
// (busy_timeout 0): while the main thread's group commit holds it for its
// fsync, the replies of other deliveries keep being read and journaled.
import type { Logger } from 'pino';
import { isBusyError } from '../store/db.js';
import type { Store } from '../store/index.js';
import type { JournalEntry, OutcomeJournal } from '../store/outcome-journal.js';

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export class OutcomeRecorder {
  /** Journaled, not yet in the database. */
  private pending: JournalEntry[] = [];
  private soon: NodeJS.Immediate | null = null;
  private retry: NodeJS.Timeout | null = null;
  private failWait = 200;
  private closed = false;

  constructor(
    private store: Store,
    private journal: OutcomeJournal,
    private log: Logger,
  ) {}

  /** Applies what a previous process journaled and did not get into the database. */
  replay(): { applied: number; skipped: number; torn: number } {
    const { entries, torn } = this.journal.read();
    let applied = 0;
    if (entries.length) this.store.committer.runNow(() => (applied = this.apply(entries)));
    this.journal.clear();
    return { applied, skipped: entries.length - applied, torn };
  }

  /** Resolves once the outcomes are recorded: journaled, or (if the journal fails) in the database. */
  async record(entries: JournalEntry[]): Promise<void> {
    if (this.closed) throw new Error('the delivery worker has stopped; the attempt is repeated at next start');
    try {
      this.journal.append(entries);
      this.pending.push(...entries);
      // After this turn: replies that arrived together are all journaled first, then go
      // to the database in one transaction.
      if (!this.soon && !this.retry) this.soon = setImmediate(() => this.flush());
      return;
    } catch (err) {
      this.log.error({ err, rcpts: entries.length }, 'writing the outcome journal failed; recording in the database directly');
    }
    // The rows stay leased to us until this lands, so keep trying: giving up would leave them
    // leased for 15 minutes, and attempting them again sends a copy the remote already took.
    for (let wait = 200; ; wait = Math.min(wait * 2, 2000)) {
      if (this.closed) throw new Error('the delivery worker stopped before the outcome was recorded; the attempt is repeated at next start');
      try {
        this.store.committer.runNow(() => this.apply(entries));
        return;
      } catch (err) {
        if (isBusyError(err)) {
          await sleep(2);
          continue;
        }
        this.log.error({ err, rcpts: entries.length }, `recording delivery outcomes failed; retrying in ${wait} ms`);
        await sleep(wait);
      }
    }
  }

  /** Moves pending outcomes into the database now if its lock is free, else soon. */
  flush(): boolean {
    this.cancelRetry();
    if (!this.pending.length) return true;
    const batch = this.pending;
    try {
      this.store.committer.runNow(() => this.apply(batch));
    } catch (err) {
      if (isBusyError(err)) {
        this.retry = setTimeout(() => this.flush(), 2);
      } else {
        this.log.error({ err, rcpts: batch.length }, `recording delivery outcomes in the database failed; they are journaled, retrying in ${this.failWait} ms`);
        this.retry = setTimeout(() => this.flush(), this.failWait);
        this.failWait = Math.min(this.failWait * 2, 2000);
      }
      return false;
    }
    this.failWait = 200;
    this.pending = this.pending.slice(batch.length);
    if (!this.pending.length) this.journal.clear();
    return true;
  }

  /** At stop: a last, waiting attempt; what still fails stays journaled for the next start. */
  close(): void {
    this.closed = true;
    this.store.setBusyTimeout(5000);
    if (!this.flush()) this.log.warn({ rcpts: this.pending.length }, 'delivery outcomes left in the journal; recorded at next start');
    this.cancelRetry();
    this.journal.close();
  }

  private cancelRetry(): void {
    if (this.soon) clearImmediate(this.soon);
    if (this.retry) clearTimeout(this.retry);
    this.soon = this.retry = null;
  }

  private apply(entries: JournalEntry[]): number {
    let n = 0;
    for (const e of entries) {
      if (!this.store.queue.applyOutcome(e.outcome)) continue;
      n++;
      // RFC 3463 x.1.1: the mailbox does not exist; mailing it again only hurts reputation.
      if (e.suppress) this.store.tenants.suppress(e.suppress.domain, e.suppress.email, 'bounce', e.outcome.at);
    }
    return n;
  }
}
