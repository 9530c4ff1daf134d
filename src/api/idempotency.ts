// Idempotency-Key (Stripe-style): a retried POST with the same key, from the
// same API key, within 24 h gets the first response back instead of sending
// the mail twice. Concurrent duplicates wait for the first one to finish.
// Only successful responses are remembered, so a request that failed
// validation can be corrected and retried under the same key.
//
// The response is stored after the messages are, so a crash in between would
// let the retry send them again. Each message therefore also leaves a "part"
// record in the very transaction that stores it; a retry that finds no
// response but finds parts reuses those messages and sends only the rest.
import { createHash } from 'node:crypto';
import type { Context } from 'hono';
import type { Accepted } from '../pipeline/submit.js';
import type { Store } from '../store/index.js';
import type { ApiKeyRow } from '../store/tenants.js';
import type { ApiEnv } from './env.js';
import { ApiError, badRequest } from './errors.js';

export const IDEMPOTENCY_TTL_MS = 24 * 3_600_000;
const PRUNE_EVERY_MS = 3_600_000;

interface Outcome {
  status: number;
  body: unknown;
}

/** The messages of one idempotent request, numbered in request order. */
export interface IdempotentParts {
  /** What an earlier attempt under the same key already stored as message `index`. */
  stored(index: number): Accepted | undefined;
  /** Records message `index`; runs inside the transaction that stores the message. */
  record(index: number): (accepted: Accepted) => void;
}

export function createIdempotency(store: Store, clock: () => number) {
  const inflight = new Map<string, Promise<Outcome>>();
  let prunedAt = 0;

  const reply = (c: Context<ApiEnv>, o: Outcome, replayed: boolean) =>
    c.json(o.body as object, o.status as 200, replayed ? { 'Idempotent-Replayed': 'true' } : {});

  return async function idempotent(
    c: Context<ApiEnv>,
    key: ApiKeyRow,
    body: unknown,
    run: (parts?: IdempotentParts) => Promise<Outcome>,
  ): Promise<Response> {
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
    // '\n' cannot occur in a key (printable ASCII only), so part keys never meet real ones.
    const partPrefix = `${scoped}\n#`;
    // Parts are reused by position, so they must belong to this very request: the same key
    // with another body after a crash would otherwise map old messages onto new recipients.
    const fingerprint = createHash('sha256').update(JSON.stringify(body)).digest('base64url');
    const earlier = new Map<string, { fp: string; accepted: Accepted }>();
    for (const [k, v] of store.idempotency.withPrefix(key.id, partPrefix, now - IDEMPOTENCY_TTL_MS)) {
      const part = JSON.parse(v) as { fp: string; accepted: Accepted };
      if (part.fp !== fingerprint) {
        throw new ApiError(422, 'idempotency_key_reused', 'Idempotency-Key was already used with a different request body');
      }
      earlier.set(k, part);
    }
    const parts: IdempotentParts = {
      stored: (i) => earlier.get(`${partPrefix}${i}`)?.accepted,
      record: (i) => (accepted) =>
        store.idempotency.put(key.id, `${partPrefix}${i}`, 202, JSON.stringify({ fp: fingerprint, accepted }), clock()),
    };
    const p = run(parts)
      .then(async (o) => {
        if (o.status >= 300) return o;
        try {
          await store.committer.run(() => {
            store.idempotency.put(key.id, scoped, o.status, JSON.stringify(o.body), clock());
            store.idempotency.dropPrefix(key.id, partPrefix);
          });
        } catch (e) {
          // The messages are queued and their parts recorded, so a retry still sends none
          // twice; answering 5xx now would only make the client retry for nothing.
          c.get('log')?.warn({ err: e }, 'storing the Idempotency-Key response failed');
        }
        return o;
      })
      .finally(() => inflight.delete(flight));
    inflight.set(flight, p);
    return reply(c, await p, false);
  };
}
