// Group commit. Writers from many SMTP sessions (and the delivery worker) are
// collected for one event-loop turn and committed in a single transaction, so
// one fsync acknowledges a whole batch: the difference between ~100 and
// >1000 durable messages a second on one disk. Each job runs in its own
// savepoint, so one failing job does not undo the others.
import { syncState, withoutFsync, type Db, type SyncState } from './db.js';

interface Job {
  fn: () => unknown;
  resolve: (v: any) => void;
  reject: (e: unknown) => void;
}

export class Committer {
  private jobs: Job[] = [];
  private scheduled = false;
  private closed = false;

  private totalChanges;
  private sync: SyncState;

  constructor(
    private db: Db,
    private maxBatch = 512,
  ) {
    const stmt = db.prepare('SELECT total_changes() AS n');
    this.totalChanges = () => (stmt.get() as { n: number }).n;
    this.sync = syncState(db);
  }

  run<T>(fn: () => T): Promise<T> {
    if (this.closed) return Promise.reject(new Error('store is closed'));
    return new Promise<T>((resolve, reject) => {
      this.jobs.push({ fn, resolve, reject });
      if (!this.scheduled) {
        this.scheduled = true;
        setImmediate(() => this.flush());
      }
    });
  }

  /** Commits everything queued so far, synchronously. */
  flush(): void {
    this.scheduled = false;
    while (this.jobs.length) {
      const batch = this.jobs.splice(0, this.maxBatch);
      const results: { ok: boolean; value: unknown }[] = [];
      let rolledBack = false;
      const changesBefore = this.totalChanges();
      const mark = this.sync.mark();
      try {
        this.db
          .transaction(() => {
            for (const job of batch) {
              try {
                results.push({ ok: true, value: this.db.transaction(job.fn)() });
              } catch (e) {
                results.push({ ok: false, value: e });
                // SQLITE_FULL, IOERR and NOMEM may roll back the whole transaction, not only the
                // job's savepoint (sqlite.org/lang_transaction.html, "Response To Errors Within
                // A Transaction"). Running on would commit each later job in a transaction of
                // its own, and the batch's COMMIT then failing would report those failed too:
                // stored, yet answered 451 — a duplicate once the client retries.
                if (!this.db.inTransaction) {
                  rolledBack = true;
                  throw e;
                }
              }
            }
          })
          .immediate();
      } catch (e) {
        if (rolledBack) {
          // The jobs run so far were undone with the batch; the others get a batch of their own.
          batch.slice(0, results.length).forEach((job, i) => job.reject(results[i].ok ? e : results[i].value));
          this.jobs.unshift(...batch.slice(results.length));
          continue;
        }
        // The commit itself failed (disk full, I/O error): nothing in the batch is durable.
        for (const job of batch) job.reject(e);
        continue;
      }
      // Only a commit that wrote something had its fsync; that one covers all earlier commits.
      if (this.totalChanges() > changesBefore) this.sync.synced(mark);
      batch.forEach((job, i) => (results[i].ok ? job.resolve(results[i].value) : job.reject(results[i].value)));
    }
  }

  /**
   * Runs `fn` in a transaction of its own, at once and without an fsync. Only for
   * records whose loss in a power cut repeats work instead of losing any: a delivery
   * outcome (the message is sent again). A SIGKILL loses nothing committed here —
   * the WAL frames are in the OS already — and the wait for the batch and its fsync
   * is exactly the window in which a crash after the remote 250 causes a duplicate.
   */
  runNow<T>(fn: () => T): T {
    if (this.closed) throw new Error('store is closed');
    return this.sync.unsynced(() => withoutFsync(this.db, () => this.db.transaction(fn).immediate()));
  }

  close(): void {
    this.flush();
    this.closed = true;
  }
}
