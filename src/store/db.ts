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
export function openDb(dataDir: string, opts: { readonly?: boolean; sync?: SharedArrayBuffer } = {}): Db {
  fs.mkdirSync(dataDir, { recursive: true });
  const db = new Database(path.join(dataDir, DB_FILE), { readonly: opts.readonly ?? false });
  if (opts.sync) syncStates.set(db, new SyncState(opts.sync));
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = FULL');
  db.pragma('foreign_keys = ON');
  // The CLI and the gateway share the file; wait for a writer instead of failing with SQLITE_BUSY.
  db.pragma('busy_timeout = 5000');
  migrate(db);
  return db;
}

/** The write lock is held by another connection (and busy_timeout ran out, or is 0). */
export const isBusyError = (e: unknown): boolean => {
  const code = (e as { code?: unknown } | null)?.code;
  return typeof code === 'string' && code.startsWith('SQLITE_BUSY');
};

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

/**
 * Counts commits made without an fsync against the ones an fsynced commit has
 * covered, for one database file. The cells live in a SharedArrayBuffer so the
 * delivery thread's connection and the main one keep a single account: an fsync
 * of the WAL by either connection makes every frame written before it durable.
 */
export class SyncState {
  readonly shared: SharedArrayBuffer;
  // [0]: unsynced commit marks noted so far; [1]: how many of them an fsync has covered.
  // 64-bit: two marks per delivery commit would wrap 32 bits within a few years of mail.
  private cells: BigInt64Array;

  constructor(shared?: SharedArrayBuffer) {
    this.shared = shared ?? new SharedArrayBuffer(16);
    this.cells = new BigInt64Array(this.shared);
  }

  /** Wraps a commit that skips the fsync. */
  unsynced<T>(commit: () => T): T {
    // Before: whoever can read the commit's rows sees it pending. After: a mark taken
    // while it was being written (by a commit that may have fsynced before its frames
    // existed) does not count as covering it.
    Atomics.add(this.cells, 0, 1n);
    try {
      return commit();
    } finally {
      Atomics.add(this.cells, 0, 1n);
    }
  }

  /** Take before an fsynced commit; hand to synced() once it is done. */
  mark(): bigint {
    return Atomics.load(this.cells, 0);
  }

  synced(mark: bigint): void {
    for (;;) {
      const cur = Atomics.load(this.cells, 1);
      if (cur >= mark || Atomics.compareExchange(this.cells, 1, cur, mark) === cur) return;
    }
  }

  pending(): boolean {
    return Atomics.load(this.cells, 0) > Atomics.load(this.cells, 1);
  }
}

const syncStates = new WeakMap<Db, SyncState>();

/** The account of unsynced commits `db` shares with the other connections it was opened with. */
export function syncState(db: Db): SyncState {
  let s = syncStates.get(db);
  if (!s) syncStates.set(db, (s = new SyncState()));
  return s;
}

/**
 * Runs `fn` (a claim that leases the rows it returns) without an fsync unless the
 * database holds unsynced commits; then its own commit pays the fsync, which covers them.
 * For claims that hand data to the outside world: an event POSTed to a webhook
 * must not vanish in a power cut and have its id given to another event afterwards.
 */
export function durableBeforeSharing<T>(db: Db, fn: () => T[]): T[] {
  const sync = syncState(db);
  const mark = sync.mark();
  if (!sync.pending()) {
    const out = withoutFsync(db, fn);
    // Another connection (the delivery thread) may have committed without an fsync between
    // the check and the claim, and the claim may have read its rows: sync the WAL now.
    if (out.length > 0 && sync.mark() !== mark) {
      const covered = sync.mark();
      fsyncWal(db);
      sync.synced(covered);
    }
    return out;
  }
  const out = fn();
  // A claim that leased nothing wrote nothing, and a commit without frames syncs nothing.
  if (out.length > 0) sync.synced(mark);
  return out;
}

/** Makes every frame written to the database's WAL so far durable, whichever connection wrote it. */
function fsyncWal(db: Db): void {
  let fd: number;
  try {
    fd = fs.openSync(`${db.name}-wal`, 'r');
  } catch (e) {
    // No WAL file: everything is in the database file, which checkpoints sync.
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw e;
  }
  try {
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}
