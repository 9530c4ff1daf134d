// Domains, DKIM keys, SMTP credentials, API keys, suppressions and settings.
import type { Db } from './db.js';

export interface DomainRow {
  id: number;
  name: string;
  tracking_host: string | null;
  /** Tracking default for this domain; null follows config. */
  track: string | null;
  verified: number;
  tracking_verified: number;
  verify_json: string | null;
  verified_at: number | null;
  created_at: number;
}

export interface DkimKeyRow {
  id: number;
  domain_id: number;
  selector: string;
  algorithm: 'rsa' | 'ed25519';
  private_key: string;
  public_key: string;
  status: 'active' | 'pending' | 'retiring';
  created_at: number;
  retire_at: number | null;
}

export interface CredentialRow {
  id: string;
  domain_id: number;
  domain: string;
  kind: 'password' | 'ip';
  name: string | null;
  username: string | null;
  password_hash: string | null;
  cidr: string | null;
  rate_per_minute: number | null;
  created_at: number;
}

export interface ApiKeyRow {
  id: string;
  name: string;
  key_hash: string;
  prefix: string;
  scopes: string;
  created_at: number;
  revoked_at: number | null;
}

export interface SuppressionRow {
  domain: string;
  email: string;
  reason: string;
  created_at: number;
}

export class TenantStore {
  private s;

  constructor(private db: Db) {
    const p = (sql: string) => db.prepare(sql);
    this.s = {
      domainByName: p('SELECT * FROM domains WHERE name = ?'),
      domainById: p('SELECT * FROM domains WHERE id = ?'),
      domains: p('SELECT * FROM domains ORDER BY name'),
      insertDomain: p('INSERT INTO domains (name, tracking_host, created_at) VALUES (?, ?, ?)'),
      deleteDomain: p('DELETE FROM domains WHERE name = ?'),
      setTrackingHost: p('UPDATE domains SET tracking_host = ?, tracking_verified = 0 WHERE id = ?'),
      setTrack: p('UPDATE domains SET track = ? WHERE id = ?'),
      setVerification: p(
        'UPDATE domains SET verified = ?, tracking_verified = ?, verify_json = ?, verified_at = ? WHERE id = ?',
      ),
      keysFor: p('SELECT * FROM dkim_keys WHERE domain_id = ? ORDER BY id'),
      insertKey: p(
        `INSERT INTO dkim_keys (domain_id, selector, algorithm, private_key, public_key, status, created_at)
         VALUES (?, ?, ?, ?, ?, ?, ?)`,
      ),
      setKeyStatus: p('UPDATE dkim_keys SET status = ?, retire_at = ? WHERE id = ?'),
      deleteKey: p('DELETE FROM dkim_keys WHERE id = ?'),
      insertCredential: p(
        `INSERT INTO credentials (id, domain_id, kind, name, username, password_hash, cidr, rate_per_minute, created_at)
         VALUES (@id, @domain_id, @kind, @name, @username, @password_hash, @cidr, @rate_per_minute, @created_at)`,
      ),
      credentials: p(
        'SELECT c.*, d.name AS domain FROM credentials c JOIN domains d ON d.id = c.domain_id ORDER BY c.created_at, c.id',
      ),
      credentialByUser: p(
        'SELECT c.*, d.name AS domain FROM credentials c JOIN domains d ON d.id = c.domain_id WHERE c.username = ?',
      ),
      credentialById: p(
        'SELECT c.*, d.name AS domain FROM credentials c JOIN domains d ON d.id = c.domain_id WHERE c.id = ?',
      ),
      ipCredentials: p(
        `SELECT c.*, d.name AS domain FROM credentials c JOIN domains d ON d.id = c.domain_id WHERE c.kind = 'ip'`,
      ),
      deleteCredential: p('DELETE FROM credentials WHERE id = ?'),
      insertApiKey: p(
        'INSERT INTO api_keys (id, name, key_hash, prefix, scopes, created_at) VALUES (?, ?, ?, ?, ?, ?)',
      ),
      apiKeyByHash: p('SELECT * FROM api_keys WHERE key_hash = ? AND revoked_at IS NULL'),
      apiKeys: p('SELECT * FROM api_keys ORDER BY created_at, id'),
      revokeApiKey: p('UPDATE api_keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL'),
      suppression: p('SELECT * FROM suppressions WHERE domain = ? AND email = ?'),
      addSuppression: p(
        `INSERT INTO suppressions (domain, email, reason, created_at) VALUES (?, ?, ?, ?)
         ON CONFLICT (domain, email) DO NOTHING`,
      ),
      removeSuppression: p('DELETE FROM suppressions WHERE email = ? AND (? IS NULL OR domain = ?)'),
      countSuppressions: p(
        'SELECT count(*) AS n FROM suppressions WHERE (? IS NULL OR domain = ?) AND (? IS NULL OR reason = ?)',
      ),
      listSuppressions: p(
        `SELECT * FROM suppressions WHERE (? IS NULL OR domain = ?) AND (? IS NULL OR reason = ?)
         ORDER BY created_at DESC, email LIMIT ? OFFSET ?`,
      ),
      domainEvent: p('INSERT INTO domain_events (domain, type, at, data) VALUES (?, ?, ?, ?)'),
      domainEvents: p('SELECT * FROM domain_events WHERE domain = ? ORDER BY id DESC LIMIT ?'),
      getSetting: p('SELECT value FROM settings WHERE key = ?'),
      setSetting: p(
        'INSERT INTO settings (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value',
      ),
    };
  }

  domain(name: string): DomainRow | undefined {
    return this.s.domainByName.get(name) as DomainRow | undefined;
  }
  domainById(id: number): DomainRow | undefined {
    return this.s.domainById.get(id) as DomainRow | undefined;
  }
  domains(): DomainRow[] {
    return this.s.domains.all() as DomainRow[];
  }
  /** Longest configured domain that `host` equals or is a subdomain of. */
  domainFor(host: string): DomainRow | undefined {
    const labels = host.split('.');
    for (let i = 0; i < labels.length - 1; i++) {
      const d = this.domain(labels.slice(i).join('.'));
      if (d) return d;
    }
    return undefined;
  }

  addDomain(
    name: string,
    trackingHost: string | null,
    keys: { selector: string; algorithm: string; privateKey: string; publicKey: string }[],
    now = Date.now(),
  ): DomainRow {
    return this.db.transaction(() => {
      const { lastInsertRowid } = this.s.insertDomain.run(name, trackingHost, now);
      for (const k of keys) {
        this.s.insertKey.run(lastInsertRowid, k.selector, k.algorithm, k.privateKey, k.publicKey, 'active', now);
      }
      return this.domainById(Number(lastInsertRowid))!;
    })();
  }
  removeDomain(name: string): boolean {
    return this.s.deleteDomain.run(name).changes > 0;
  }
  setTrackingHost(domainId: number, host: string | null): void {
    this.s.setTrackingHost.run(host, domainId);
  }
  setTrack(domainId: number, track: string | null): void {
    this.s.setTrack.run(track, domainId);
  }
  setVerification(domainId: number, verified: boolean, trackingVerified: boolean, json: string, now = Date.now()): void {
    this.s.setVerification.run(verified ? 1 : 0, trackingVerified ? 1 : 0, json, now, domainId);
  }

  keys(domainId: number): DkimKeyRow[] {
    return this.s.keysFor.all(domainId) as DkimKeyRow[];
  }
  addKey(domainId: number, k: { selector: string; algorithm: string; privateKey: string; publicKey: string }, status: DkimKeyRow['status'], now = Date.now()): void {
    this.s.insertKey.run(domainId, k.selector, k.algorithm, k.privateKey, k.publicKey, status, now);
  }
  setKeyStatus(id: number, status: DkimKeyRow['status'], retireAt: number | null): void {
    this.s.setKeyStatus.run(status, retireAt, id);
  }
  deleteKey(id: number): void {
    this.s.deleteKey.run(id);
  }

  addCredential(row: Omit<CredentialRow, 'domain'>): void {
    this.s.insertCredential.run(row);
  }
  credentials(): CredentialRow[] {
    return this.s.credentials.all() as CredentialRow[];
  }
  credentialByUsername(username: string): CredentialRow | undefined {
    return this.s.credentialByUser.get(username) as CredentialRow | undefined;
  }
  credential(id: string): CredentialRow | undefined {
    return this.s.credentialById.get(id) as CredentialRow | undefined;
  }
  ipCredentials(): CredentialRow[] {
    return this.s.ipCredentials.all() as CredentialRow[];
  }
  removeCredential(id: string): boolean {
    return this.s.deleteCredential.run(id).changes > 0;
  }

  addApiKey(id: string, name: string, hash: string, prefix: string, scopes: string[], now = Date.now()): void {
    this.s.insertApiKey.run(id, name, hash, prefix, scopes.join(','), now);
  }
  apiKeyByHash(hash: string): ApiKeyRow | undefined {
    return this.s.apiKeyByHash.get(hash) as ApiKeyRow | undefined;
  }
  apiKeys(): ApiKeyRow[] {
    return this.s.apiKeys.all() as ApiKeyRow[];
  }
  revokeApiKey(id: string, now = Date.now()): boolean {
    return this.s.revokeApiKey.run(now, id).changes > 0;
  }

  isSuppressed(domain: string, email: string): SuppressionRow | undefined {
    return this.s.suppression.get(domain, email.toLowerCase()) as SuppressionRow | undefined;
  }
  /** Returns true when the entry is new. */
  suppress(domain: string, email: string, reason: string, now = Date.now()): boolean {
    return this.s.addSuppression.run(domain, email.toLowerCase(), reason, now).changes > 0;
  }
  unsuppress(email: string, domain: string | null): number {
    return this.s.removeSuppression.run(email.toLowerCase(), domain, domain).changes;
  }
  suppressions(f: { domain?: string | null; reason?: string | null; limit: number; offset: number }): { rows: SuppressionRow[]; total: number } {
    const d = f.domain ?? null;
    const r = f.reason ?? null;
    const total = (this.s.countSuppressions.get(d, d, r, r) as { n: number }).n;
    const rows = this.s.listSuppressions.all(d, d, r, r, f.limit, f.offset) as SuppressionRow[];
    return { rows, total };
  }

  domainEvent(domain: string, type: string, data: Record<string, unknown>, now = Date.now()): void {
    this.s.domainEvent.run(domain, type, now, JSON.stringify(data));
  }
  domainEvents(domain: string, limit = 20): { id: number; domain: string; type: string; at: number; data: string }[] {
    return this.s.domainEvents.all(domain, limit) as { id: number; domain: string; type: string; at: number; data: string }[];
  }

  setting(key: string): string | undefined {
    return (this.s.getSetting.get(key) as { value: string } | undefined)?.value;
  }
  setSetting(key: string, value: string): void {
    this.s.setSetting.run(key, value);
  }
}
