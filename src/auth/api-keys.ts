// API keys: shown once, stored as a SHA-256 digest (they are 192-bit random
// secrets, so a slow hash adds nothing but latency on every request).
import { GatewayError } from '../errors.js';
import type { Store } from '../store/index.js';
import type { ApiKeyRow } from '../store/tenants.js';
import { newId, newToken } from '../util/ids.js';
import { hashApiKey } from './password.js';

export const SCOPES = ['send', 'read', 'admin'] as const;
export type Scope = (typeof SCOPES)[number];

export function parseScopes(input: string | string[] | undefined): Scope[] {
  const list = (Array.isArray(input) ? input : (input ?? 'send,read').split(','))
    .map((s) => s.trim().toLowerCase())
    .filter(Boolean);
  if (!list.length) throw new GatewayError('invalid_scopes', 'at least one scope is required', { http: 400, smtp: 501 });
  for (const s of list) {
    if (!SCOPES.includes(s as Scope)) {
      throw new GatewayError('invalid_scopes', `unknown scope "${s}" (use ${SCOPES.join(', ')})`, { http: 400, smtp: 501 });
    }
  }
  return [...new Set(list)] as Scope[];
}

export function createApiKey(store: Store, name: string, scopes: Scope[]): { id: string; key: string; name: string; scopes: Scope[] } {
  const id = `key_${newId()}`;
  const key = `rg_${newToken(24)}`;
  store.tenants.addApiKey(id, name, hashApiKey(key), key.slice(0, 7), scopes);
  return { id, key, name, scopes };
}

export function findApiKey(store: Store, key: string): ApiKeyRow | undefined {
  if (!key.startsWith('rg_') || key.length > 100) return undefined;
  return store.tenants.apiKeyByHash(hashApiKey(key));
}

export const keyScopes = (row: ApiKeyRow): Scope[] => row.scopes.split(',') as Scope[];

/** admin implies every other scope. */
export const hasScope = (row: ApiKeyRow, scope: Scope): boolean => {
  const s = keyScopes(row);
  return s.includes(scope) || s.includes('admin');
};

export function publicApiKey(row: ApiKeyRow) {
  return {
    id: row.id,
    name: row.name,
    prefix: row.prefix,
    scopes: keyScopes(row),
    created_at: new Date(row.created_at).toISOString(),
    revoked_at: row.revoked_at ? new Date(row.revoked_at).toISOString() : null,
  };
}
