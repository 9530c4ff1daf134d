// API authentication (SPEC §3): `Authorization: Bearer KEY` or `X-API-Key: KEY`.
// The key is looked up on every request, so a key created or revoked with the
// CLI takes effect at once in a running gateway. 401 = no valid key, 403 = the
// key lacks the route's scope (admin implies every scope).
import type { Context, MiddlewareHandler } from 'hono';
import { findApiKey, hasScope, type Scope } from '../auth/api-keys.js';
import type { Store } from '../store/index.js';
import type { ApiKeyRow } from '../store/tenants.js';
import type { ApiEnv } from './env.js';
import { ApiError } from './errors.js';

/** The key as sent, '' when a credential header is present but unusable, null when none was sent. */
export function presentedKey(c: Context): string | null {
  const auth = c.req.header('authorization');
  if (auth !== undefined) {
    const bearer = /^Bearer\s+(\S+)\s*$/i.exec(auth);
    if (bearer) return bearer[1];
    // Mailgun-style clients send the key as a Basic password (user "api").
    const basic = /^Basic\s+([A-Za-z0-9+/=]+)\s*$/i.exec(auth);
    if (basic) {
      const decoded = Buffer.from(basic[1], 'base64').toString('utf8');
      const colon = decoded.indexOf(':');
      return colon < 0 ? decoded : decoded.slice(colon + 1) || decoded.slice(0, colon);
    }
    return '';
  }
  const header = c.req.header('x-api-key');
  return header === undefined ? null : header.trim();
}

/** Resolves the key (without refusing anything yet: the rate limiter still wants to count the request). */
export function identify(store: Store): MiddlewareHandler<ApiEnv> {
  return async (c, next) => {
    const key = presentedKey(c);
    const row = key ? findApiKey(store, key) : undefined;
    c.set('apiKey', row);
    c.set('authProblem', row ? null : key === null ? 'missing' : 'invalid');
    await next();
  };
}

export function authenticated(c: Context<ApiEnv>): ApiKeyRow {
  const row = c.get('apiKey');
  if (row) return row;
  const missing = c.get('authProblem') === 'missing';
  c.header('WWW-Authenticate', 'Bearer realm="relaygate"');
  throw new ApiError(
    401,
    missing ? 'missing_api_key' : 'invalid_api_key',
    missing
      ? 'An API key is required: send "Authorization: Bearer KEY" or "X-API-Key: KEY"'
      : 'The API key is not valid (unknown or revoked)',
  );
}

export function requireScope(scope: Scope): MiddlewareHandler<ApiEnv> {
  return async (c, next) => {
    const row = authenticated(c);
    if (!hasScope(row, scope)) {
      throw new ApiError(403, 'insufficient_scope', `This API key lacks the "${scope}" scope`, { required_scope: scope });
    }
    await next();
  };
}
