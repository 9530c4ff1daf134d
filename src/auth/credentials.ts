// SMTP credentials: a password (shown once, stored as scrypt) or a network
// (CIDR) allowed to send for a domain without AUTH.
import ipaddr from 'ipaddr.js';
import { GatewayError } from '../errors.js';
import type { Store } from '../store/index.js';
import type { CredentialRow } from '../store/tenants.js';
import { newId, newToken } from '../util/ids.js';
import { hashPassword } from './password.js';

const NAME_RE = /^[a-z0-9][a-z0-9._-]{0,63}$/i;

const invalid = (code: string, message: string) => new GatewayError(code, message, { http: 400, smtp: 501 });

export interface NewCredentialOptions {
  name?: string;
  ip?: string;
  rate?: number;
}

export async function addCredential(store: Store, domainName: string, opts: NewCredentialOptions) {
  const domain = store.tenants.domain(domainName.toLowerCase());
  if (!domain) throw new GatewayError('unknown_domain', `domain ${domainName} is not configured (relaygate domain add ${domainName})`, { http: 404 });
  if (opts.name !== undefined && !NAME_RE.test(opts.name)) throw invalid('invalid_name', 'name must be 1-64 of letters, digits, . _ -');
  if (opts.rate !== undefined && (!Number.isInteger(opts.rate) || opts.rate <= 0)) {
    throw invalid('invalid_rate', 'rate must be a positive whole number of messages per minute');
  }
  const base = {
    id: `cred_${newId()}`,
    domain_id: domain.id,
    name: opts.name ?? null,
    rate_per_minute: opts.rate ?? null,
    created_at: Date.now(),
  };
  if (opts.ip !== undefined) {
    let cidr: string;
    try {
      const [addr, bits] = opts.ip.includes('/') ? ipaddr.parseCIDR(opts.ip) : [ipaddr.parse(opts.ip), -1];
      cidr = `${addr.toString()}/${bits < 0 ? (addr.kind() === 'ipv4' ? 32 : 128) : bits}`;
    } catch {
      throw invalid('invalid_ip', `"${opts.ip}" is not an IP address or CIDR network`);
    }
    store.tenants.addCredential({ ...base, kind: 'ip', username: null, password_hash: null, cidr });
    return { id: base.id, domain: domain.name, kind: 'ip' as const, ip: cidr, name: base.name, rate_per_minute: base.rate_per_minute };
  }
  const username = `${opts.name ?? `smtp-${newToken(4).toLowerCase().replace(/[^a-z0-9]/g, 'x')}`}@${domain.name}`;
  if (store.tenants.credentialByUsername(username)) {
    throw new GatewayError('credential_exists', `a credential named ${username} already exists`, { http: 409 });
  }
  const password = newToken(18);
  store.tenants.addCredential({ ...base, kind: 'password', username, password_hash: await hashPassword(password), cidr: null });
  return { id: base.id, domain: domain.name, kind: 'password' as const, username, password, name: base.name, rate_per_minute: base.rate_per_minute };
}

export function publicCredential(c: CredentialRow) {
  return {
    id: c.id,
    domain: c.domain,
    kind: c.kind,
    name: c.name,
    username: c.username,
    ip: c.cidr,
    rate_per_minute: c.rate_per_minute,
    created_at: new Date(c.created_at).toISOString(),
  };
}
