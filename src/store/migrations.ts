// Versioned schema, applied in order by PRAGMA user_version. Append only:
// a released migration is never edited, a change is a new entry.
export const MIGRATIONS: string[] = [
  /* 1: initial schema */ `
  CREATE TABLE settings (key TEXT PRIMARY KEY, value TEXT NOT NULL) STRICT;

  CREATE TABLE domains (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    tracking_host TEXT,
    verified INTEGER NOT NULL DEFAULT 0,
    tracking_verified INTEGER NOT NULL DEFAULT 0,
    verify_json TEXT,
    verified_at INTEGER,
    created_at INTEGER NOT NULL
  ) STRICT;

  CREATE TABLE dkim_keys (
    id INTEGER PRIMARY KEY,
    domain_id INTEGER NOT NULL REFERENCES domains(id) ON DELETE CASCADE,
    selector TEXT NOT NULL,
    algorithm TEXT NOT NULL,
    private_key TEXT NOT NULL,
    public_key TEXT NOT NULL,
    status TEXT NOT NULL,          -- active | pending | retiring
    created_at INTEGER NOT NULL,
    retire_at INTEGER,
    UNIQUE (domain_id, selector)
  ) STRICT;

  CREATE TABLE credentials (
    id TEXT PRIMARY KEY,
    domain_id INTEGER NOT NULL REFERENCES domains(id) ON DELETE CASCADE,
    kind TEXT NOT NULL,            -- password | ip
    name TEXT,
    username TEXT UNIQUE,
    password_hash TEXT,
    cidr TEXT,
    rate_per_minute INTEGER,
    created_at INTEGER NOT NULL
  ) STRICT;

  CREATE TABLE api_keys (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    key_hash TEXT NOT NULL UNIQUE,
    prefix TEXT NOT NULL,
    scopes TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    revoked_at INTEGER
  ) STRICT;

  CREATE TABLE messages (
    id TEXT PRIMARY KEY,
    domain TEXT NOT NULL,
    mail_from TEXT NOT NULL,
    from_header TEXT,
    subject TEXT,
    message_id_header TEXT,
    tags TEXT NOT NULL DEFAULT '[]',
    metadata TEXT,
    source TEXT NOT NULL,
    credential_id TEXT,
    size INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    send_at INTEGER
  ) STRICT;
  CREATE INDEX messages_created ON messages(created_at);
  CREATE INDEX messages_domain ON messages(domain, created_at);

  CREATE TABLE message_tags (
    tag TEXT NOT NULL,
    message_id TEXT NOT NULL,
    PRIMARY KEY (tag, message_id)
  ) STRICT, WITHOUT ROWID;

  CREATE TABLE bodies (
    id INTEGER PRIMARY KEY,
    message_id TEXT NOT NULL,
    data BLOB NOT NULL
  ) STRICT;
  CREATE INDEX bodies_message ON bodies(message_id);

  CREATE TABLE recipients (
    id INTEGER PRIMARY KEY,
    message_id TEXT NOT NULL,
    body_id INTEGER,
    email TEXT NOT NULL,
    rcpt_domain TEXT NOT NULL,
    status TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER,       -- NULL once final
    lease_until INTEGER,           -- a worker holds it until then
    last_reply TEXT,
    bounce_class TEXT,
    updated_at INTEGER NOT NULL,
    first_open_at INTEGER,
    first_click_at INTEGER
  ) STRICT;
  CREATE INDEX recipients_due ON recipients(next_attempt_at) WHERE next_attempt_at IS NOT NULL;
  CREATE INDEX recipients_message ON recipients(message_id);
  CREATE INDEX recipients_email ON recipients(email);
  CREATE INDEX recipients_status ON recipients(status, updated_at);

  CREATE TABLE events (
    id INTEGER PRIMARY KEY,
    message_id TEXT NOT NULL,
    recipient_id INTEGER,
    recipient TEXT,
    type TEXT NOT NULL,
    at INTEGER NOT NULL,
    data TEXT
  ) STRICT;
  CREATE INDEX events_message ON events(message_id, id);

  CREATE TABLE suppressions (
    domain TEXT NOT NULL,
    email TEXT NOT NULL,
    reason TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (domain, email)
  ) STRICT;

  CREATE TABLE tracking_tokens (
    token TEXT PRIMARY KEY,
    kind TEXT NOT NULL,            -- c (click) | o (open) | u (unsubscribe)
    message_id TEXT NOT NULL,
    recipient_id INTEGER NOT NULL,
    link_index INTEGER,
    url TEXT
  ) STRICT, WITHOUT ROWID;

  CREATE TABLE stats_hourly (
    hour INTEGER NOT NULL,         -- unix seconds, floored to the hour
    domain TEXT NOT NULL,
    tag TEXT NOT NULL,             -- '' = all messages
    metric TEXT NOT NULL,
    n INTEGER NOT NULL,
    PRIMARY KEY (tag, domain, hour, metric)
  ) STRICT, WITHOUT ROWID;

  CREATE TABLE link_stats (
    message_id TEXT NOT NULL,
    url TEXT NOT NULL,
    clicks INTEGER NOT NULL,
    clicks_unique INTEGER NOT NULL,
    first_at INTEGER NOT NULL,
    last_at INTEGER NOT NULL,
    PRIMARY KEY (message_id, url)
  ) STRICT;

  CREATE TABLE link_clickers (
    message_id TEXT NOT NULL,
    url TEXT NOT NULL,
    recipient_id INTEGER NOT NULL,
    PRIMARY KEY (message_id, url, recipient_id)
  ) STRICT, WITHOUT ROWID;

  CREATE TABLE webhooks (
    id TEXT PRIMARY KEY,
    url TEXT NOT NULL,
    events TEXT NOT NULL,
    secret TEXT NOT NULL,
    created_at INTEGER NOT NULL
  ) STRICT;

  CREATE TABLE webhook_outbox (
    id INTEGER PRIMARY KEY,
    webhook_id TEXT NOT NULL,
    event_id INTEGER NOT NULL,
    payload TEXT NOT NULL,
    status TEXT NOT NULL,          -- pending | delivered | failed
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,
    lease_until INTEGER,
    last_status INTEGER,
    last_error TEXT,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
  ) STRICT;
  CREATE INDEX webhook_outbox_due ON webhook_outbox(next_attempt_at) WHERE status = 'pending';
  CREATE INDEX webhook_outbox_hook ON webhook_outbox(webhook_id, id);

  CREATE TABLE domain_events (
    id INTEGER PRIMARY KEY,
    domain TEXT NOT NULL,
    type TEXT NOT NULL,            -- verified | unverified | key_activated | key_retired
    at INTEGER NOT NULL,
    data TEXT
  ) STRICT;
  CREATE INDEX domain_events_domain ON domain_events(domain, id);

  CREATE TABLE idempotency (
    api_key_id TEXT NOT NULL,
    key TEXT NOT NULL,
    status INTEGER NOT NULL,
    response TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (api_key_id, key)
  ) STRICT;
  `,
  // 2: per-domain tracking default (NULL: follow config; 'none' or a comma list of opens, clicks, unsubscribe).
  `ALTER TABLE domains ADD COLUMN track TEXT;`,
  // 3: the click path asks "when was this recipient delivered, what did it click lately" on
  // every redirect; without this index each hit scanned the whole event log (0.3 s at 1M events).
  `CREATE INDEX events_recipient ON events(recipient_id, type, at);`,
];
