// Shared set-up and checks for the fault suite (test/faults/): a gateway with short retry
// and timeout settings, a well-behaved "bystander" domain whose mail must keep flowing
// while another domain is failing, and the check every fault case makes — deferred with
// the reason, retried on the schedule, delivered once the peer recovers.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import type { ConfigInput } from '../../src/config/schema.js';
import { startMxSink, submitMail, until, type MxSink } from '../helpers/gateway.js';
import { DOMAIN, mxFor, startRelay, type RelayFixture } from '../helpers/relay.js';

/** The schedule every fault file runs with (ms), as config input below. */
export const SCHEDULE = [300, 600, 1000];
/** How late a retry may start after it became due: poll interval, a loaded 2-core machine. */
const RETRY_SLACK_MS = 900;
/** The bystander's 250 → its MX has it, at most. The first attempt starts at once (SPEC §6). */
export const PROMPT_MS = 1000;

export const BYSTANDER_DOMAIN = 'bystander.test';

export interface FaultHarness {
  f: RelayFixture;
  bystander: MxSink;
  /** The gateway's own self-signed key and certificate, for MX hosts that offer STARTTLS. */
  tls: { key: Buffer; cert: Buffer };
  stop(): Promise<void>;
}

type DeepPartial<T> = { [K in keyof T]?: T[K] extends object | undefined ? DeepPartial<NonNullable<T[K]>> | T[K] : T[K] };

/**
 * A relay with the fault schedule and ~1 s timeouts, and the bystander domain's MX on
 * `bystanderIp` (offering STARTTLS when `bystanderTls`).
 */
export async function startFaultRelay(bystanderIp: string, extra: DeepPartial<ConfigInput> = {}, o: { bystanderTls?: boolean } = {}): Promise<FaultHarness> {
  const f = await startRelay({
    ...extra,
    dns: { timeout: '500ms', ...(extra.dns ?? {}) },
    delivery: {
      retrySchedule: SCHEDULE.map((ms) => `${ms}ms`),
      connectTimeout: '1s',
      greetingTimeout: '1s',
      // Above greetingTimeout, as in production (30 s vs 2 min), so a silent greeting is reported as such.
      socketTimeout: '1200ms',
      ...(extra.delivery ?? {}),
    },
  } as DeepPartial<ConfigInput>);
  const certs = f.t.config.certsDir;
  const tls = { key: fs.readFileSync(path.join(certs, 'key.pem')), cert: fs.readFileSync(path.join(certs, 'cert.pem')) };
  mxFor(f, BYSTANDER_DOMAIN, [[10, `mx.${BYSTANDER_DOMAIN}`, bystanderIp]]);
  const bystander = await startMxSink(bystanderIp, f.t.mxPort, o.bystanderTls ? { disabledCommands: ['AUTH'], ...tls } : {});
  return {
    f,
    bystander,
    tls,
    async stop() {
      await f.stop();
      await bystander.close();
    },
  };
}

export { mxFor };

export async function send(
  f: RelayFixture,
  to: string | string[],
  extra: { subject?: string; text?: string; headers?: Record<string, string> } = {},
): Promise<{ id: string; acceptedAt: number }> {
  const r = await submitMail({ port: f.t.smtpPort, auth: f.auth, from: `app@${DOMAIN}`, to, text: 'hello', ...extra });
  assert.match(r.response, /^250 2\.0\.0 Ok: queued as \S+$/);
  return { id: r.id, acceptedAt: Date.now() };
}

let bystanders = 0;

/**
 * Sends one message to the bystander domain once `during()` holds (the fault is in
 * progress) and checks it reaches its MX promptly, in one attempt: a failing domain
 * must not slow the others.
 */
export async function bystanderNotSlowed(h: FaultHarness, during: () => boolean, what: string): Promise<number> {
  await until(during, `the fault in progress (${what})`, 8000, 10);
  const to = `by${++bystanders}@${BYSTANDER_DOMAIN}`;
  const { id, acceptedAt } = await send(h.f, to, { headers: { 'X-Relaygate-Track': 'none' } });
  const m = await until(() => h.bystander.received.find((x) => x.to.includes(to)), `bystander ${to} delivered`, 5000, 10);
  const took = m.at - acceptedAt;
  assert.ok(took < PROMPT_MS, `${what}: another domain was delivered ${took} ms after its 250 (limit ${PROMPT_MS} ms)`);
  const [r] = await h.f.settled(id, 5000);
  assert.equal(r.status, 'delivered');
  assert.equal(r.attempts, 1);
  return took;
}

export interface EventRow {
  type: string;
  recipient: string | null;
  at: number;
  data: Record<string, unknown>;
}

export function eventRows(f: RelayFixture, id: string): EventRow[] {
  return f.t.gw.store.events.forMessage(id).map((e: any) => ({
    type: e.type,
    recipient: e.recipient ?? null,
    at: e.at,
    data: typeof e.data === 'string' ? JSON.parse(e.data) : (e.data ?? {}),
  }));
}

/**
 * The first deferral as the API would show it between attempts: status deferred, the
 * reason in last_reply, the next attempt due one schedule step later.
 */
export async function firstDeferral(f: RelayFixture, id: string, reply: RegExp, email?: string) {
  const r = await until(
    () => f.recipients(id).find((x) => (email === undefined || x.email === email) && x.status === 'deferred'),
    `${email ?? id} deferred`,
    10_000,
    10,
  );
  assert.equal(r.attempts, 1);
  assert.match(r.last_reply ?? '', reply);
  assert.ok(r.next_attempt_at !== null);
  const step = r.next_attempt_at! - r.updated_at;
  assert.ok(Math.abs(step - SCHEDULE[0]) <= 20, `next attempt ${step} ms after the first deferral, schedule says ${SCHEDULE[0]}`);
  return r;
}

/**
 * After `failures` deferrals the recipient is delivered: the event log reads queued,
 * deferred × failures (each with a reply matching `reply`), delivered, and each retry
 * started no earlier than its schedule step and not much later. `attemptStarts` are
 * the times the fault saw each attempt begin (connections, DNS queries), when known.
 */
export async function deliveredAfterRetries(
  f: RelayFixture,
  id: string,
  o: { failures: number; reply: RegExp; email?: string; attemptStarts?: () => (number | undefined)[]; timeoutMs?: number },
): Promise<void> {
  const rows = await f.settled(id, o.timeoutMs ?? 15_000);
  const r = o.email ? rows.find((x) => x.email === o.email)! : rows[0];
  assert.equal(r.status, 'delivered', `${r.email}: ${r.status} ${r.last_reply}`);
  assert.equal(r.attempts, o.failures + 1);
  assert.match(r.last_reply ?? '', /^250 /);
  const ev = eventRows(f, id).filter((e) => e.recipient === r.email);
  assert.deepEqual(
    ev.map((e) => e.type),
    ['queued', ...Array<string>(o.failures).fill('deferred'), 'delivered'],
  );
  const outcomes = ev.slice(1);
  const attemptStarts = o.attemptStarts?.();
  for (const [i, e] of outcomes.entries()) {
    if (e.type === 'deferred') assert.match(String(e.data.reply), o.reply, `deferral ${i + 1}`);
    assert.equal(e.data.attempt, i + 1);
  }
  for (let k = 1; k < outcomes.length; k++) {
    const step = SCHEDULE[Math.min(k - 1, SCHEDULE.length - 1)];
    const prev = outcomes[k - 1].at;
    const start = attemptStarts?.[k];
    if (start !== undefined) {
      assert.ok(start >= prev + step - 15, `attempt ${k + 1} started ${start - prev} ms after deferral ${k}, before its ${step} ms step`);
      assert.ok(start <= prev + step + RETRY_SLACK_MS, `attempt ${k + 1} started ${start - prev} ms after deferral ${k} (step ${step} ms)`);
    } else {
      assert.ok(outcomes[k].at - prev >= step - 15, `attempt ${k + 1} ended ${outcomes[k].at - prev} ms after deferral ${k}, step ${step} ms`);
    }
  }
}
