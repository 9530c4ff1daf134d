// Webhook delivery from the durable outbox (events are written there in the
// same transaction as the event itself, so none is lost across restarts).
// Each endpoint has its own small concurrency budget, so one slow receiver
// cannot hold up the others.
import { createHmac } from 'node:crypto';
import type { Logger } from 'pino';
import type { Config } from '../config/schema.js';
import type { Metrics } from '../metrics.js';
import type { Store } from '../store/index.js';
import type { OutboxRow } from '../store/webhooks.js';
import { resolvedProblem } from './url-policy.js';

export interface WebhookDispatcher {
  start(): void;
  wake(): void;
  stop(): Promise<void>;
}

const PER_HOOK = 4;
const TOTAL = 32;
const POLL_MS = 250;
const RETRY_FOR_MS = 24 * 3_600_000;
const LEASE_MS = 60_000;

export function signPayload(secret: string, timestamp: string, body: string): string {
  return `sha256=${createHmac('sha256', secret).update(`${timestamp}.${body}`).digest('hex')}`;
}

/** Exponential backoff with jitter: ~2 s, 4 s, 8 s … capped at 30 min. */
export function backoffMs(attempts: number, random = Math.random): number {
  const base = Math.min(2000 * 2 ** Math.max(0, attempts - 1), 30 * 60_000);
  return Math.round(base * (0.75 + random() * 0.5));
}

export function createWebhookDispatcher(deps: { config: Config; store: Store; logger: Logger; metrics?: Metrics; clock?: () => number }): WebhookDispatcher {
  const { store, config } = deps;
  const log = deps.logger.child({ component: 'webhooks' });
  const now = deps.clock ?? Date.now;
  const perHook = new Map<string, number>();
  const inflight = new Set<Promise<void>>();
  let timer: NodeJS.Timeout | null = null;
  let stopping = false;

  function schedule(ms: number) {
    if (stopping) return;
    if (timer) clearTimeout(timer);
    timer = setTimeout(tick, ms);
    timer.unref?.();
  }

  function tick() {
    timer = null;
    if (stopping) return;
    try {
      const room = TOTAL - inflight.size;
      if (room > 0) {
        const busy = [...perHook].filter(([, n]) => n >= PER_HOOK).map(([id]) => id);
        // Lease only the rows that are sent now. Rows over an endpoint's PER_HOOK budget used
        // to be leased too and skipped: with one endpoint, 28 of every 32 claimed events sat
        // unsent for their 60 s lease, and when it ran out the next claim did the same again.
        const rows = store.webhooks.claimDue(now(), room, busy, LEASE_MS, (due) => {
          const taking = new Map<string, number>();
          return due.filter((row) => {
            const n = (perHook.get(row.webhook_id) ?? 0) + (taking.get(row.webhook_id) ?? 0);
            if (n >= PER_HOOK) return false;
            taking.set(row.webhook_id, (taking.get(row.webhook_id) ?? 0) + 1);
            return true;
          });
        });
        for (const row of rows) {
          perHook.set(row.webhook_id, (perHook.get(row.webhook_id) ?? 0) + 1);
          const p = send(row)
            .catch((e) => log.error({ err: e }, 'webhook send crashed'))
            .finally(() => {
              inflight.delete(p);
              const left = (perHook.get(row.webhook_id) ?? 1) - 1;
              if (left <= 0) perHook.delete(row.webhook_id);
              else perHook.set(row.webhook_id, left);
              schedule(0);
            });
          inflight.add(p);
        }
      }
    } catch (e) {
      log.error({ err: e }, 'webhook claim failed');
    }
    schedule(POLL_MS);
  }

  async function send(row: OutboxRow): Promise<void> {
    const ts = String(Math.floor(now() / 1000));
    let status: number | null = null;
    let error: string | null = null;
    try {
      const problem = await resolvedProblem(new URL(row.url), config.webhooks.allowLinkLocal);
      if (problem) throw new Error(problem);
      const res = await fetch(row.url, {
        method: 'POST',
        headers: {
          'Content-Type': 'application/json',
          'User-Agent': 'relaygate-webhooks/1',
          'X-Relaygate-Timestamp': ts,
          'X-Relaygate-Signature': signPayload(row.secret, ts, row.payload),
          'X-Relaygate-Event-Id': `evt_${row.event_id}`,
        },
        body: row.payload,
        redirect: 'manual',
        signal: AbortSignal.timeout(config.webhooks.timeout),
      });
      status = res.status;
      await res.body?.cancel().catch(() => undefined);
      if (status < 200 || status >= 300) error = `HTTP ${status}`;
    } catch (e) {
      error = (e as Error).name === 'TimeoutError' ? `timeout after ${config.webhooks.timeout} ms` : String((e as Error).message ?? e);
    }
    const at = now();
    // Recorded at once and without an fsync (an fsync per event cost ~1.7 s of blocked loop
    // per 1,000 events): a result lost in a power cut only means the event is POSTed again,
    // which receivers must tolerate anyway (at-least-once), and a SIGKILL loses nothing.
    if (!error) {
      store.committer.runNow(() => store.webhooks.result(row.id, { status: 'delivered', nextAttemptAt: at, httpStatus: status, error: null, at }));
      deps.metrics?.webhookDeliveries.inc();
      log.debug({ webhook: row.webhook_id, event: row.event_id }, 'webhook delivered');
      return;
    }
    deps.metrics?.webhookFailures.inc();
    const giveUp = at - row.created_at >= RETRY_FOR_MS;
    store.committer.runNow(() =>
      store.webhooks.result(row.id, {
        status: giveUp ? 'failed' : 'pending',
        nextAttemptAt: at + backoffMs(row.attempts + 1),
        httpStatus: status,
        error,
        at,
      }),
    );
    log.warn({ webhook: row.webhook_id, event: row.event_id, attempt: row.attempts + 1, error, gave_up: giveUp }, 'webhook call failed');
  }

  return {
    start() {
      store.webhooks.releaseAllLeases();
      schedule(0);
    },
    wake() {
      schedule(0);
    },
    async stop() {
      stopping = true;
      if (timer) clearTimeout(timer);
      await Promise.race([Promise.allSettled([...inflight]), new Promise((r) => setTimeout(r, 3000).unref())]);
    },
  };
}
