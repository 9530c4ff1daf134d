// The delivery worker: claims due recipients, groups them into SMTP
// transactions (same destination domain, same stored body), resolves MX and
// records every attempt's outcome. Concurrency is bounded in total and per
// destination domain so one slow domain cannot starve the others.
import type { Logger } from 'pino';
import type { Config } from '../config/schema.js';
import { GatewayError, isGatewayError } from '../errors.js';
import { isBusyError } from '../store/db.js';
import type { Store } from '../store/index.js';
import type { OutcomeJournal } from '../store/outcome-journal.js';
import type { AttemptOutcome, ClaimedRecipient } from '../store/queue.js';
import { classifyBounce } from './bounce-classify.js';
import { createMxResolver, type MxResolver } from './mx-resolve.js';
import { OutcomeRecorder } from './outcome-recorder.js';
import { capTimeout, nextAttemptAt } from './retry.js';
import { createSmtpClient, type DeliveryTarget, type SmtpClient } from './smtp-client.js';

/** What the worker reports for metrics; the thread forwards it to the gateway's registry. */
export interface DeliveryMetrics {
  /** One per recipient attempt; latency (acceptance → delivery) only for delivered ones. */
  outcome(result: string, bounceClass: string, latencySeconds?: number): void;
}

export interface WorkerDeps {
  config: Config;
  /** A connection of the worker's own: start() sets it not to wait for locks (see outcome-recorder). */
  store: Store;
  journal: OutcomeJournal;
  logger: Logger;
  metrics?: DeliveryMetrics;
  /** Called with the number of transactions in flight whenever it may have changed. */
  onActive?: (n: number) => void;
  resolver?: MxResolver;
  client?: SmtpClient;
  clock?: () => number;
}

export interface DeliveryWorker {
  start(): void;
  wake(): void;
  stop(graceMs?: number): Promise<void>;
  active(): number;
}

/**
 * Every stored reply reads like an SMTP reply (`451 4.4.3 ...`), ours as well as the
 * remote ones, so API clients and the bounce classifier see one form.
 */
function asReply(e: GatewayError): string {
  return /^[245]\d\d[ -]/.test(e.message) ? e.message : e.smtpReply;
}

/** A lease longer than any single attempt; after a crash, start-up releases leases at once. */
const LEASE_MS = 15 * 60_000;
const MAX_RCPTS_PER_TRANSACTION = 100;

export function createDeliveryWorker(deps: WorkerDeps): DeliveryWorker {
  const { config, store } = deps;
  const log = deps.logger.child({ component: 'delivery' });
  const now = deps.clock ?? Date.now;
  const resolver = deps.resolver ?? createMxResolver({ servers: config.dns.servers, timeoutMs: config.dns.timeout });
  const client = deps.client ?? createSmtpClient({ logger: log });
  const recorder = new OutcomeRecorder(store, deps.journal, log);
  const perDomain = new Map<string, number>();
  const inflight = new Set<Promise<void>>();
  let timer: NodeJS.Timeout | null = null;
  let stopping = false;
  let ticking = false;
  let again = false;

  function schedule(delay: number) {
    if (stopping) return;
    if (timer) clearTimeout(timer);
    timer = setTimeout(tick, delay);
    timer.unref?.();
  }

  function tick() {
    // wake() runs tick from setImmediate while a timer may be pending. Dropping the
    // reference without clearing it left that timer running its own chain of ticks:
    // one more chain per accepted message, thousands of claims a second after a while.
    if (timer) clearTimeout(timer);
    timer = null;
    if (stopping) return;
    if (ticking) {
      again = true;
      return;
    }
    ticking = true;
    let started = 0;
    let locked = false;
    let next: number | null = null;
    try {
      started = claimAndStart();
      next = store.queue.nextDueAt();
    } catch (e) {
      // Another connection holds the write lock (a group commit's fsync): look again shortly.
      if (isBusyError(e)) locked = true;
      else log.error({ err: e }, 'claim failed');
    } finally {
      ticking = false;
    }
    if (locked) {
      again = false;
      schedule(2);
    } else if (again) {
      again = false;
      schedule(0);
    } else {
      // Rows already due that could not start (every slot, or their domain's, is taken) wait
      // for a delivery to finish — its finally() wakes us — or the poll. Re-ticking at 0 ms
      // for them spun the event loop: 40 claims per message under load, the SMTP edge starved.
      const t = now();
      const wait = next === null || (next <= t && started === 0) ? config.delivery.pollInterval : Math.max(0, next - t);
      schedule(Math.min(wait, config.delivery.pollInterval));
    }
  }

  /** Returns how many transactions it started. */
  function claimAndStart(): number {
    const capacity = config.delivery.concurrency - inflight.size;
    if (capacity <= 0) return 0;
    const busy = [...perDomain].filter(([, n]) => n >= config.delivery.perDomainConcurrency).map(([d]) => d);
    // Only the recipients of transactions that start now are leased, in the claim's own
    // transaction. (Leasing all capacity * 4 rows and then releasing the surplus one row at
    // a time cost one fsync per row — with synchronous=FULL, ~200 fsyncs on the event loop
    // after every finished delivery, which starved the SMTP edge and the 250 replies.)
    let groups: ClaimedRecipient[][] = [];
    store.queue.claimDue(now(), capacity * 4, busy, LEASE_MS, (due) => {
      groups = planTransactions(due);
      return groups.flat();
    });
    for (const group of groups) {
      const domain = group[0].rcpt_domain;
      perDomain.set(domain, (perDomain.get(domain) ?? 0) + 1);
      const p = deliverGroup(group)
        .catch((e) => log.error({ err: e, domain }, 'delivery crashed'))
        .finally(() => {
          inflight.delete(p);
          deps.onActive?.(inflight.size);
          const left = (perDomain.get(domain) ?? 1) - 1;
          if (left <= 0) perDomain.delete(domain);
          else perDomain.set(domain, left);
          schedule(0);
        });
      inflight.add(p);
    }
    if (groups.length) deps.onActive?.(inflight.size);
    return groups.length;
  }

  /** Due rows → the transactions to start now (same domain and body), within both concurrency limits. */
  function planTransactions(due: ClaimedRecipient[]): ClaimedRecipient[][] {
    const byKey = new Map<string, ClaimedRecipient[]>();
    for (const r of due) {
      const key = `${r.rcpt_domain}\0${r.body_id}`;
      const g = byKey.get(key);
      if (!g) byKey.set(key, [r]);
      else if (g.length < MAX_RCPTS_PER_TRANSACTION) g.push(r);
    }
    const out: ClaimedRecipient[][] = [];
    const starting = new Map<string, number>();
    let slots = config.delivery.concurrency - inflight.size;
    for (const g of byKey.values()) {
      if (slots <= 0) break;
      const domain = g[0].rcpt_domain;
      const n = (perDomain.get(domain) ?? 0) + (starting.get(domain) ?? 0);
      if (n >= config.delivery.perDomainConcurrency) continue;
      starting.set(domain, (starting.get(domain) ?? 0) + 1);
      slots--;
      out.push(g);
    }
    return out;
  }

  async function deliverGroup(group: ClaimedRecipient[]): Promise<void> {
    const first = group[0];
    const domain = first.rcpt_domain;
    const started = now();
    // maxAge runs from acceptance, or for a scheduled message from when it became due:
    // otherwise one scheduled further ahead than maxAge would expire unattempted.
    const deadline = Math.max(first.created_at, first.send_at ?? 0) + config.delivery.maxAge;
    const outcome = (r: ClaimedRecipient, status: AttemptOutcome['status'], reply: string, extra: Partial<AttemptOutcome> = {}): AttemptOutcome => ({
      recipientId: r.id,
      status,
      reply,
      at: now(),
      ...extra,
    });

    if (started >= deadline) {
      const reply = `Message expired after ${Math.round(config.delivery.maxAge / 1000)}s in the queue; last reply: ${first.last_reply ?? 'none'}`;
      return commit(group, group.map((r) => outcome(r, 'expired', r.last_reply ?? reply)));
    }
    const body = first.body_id !== null ? store.queue.body(first.body_id) : undefined;
    if (!body) {
      log.error({ msg_id: first.message_id }, 'stored body missing');
      return commit(group, group.map((r) => outcome(r, 'bounced', '554 5.3.0 Stored message body missing', { bounceClass: 'other' })));
    }

    let targets: DeliveryTarget[];
    try {
      targets = await findTargets(domain);
    } catch (e) {
      if (isGatewayError(e) && !e.temporary) {
        const cls = e.code === 'bad_domain' ? 'bad-domain' : 'other';
        return commit(group, group.map((r) => outcome(r, 'bounced', asReply(e), { bounceClass: cls })));
      }
      const reply = isGatewayError(e) ? asReply(e) : `451 4.4.3 DNS lookup for ${domain} failed`;
      return commit(group, group.map((r) => failOrRetry(r, reply)));
    }

    const timeouts = {
      connectMs: capTimeout(config.delivery.connectTimeout, deadline, started),
      greetingMs: capTimeout(config.delivery.greetingTimeout, deadline, started),
      socketMs: capTimeout(config.delivery.socketTimeout, deadline, started),
    };
    const res = await client.send(targets, {
      mailFrom: first.mail_from,
      recipients: group.map((r) => r.email),
      body,
      heloName: config.hostname,
      tls: config.delivery.tls,
      auth: config.delivery.relayHost?.auth,
      timeouts,
    });
    const host = res.target ? `${res.target.host} [${res.target.address}]` : undefined;
    const outcomes = group.map((r) => {
      const rr = res.results.find((x) => x.recipient === r.email);
      if (!rr) return failOrRetry(r, '451 4.3.0 No result for recipient');
      if (rr.status === 'delivered') return outcome(r, 'delivered', rr.reply, { data: { mx: host } });
      if (rr.status === 'bounced') return outcome(r, 'bounced', rr.reply, { bounceClass: classifyBounce(rr.reply), data: { mx: host } });
      return failOrRetry(r, rr.reply, host);
    });
    return commit(group, outcomes);

    function failOrRetry(r: ClaimedRecipient, reply: string, mx?: string): AttemptOutcome {
      const t = now();
      const data = mx ? { mx } : undefined;
      if (t >= deadline) return outcome(r, 'expired', reply, { data });
      const next = Math.min(nextAttemptAt(t, r.attempts + 1, config.delivery.retrySchedule), deadline);
      return outcome(r, 'deferred', reply, { nextAttemptAt: next, data });
    }
  }

  async function findTargets(domain: string): Promise<DeliveryTarget[]> {
    const relay = config.delivery.relayHost;
    if (relay) return [{ host: relay.host, address: relay.host, port: relay.port }];
    const mx = await resolver.resolve(domain);
    if (mx.kind === 'nxdomain') {
      throw new GatewayError('bad_domain', `550 5.1.2 Domain ${domain} does not exist (NXDOMAIN)`, { smtp: 550 });
    }
    if (mx.kind === 'null-mx') {
      throw new GatewayError('bad_domain', `556 5.1.10 Domain ${domain} does not accept mail (null MX, RFC 7505)`, { smtp: 556 });
    }
    if (mx.kind === 'no-address') {
      throw new GatewayError('dns_temp', `451 4.4.4 No address found for the MX hosts of ${domain}`, { smtp: 451 });
    }
    return mx.hosts.flatMap((h) => h.addresses.map((address) => ({ host: h.exchange, address, port: config.delivery.mxPort })));
  }

  async function commit(group: ClaimedRecipient[], outcomes: AttemptOutcome[]): Promise<void> {
    await recorder.record(
      outcomes.map((o, i) => {
        const r = group[i];
        const suppress = o.status === 'bounced' && o.bounceClass === 'bad-mailbox' ? { domain: r.msg_domain, email: r.email } : undefined;
        return { outcome: { ...o, attempt: r.attempts + 1 }, suppress };
      }),
    );
    outcomes.forEach((o, i) => {
      const r = group[i];
      deps.metrics?.outcome(o.status, o.bounceClass ?? '', o.status === 'delivered' ? (o.at - r.created_at) / 1000 : undefined);
      log.info({ msg_id: r.message_id, rcpt: r.email, status: o.status, attempt: r.attempts + 1, reply: o.reply, bounce_class: o.bounceClass }, `recipient ${o.status}`);
    });
  }

  return {
    start() {
      const replayed = recorder.replay();
      if (replayed.applied || replayed.skipped || replayed.refused || replayed.torn) log.warn(replayed, 'applied delivery outcomes journaled by a previous process');
      const released = store.queue.releaseAllLeases();
      store.setBusyTimeout(0);
      if (released) log.warn({ released }, 'released deliveries claimed by a previous process');
      schedule(0);
    },
    wake() {
      if (timer) clearTimeout(timer);
      timer = null;
      setImmediate(tick);
    },
    async stop(graceMs = 7000) {
      stopping = true;
      if (timer) clearTimeout(timer);
      const all = Promise.allSettled([...inflight]);
      const res = await Promise.race([all.then(() => true), new Promise<false>((r) => setTimeout(() => r(false), graceMs).unref())]);
      if (!res) log.warn({ inflight: inflight.size }, 'stopping with deliveries in flight; they are retried at next start');
      recorder.close(inflight.size > 0);
      await client.close();
    },
    active: () => inflight.size,
  };
}
