// Idempotency-Key (Stripe-style): a retried POST with the same key, from the
// same API key, within 24 h gets the first response back instead of sending
// the mail twice. Concurrent duplicates wait for the first one to finish.
// Only successful responses are remembered, so a request that failed
// validation can be corrected and retried under the same key.
import type { Context } from 'hono';
import type { Store } from '../store/index.js';
import type { ApiKeyRow } from '../store/tenants.js';
import type { ApiEnv } from './env.js';
import { badRequest } from './errors.js';

export const IDEMPOTENCY_TTL_MS = 24 * 3_600_000;
const PRUNE_EVERY_MS = 3_600_000;

interface Outcome {
  status: number;
  body: unknown;
}

export function createIdempotency(store: Store, clock: () => number) {
  const inflight = new Map<string, Promise<Outcome>>();
  let prunedAt = 0;

  const reply = (c: Context<ApiEnv>, o: Outcome, replayed: boolean) =>
    c.json(o.body as object, o.status as 200, replayed ? { 'Idempotent-Replayed': 'true' } : {});

  return async function idempotent(c: Context<ApiEnv>, key: ApiKeyRow, run: () => Promise<Outcome>): Promise<Response> {
    const header = c.req.header('idempotency-key');
    if (header === undefined) return reply(c, await run(), false);
    if (!/^[\x21-\x7e][\x20-\x7e]{0,254}$/.test(header)) {
      throw badRequest('invalid_idempotency_key', 'Idempotency-Key must be 1-255 printable ASCII characters', 'Idempotency-Key');
    }
    const now = clock();
    if (now - prunedAt > PRUNE_EVERY_MS) {
      prunedAt = now;
      store.idempotency.prune(now - IDEMPOTENCY_TTL_MS);
    }
    const scoped = `${c.req.method} ${c.req.path} ${header}`;
    const stored = store.idempotency.get(key.id, scoped, now - IDEMPOTENCY_TTL_MS);
    if (stored) return reply(c, { status: stored.status, body: JSON.parse(stored.response) }, true);

    const flight = `${key.id}\n${scoped}`;
    const running = inflight.get(flight);
    if (running) return reply(c, await running, true);
    const p = run()
      .then((o) => {
        if (o.status >= 300) return o;
        try {
          store.idempotency.put(key.id, scoped, o.status, JSON.stringify(o.body), clock());
        } catch (e) {
          // The message is already queued (disk full since, I/O error): answering 5xx now
          // would make the client send it again. Only the replay protection is lost.
          c.get('log')?.warn({ err: e }, 'storing the Idempotency-Key response failed');
        }
        return o;
      })
      .finally(() => inflight.delete(flight));
    inflight.set(flight, p);
    return reply(c, await p, false);
  };
}
