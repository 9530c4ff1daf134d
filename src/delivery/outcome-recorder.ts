// Records delivery outcomes: first in the outcome journal (a file append that
// never waits for a lock), then in the database as soon as its write lock is
// free. The delivery thread's connection does not block on that lock
// (busy_timeout 0): while the main thread's group commit holds it for its
// fsync, the replies of other deliveries keep being read and journaled.
import type { Logger } from 'pino';
import { isBusyError } from '../store/db.js';
import type { Store } from '../store/index.js';
import type { JournalEntry, OutcomeJournal } from '../store/outcome-journal.js';

/** Not the database's state (full, locked, failing I/O) but the values: retrying cannot help. */
function refusedForWhatItIs(e: unknown): boolean {
  const code = (e as { code?: unknown } | null)?.code;
  if (typeof code === 'string' && code.startsWith('SQLITE_')) return code.startsWith('SQLITE_CONSTRAINT') || code === 'SQLITE_MISMATCH';
  // better-sqlite3 throws TypeError/RangeError for values it cannot bind.
  return e instanceof TypeError || e instanceof RangeError;
}

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
  replay(): { applied: number; skipped: number; refused: number; torn: number } {
    const { entries, torn } = this.journal.read();
    const { applied, refused } = entries.length ? this.applyBatch(entries) : { applied: 0, refused: 0 };
    this.journal.clear();
    return { applied, skipped: entries.length - applied - refused, refused, torn };
  }

  /** Resolves once the outcomes are recorded: journaled, or (if the journal fails) in the database. */
  async record(entries: JournalEntry[]): Promise<void> {
    if (this.closed) {
      // A reply that came after stop(): the journal alone records it, for the next start.
      this.journal.append(entries);
      return;
    }
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
        this.applyBatch(entries);
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
      this.applyBatch(batch);
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

  /**
   * At stop: a last, waiting attempt; what still fails stays journaled for the next start.
   * With `keepJournal` (deliveries still in flight) replies that arrive later are journaled
   * only; the thread's exit or the process's closes the file.
   */
  close(keepJournal = false): void {
    this.closed = true;
    this.store.setBusyTimeout(5000);
    if (!this.flush()) this.log.warn({ rcpts: this.pending.length }, 'delivery outcomes left in the journal; recorded at next start');
    this.cancelRetry();
    if (!keepJournal) this.journal.close();
  }

  private cancelRetry(): void {
    if (this.soon) clearImmediate(this.soon);
    if (this.retry) clearTimeout(this.retry);
    this.soon = this.retry = null;
  }

  /**
   * One transaction for the batch. An entry the database refuses for what it is (a type or
   * constraint error: only a damaged journal line can hold one) must not hold up the rest
   * for ever, nor stop start-up: then each goes alone, and the refused are logged and
   * dropped — their recipients are attempted again once the lease runs out, a duplicate at
   * worst. Any other error (disk full, I/O, busy) is thrown for the caller to retry.
   */
  private applyBatch(entries: JournalEntry[]): { applied: number; refused: number } {
    try {
      return { applied: this.store.committer.runNow(() => this.apply(entries)), refused: 0 };
    } catch (err) {
      if (!refusedForWhatItIs(err)) throw err;
    }
    let applied = 0;
    let refused = 0;
    for (const e of entries) {
      try {
        applied += this.store.committer.runNow(() => this.apply([e]));
      } catch (err) {
        if (!refusedForWhatItIs(err)) throw err;
        refused++;
        this.log.error({ err, recipient_id: e.outcome.recipientId, attempt: e.outcome.attempt }, 'delivery outcome refused by the database; dropped');
      }
    }
    return { applied, refused };
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
