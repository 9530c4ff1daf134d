import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { MIGRATIONS } from './migrations.js';

export type Db = Database.Database;

export const DB_FILE = 'relaygate.db';

/**
 * Opens (creating if needed) the gateway database in `dataDir`.
 * WAL lets the CLI and HTTP readers run beside the writer; synchronous=FULL
 * makes a commit durable before we answer 250 (the fsync is shared by the
 * whole group commit, so it is paid once per batch, not per message).
 */
export function openDb(dataDir: string, opts: { readonly?: boolean } = {}): Db {
  fs.mkdirSync(dataDir, { recursive: true });
  const db = new Database(path.join(dataDir, DB_FILE), { readonly: opts.readonly ?? false });
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = FULL');
  db.pragma('foreign_keys = ON');
  // The CLI and the gateway share the file; wait for a writer instead of failing with SQLITE_BUSY.
  db.pragma('busy_timeout = 5000');
  migrate(db);
  return db;
}

export function migrate(db: Db): void {
  const current = db.pragma('user_version', { simple: true }) as number;
  if (current > MIGRATIONS.length) {
    throw new Error(
      `database schema version ${current} is newer than this relaygate (${MIGRATIONS.length}); upgrade relaygate`,
    );
  }
  for (let v = current; v < MIGRATIONS.length; v++) {
    db.transaction(() => {
      db.exec(MIGRATIONS[v]);
      db.pragma(`user_version = ${v + 1}`);
    }).immediate();
  }
}

/**
 * Runs `fn` with synchronous=NORMAL: its commits skip the fsync that FULL pays.
 * Only for writes that need no durability, such as delivery and webhook leases
 * (start-up releases every lease, so one lost in a power cut changes nothing).
 * In WAL mode NORMAL keeps the database consistent, and the next FULL commit's
 * fsync covers these frames too. Each fsync skipped is one less block of the
 * event loop between a remote 250 and its recorded state (the crash suite's
 * duplicate window).
 */
export function withoutFsync<T>(db: Db, fn: () => T): T {
  // SQLite refuses to change the safety level inside a transaction; the outer one decides.
  if (db.inTransaction) return fn();
  db.pragma('synchronous = NORMAL');
  try {
    return fn();
  } finally {
    db.pragma('synchronous = FULL');
  }
}

// Connections with commits made by withoutFsync that no fsynced commit has covered yet.
const unsynced = new WeakSet<Db>();

/** Notes that `db` has commits a power cut could still take back (see Committer.runNow). */
export function markUnsynced(db: Db): void {
  unsynced.add(db);
}

/** Notes that an fsynced commit on `db` has made every earlier commit durable. */
export function markSynced(db: Db): void {
  unsynced.delete(db);
}

/**
 * Runs `fn` (a claim that leases the rows it returns) without an fsync unless `db`
 * holds unsynced commits; then its own commit pays the fsync, which covers them.
 * For claims that hand data to the outside world: an event POSTed to a webhook
 * must not vanish in a power cut and have its id given to another event afterwards.
 */
export function durableBeforeSharing<T>(db: Db, fn: () => T[]): T[] {
  if (!unsynced.has(db)) return withoutFsync(db, fn);
  const out = fn();
  // A claim that leased nothing wrote nothing, and a commit without frames syncs nothing.
  if (out.length > 0) markSynced(db);
  return out;
}
