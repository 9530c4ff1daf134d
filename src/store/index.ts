// The storage module: the only place that knows SQL. Everything else talks to
// these typed methods, so a PostgreSQL backend can replace this directory.
import { Committer } from './committer.js';
import { openDb, syncState, type Db } from './db.js';
import { EventLog } from './events.js';
import { QueueStore } from './queue.js';
import { StatsStore } from './stats.js';
import { TenantStore } from './tenants.js';
import { TrackingStore } from './tracking.js';
import { WebhookStore } from './webhooks.js';

export interface Store {
  db: Db;
  committer: Committer;
  events: EventLog;
  tenants: TenantStore;
  queue: QueueStore;
  tracking: TrackingStore;
  stats: StatsStore;
  webhooks: WebhookStore;
  /** Idempotency records for the HTTP API. */
  idempotency: {
    get(apiKeyId: string, key: string, since: number): { status: number; response: string } | undefined;
    put(apiKeyId: string, key: string, status: number, response: string, now: number): void;
    /** Forgets records created before `before`. */
    prune(before: number): number;
    /** Records whose key starts with `prefix` (the parts of one request), key → response. */
    withPrefix(apiKeyId: string, prefix: string, since: number): Map<string, string>;
    dropPrefix(apiKeyId: string, prefix: string): void;
  };
  healthy(): boolean;
  /** How long a write waits for another connection's lock before SQLITE_BUSY (0: not at all). */
  setBusyTimeout(ms: number): void;
  /** Pass to openStore() for another connection in this process (another thread). */
  syncShared: SharedArrayBuffer;
  close(): void;
}

/**
 * `sync` joins the account of unsynced commits of another connection to the same
 * file (Store.syncShared of the store opened first), as the delivery thread does.
 */
export function openStore(dataDir: string, opts: { sync?: SharedArrayBuffer } = {}): Store {
  const db = openDb(dataDir, { sync: opts.sync });
  const events = new EventLog(db);
  const tenants = new TenantStore(db);
  const queue = new QueueStore(db, events);
  const committer = new Committer(db);
  const idemGet = db.prepare('SELECT status, response FROM idempotency WHERE api_key_id = ? AND key = ? AND created_at >= ?');
  const idemPut = db.prepare(
    `INSERT INTO idempotency (api_key_id, key, status, response, created_at) VALUES (?, ?, ?, ?, ?)
     ON CONFLICT (api_key_id, key) DO UPDATE SET status = excluded.status, response = excluded.response,
       created_at = excluded.created_at`,
  );
  const idemPrune = db.prepare('DELETE FROM idempotency WHERE created_at < ?');
  // A key range rather than LIKE: keys may hold % and _, and the range uses the primary key.
  const idemRange = db.prepare('SELECT key, response FROM idempotency WHERE api_key_id = ? AND key >= ? AND key < ? AND created_at >= ?');
  const idemDropRange = db.prepare('DELETE FROM idempotency WHERE api_key_id = ? AND key >= ? AND key < ?');
  const rangeEnd = (prefix: string) => prefix.slice(0, -1) + String.fromCharCode(prefix.charCodeAt(prefix.length - 1) + 1);
  const ping = db.prepare('SELECT 1 AS ok');
  return {
    db,
    committer,
    events,
    tenants,
    queue,
    tracking: new TrackingStore(db, events, queue, tenants),
    stats: new StatsStore(db),
    webhooks: new WebhookStore(db),
    idempotency: {
      get: (k, key, since) => idemGet.get(k, key, since) as { status: number; response: string } | undefined,
      put: (k, key, status, response, now) => void idemPut.run(k, key, status, response, now),
      prune: (before) => idemPrune.run(before).changes,
      withPrefix: (k, prefix, since) =>
        new Map((idemRange.all(k, prefix, rangeEnd(prefix), since) as { key: string; response: string }[]).map((r) => [r.key, r.response])),
      dropPrefix: (k, prefix) => void idemDropRange.run(k, prefix, rangeEnd(prefix)),
    },
    syncShared: syncState(db).shared,
    setBusyTimeout: (ms) => void db.pragma(`busy_timeout = ${Math.max(0, Math.floor(ms))}`),
    healthy: () => {
      try {
        return (ping.get() as { ok: number }).ok === 1;
      } catch {
        return false;
      }
    },
    close() {
      committer.close();
      db.close();
    },
  };
}

export type { Db } from './db.js';
