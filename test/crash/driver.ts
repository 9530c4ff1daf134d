// The crash suite's driver, shared by `npm run test:crash` (full size) and the
// bounded test inside `npm test`. It runs the real gateway as a child process
// (`relaygate start`), pushes a load through SMTP and the HTTP API, SIGKILLs
// the gateway K times at seeded-random moments — some random, some aimed at
// the windows where crash bugs live — restarts it each time, and then counts
// what reached the loopback MX and the webhook receiver:
//   lost        acknowledged (250/202) but never arrived — must be 0
//   duplicated  arrived more than once, split into resends after a lost reply
//               (the client's RFC 1047 duplicate) and deliveries the gateway
//               itself repeated (killed after the remote 250, before its
//               state update: the unavoidable at-least-once window)
//   webhooks    every acknowledged delivery's `delivered` event arrives at
//               least once after the restarts; repeats are counted.
import fs from 'node:fs';
import path from 'node:path';
import { createApiKey } from '../../src/auth/api-keys.js';
import { addCredential } from '../../src/auth/credentials.js';
import { parseConfig } from '../../src/config/load.js';
import { createDomainService } from '../../src/domains/service.js';
import { openStore } from '../../src/store/index.js';
import { startChild, writeConfig, type GatewayChild } from '../helpers/child.js';
import { startTestDns, type TestDns } from '../helpers/dns-server.js';
import { prng } from '../helpers/prng.js';
import { freePort, tempDir } from '../helpers/gateway.js';
import { Load, postJson } from './load.js';
import type { CrashReport, KillKind, KillRecord } from './report.js';
import { startCountingMx, startWebhookReceiver, type CountingMx, type WebhookReceiver } from './sinks.js';

export { formatReport, type CrashReport, type KillKind } from './report.js';

export interface CrashOptions {
  messages: number;
  kills: number;
  seed: number;
  sessions?: number;
  /** 1 in httpEvery messages goes through POST /api/v1/messages. */
  httpEvery?: number;
  httpWorkers?: number;
  /** Destination domains (all on the one loopback MX). */
  domains?: number;
  /** Messages per second (0: as fast as the gateway answers, the default). */
  rate?: number;
  loadTimeoutMs?: number;
  drainTimeoutMs?: number;
  log?: (line: string) => void;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function bounded<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer!: NodeJS.Timeout;
  const t = new Promise<never>((_, rej) => (timer = setTimeout(() => rej(new Error(`${what}: no result in ${ms} ms`)), ms)));
  try {
    return await Promise.race([p, t]);
  } finally {
    clearTimeout(timer);
  }
}

/** Every targeted kind at least once (when K allows), the rest drawn at random; shuffled. */
export function killPlan(k: number, rand: () => number): KillKind[] {
  const aimed: KillKind[] = ['group-commit', 'after-remote-250', 'webhook-dispatch'];
  const all: KillKind[] = [...aimed, 'random'];
  const plan = aimed.slice(0, k);
  while (plan.length < k) plan.push(all[Math.floor(rand() * all.length)]);
  for (let i = plan.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [plan[i], plan[j]] = [plan[j], plan[i]];
  }
  return plan;
}

/** Kill i fires once this many messages are acknowledged: evenly spread, jittered. */
function thresholds(n: number, k: number, rand: () => number): number[] {
  const seg = n / (k + 1);
  return Array.from({ length: k }, (_, i) => Math.max(1, Math.floor(seg * (i + 1) + (rand() - 0.5) * 0.6 * seg)));
}

export async function runCrash(o: CrashOptions): Promise<CrashReport> {
  const log = o.log ?? (() => undefined);
  const sessions = o.sessions ?? 8;
  const httpEvery = o.httpEvery ?? 5;
  const httpWorkers = o.httpWorkers ?? 2;
  const rand = prng(o.seed);
  const t0 = Date.now();
  const dir = tempDir('relaygate-crashsuite-');
  const children: GatewayChild[] = [];
  const killedByUs = new WeakSet<GatewayChild>();
  const unexpectedExits: string[] = [];
  let dns: TestDns | undefined;
  let mx: CountingMx | undefined;
  let hooks: WebhookReceiver | undefined;
  let current: GatewayChild | null = null;
  let shuttingDown = false;
  /** Stops the load early (a gateway died on its own, or a restart failed): fail fast, not at the deadline. */
  let abortLoad: () => void = () => undefined;
  /** Gateway processes killed so far: receptions are tagged with it. */
  let epoch = 0;
  /** Epoch → when its gateway process was SIGKILLed. */
  const killedAt: number[] = [];

  try {
    dns = await startTestDns();
    const mxIp = '127.0.0.9';
    const mxPort = await freePort(mxIp);
    const domains = Array.from({ length: o.domains ?? 4 }, (_, i) => `d${i}.crash.test`);
    for (const d of domains) dns.set(d, [{ type: 'MX', exchange: 'mx.crash.test', priority: 10 }]);
    dns.set('mx.crash.test', [{ type: 'A', address: mxIp }]);
    // Fixed ports, as a real deployment has: clients reconnect to the same place after a restart.
    const smtpPort = await freePort();
    const httpPort = await freePort();
    const configInput = {
      dataDir: path.join(dir, 'data'),
      certsDir: path.join(dir, 'certs'),
      hostname: 'relay.test',
      smtp: { host: '127.0.0.1', port: smtpPort },
      http: { host: '127.0.0.1', port: httpPort, publicUrl: `http://127.0.0.1:${httpPort}`, rateLimit: 100_000 },
      dns: { servers: [dns.server], timeout: '2s' },
      delivery: {
        mxPort,
        retrySchedule: ['200ms', '500ms', '1s'],
        pollInterval: '200ms',
        connectTimeout: '2s',
        greetingTimeout: '3s',
        socketTimeout: '5s',
      },
      log: { level: 'info' },
    };
    const env = { RELAYGATE_CONFIG: writeConfig(dir, configInput) };

    // Domain, SMTP credential and API key through the services the CLI runs (in this
    // process: a CLI child per step costs seconds of node start-up each).
    const config = parseConfig(configInput, 'crash suite config');
    const setupStore = openStore(config.dataDir);
    let cred: { username: string; password: string };
    let apiKey: string;
    try {
      createDomainService({ config, store: setupStore }).add('example.test', {});
      const c = await addCredential(setupStore, 'example.test', { name: 'crash' });
      if (c.kind !== 'password') throw new Error('expected a password credential');
      cred = c;
      apiKey = createApiKey(setupStore, 'crash', ['send', 'read', 'admin']).key;
    } finally {
      setupStore.close();
    }
    const start = async () => {
      const c = await startChild(env, 60_000);
      children.push(c);
      current = c;
      void c.exited.then((code) => {
        if (killedByUs.has(c) || shuttingDown) return;
        unexpectedExits.push(`exit ${code}; last log lines:\n${c.log.slice(-5).join('\n')}`);
        abortLoad();
      });
    };
    await start();
    mx = await startCountingMx(mxIp, mxPort, () => epoch);
    hooks = await startWebhookReceiver('127.0.0.1');
    const hook = await postJson(httpPort, '/api/v1/webhooks', apiKey, JSON.stringify({ url: hooks.url, events: ['delivered'] }), null);
    if (hook.status !== 201) throw new Error(`webhook registration failed: ${hook.status} ${hook.text}`);
    const setupMs = Date.now() - t0;
    log(`setup done in ${setupMs} ms (seed ${o.seed}; smtp :${smtpPort}, http :${httpPort}, mx ${mxIp}:${mxPort})`);

    // --- load, with kills at seeded moments -------------------------------------------
    const tLoad = Date.now();
    const load = new Load({
      messages: o.messages,
      sessions,
      httpEvery,
      httpWorkers,
      smtpPort,
      httpPort,
      cred,
      apiKey,
      domains,
      rand,
      rate: o.rate,
      deadline: tLoad + (o.loadTimeoutMs ?? 600_000),
    });
    abortLoad = () => load.stop();
    const plan = killPlan(o.kills, rand);
    const marks = thresholds(o.messages, o.kills, rand);
    const kills: KillRecord[] = [];
    let loadDone = false;

    const sigkill = () => {
      const c = current;
      if (!c || c.proc.exitCode !== null) return;
      killedByUs.add(c);
      c.proc.kill('SIGKILL');
      killedAt[epoch] = Date.now();
      epoch++;
    };

    /** Waits for the aimed-at moment (or the fallback timeout), then SIGKILL. Returns whether it was aimed. */
    const aimAndKill = async (kind: KillKind): Promise<boolean> => {
      if (kind === 'random') {
        await sleep(rand() * 300);
        sigkill();
        return true;
      }
      if (kind === 'group-commit') {
        // Many submissions past their final dot / request body and not yet answered: they
        // are in DKIM signing or in the one transaction the committer is writing.
        const want = Math.ceil(0.6 * (sessions + httpWorkers));
        let aimed = false;
        await Promise.race([
          new Promise<void>((resolve) =>
            load.whenInflight(want, () => {
              aimed = true;
              sigkill();
              resolve();
            }),
          ),
          sleep(3000),
        ]);
        load.cancelInflightWatch();
        if (!aimed) sigkill();
        return aimed;
      }
      const sink = kind === 'after-remote-250' ? mx! : hooks!;
      let fired = false;
      const arm = (fn: () => void) => (kind === 'after-remote-250' ? mx!.armAfter250(fn) : hooks!.armOnReceipt(fn));
      const done = new Promise<void>((resolve) => {
        // Called synchronously right after the peer wrote its success reply.
        arm(() => {
          fired = true;
          sigkill();
          resolve();
        });
      });
      await Promise.race([done, sleep(5000)]);
      sink.disarm();
      if (!fired) sigkill();
      return fired;
    };

    const killer = (async () => {
      for (let i = 0; i < plan.length; i++) {
        while (load.ledger.acked.size < marks[i] && !loadDone) await sleep(5);
        if (loadDone) break;
        const ackedBefore = load.ledger.acked.size;
        const atMs = Date.now() - tLoad;
        const victim = current!;
        const aimed = await aimAndKill(plan[i]);
        const tKill = Date.now();
        await bounded(victim.exited, 10_000, 'killed gateway exit');
        await sleep(rand() * 200);
        await start();
        const rec: KillRecord = { n: i + 1, kind: plan[i], aimed, ackedBefore, atMs, downMs: Date.now() - tKill, redelivered: 0 };
        kills.push(rec);
        log(`kill ${rec.n}/${plan.length}: ${rec.kind}${aimed ? '' : ' (moment not reached; killed on timeout)'} at ${ackedBefore} acknowledged, back in ${rec.downMs} ms`);
      }
    })();
    killer.catch(() => load.stop());

    const progress = setInterval(() => {
      log(`  acknowledged ${load.ledger.acked.size}/${o.messages}, MX received ${mx!.total()}, webhooks ${hooks!.total()}`);
    }, 5000);
    try {
      await load.run();
    } finally {
      loadDone = true;
      clearInterval(progress);
    }
    await killer;
    const loadMs = Date.now() - tLoad;
    log(`load done in ${loadMs} ms: ${load.ledger.acked.size} acknowledged, ${kills.length} kills`);

    // --- drain: every acknowledged seq at the MX, then its webhook event -------------------
    const acked = [...load.ledger.acked.keys()];
    const tDrain = Date.now();
    const drainUntil = tDrain + (o.drainTimeoutMs ?? 120_000);
    while (acked.some((s) => !mx!.counts.has(s)) && Date.now() < drainUntil) await sleep(100);
    await sleep(1500); // a would-be duplicate has time to show
    const drainMs = Date.now() - tDrain;
    const tHooks = Date.now();
    const hooksUntil = tHooks + (o.drainTimeoutMs ?? 120_000);
    while (acked.some((s) => !hooks!.deliveredBySeq.has(s)) && Date.now() < hooksUntil) await sleep(100);
    await sleep(500);
    const webhookMs = Date.now() - tHooks;

    // --- figures ------------------------------------------------------------------------
    const lostSeqs = acked.filter((s) => !mx!.counts.has(s)).sort((a, b) => a - b);
    let duplicated = 0;
    let afterLostReply = 0;
    let afterLostReplyHttp = 0;
    for (const [seq, n] of mx.counts) {
      if (n <= 1) continue;
      duplicated += n - 1;
      // Copies under another queue id were submitted again by the client.
      const resent = new Set(mx.queueIds.get(seq) ?? []).size - 1;
      afterLostReply += resent;
      if (load.ledger.acked.get(seq) === 'http') afterLostReplyHttp += resent;
    }
    // A reception in epoch j of a seq the MX already had from an earlier epoch is a
    // redelivery caused by kill j.
    for (const list of mx.epochs.values()) {
      for (let i = 1; i < list.length; i++) if (list[i] > list[0] && kills[list[i] - 1]) kills[list[i] - 1].redelivered++;
    }
    // How long before the kill the MX had each message the gateway then sent again: what is
    // younger than the reply's way back (a millisecond or so) no gateway could have recorded.
    const redeliveryAgesMs: number[] = [];
    for (const [seq, list] of mx.epochs) {
      const ids = mx.queueIds.get(seq) ?? [];
      if (list.length < 2 || new Set(ids).size === ids.length) continue;
      const first = mx.firstAt.get(seq);
      const kill = killedAt[list[0]];
      if (first !== undefined && kill !== undefined) redeliveryAgesMs.push(kill - first);
    }
    redeliveryAgesMs.sort((a, b) => a - b);
    const missingHooks = acked.filter((s) => !hooks!.deliveredBySeq.has(s)).sort((a, b) => a - b);
    let hookDups = 0;
    for (const n of hooks.byEvent.values()) hookDups += Math.max(0, n - 1);
    // The at-least-once window, measured: MX reception → the outcome the gateway recorded
    // (the row's updated_at, taken just before the outcome is journaled). A kill inside it
    // sends the message again. Read from the database rather than the log, whose timestamps
    // are taken when the main thread writes the line, later than the delivery thread's record.
    const recordedAt = new Map<number, number>();
    const readStore = openStore(config.dataDir);
    try {
      const rows = readStore.db.prepare("SELECT email, updated_at FROM recipients WHERE status = 'delivered'").all() as { email: string; updated_at: number }[];
      for (const r of rows) {
        const m = /^c(\d+)@/.exec(r.email);
        if (m) recordedAt.set(Number(m[1]), r.updated_at);
      }
    } finally {
      readStore.close();
    }
    const lags: number[] = [];
    for (const [seq, at] of recordedAt) {
      // A message delivered again was recorded only by the next process: its "lag" would be
      // the restart, not the window. Those are counted as duplicates instead.
      if ((mx.counts.get(seq) ?? 0) > 1) continue;
      const first = mx.firstAt.get(seq);
      if (first !== undefined && at >= first - 5) lags.push(at - first);
    }
    lags.sort((a, b) => a - b);
    const q = (p: number) => (lags.length ? lags[Math.min(lags.length - 1, Math.floor(p * lags.length))] : NaN);
    let ambiguousAttempts = 0;
    for (const n of load.ledger.ambiguous.values()) ambiguousAttempts += n;

    return {
      seed: o.seed,
      messages: o.messages,
      rate: o.rate ?? 0,
      sessions,
      httpEvery,
      acknowledged: acked.length,
      ackedSmtp: acked.filter((s) => load.ledger.acked.get(s) === 'smtp').length,
      ackedHttp: acked.filter((s) => load.ledger.acked.get(s) === 'http').length,
      unacknowledged: load.remaining(),
      refused: [...load.ledger.refused].map(([seq, reply]) => ({ seq, reply })),
      ambiguousAttempts,
      tempFailures: load.ledger.tempFailures,
      delivered: acked.length - lostSeqs.length,
      lost: lostSeqs.length,
      lostSeqs: lostSeqs.slice(0, 50),
      duplicated,
      duplicatedAfterLostReply: afterLostReply,
      duplicatedAfterLostReplyHttp: afterLostReplyHttp,
      duplicatedByGateway: duplicated - afterLostReply,
      redeliveryAgesMs,
      mxReceptions: mx.total(),
      duplicateEpochs: [...mx.epochs]
        .filter(([, e]) => e.length > 1)
        .slice(0, 20)
        .map(([seq, epochs]) => ({ seq, epochs, resentAfterLostReply: new Set(mx!.queueIds.get(seq) ?? []).size - 1 })),
      mxUnreadable: mx.unreadable,
      unackedArrived: [...mx.counts.keys()].filter((s) => !load.ledger.acked.has(s)).length,
      kills,
      unexpectedExits,
      webhook: {
        expected: acked.length,
        received: acked.length - missingHooks.length,
        missing: missingHooks.length,
        missingSeqs: missingHooks.slice(0, 50),
        duplicated: hookDups,
        total: hooks.total(),
      },
      recordLag: { n: lags.length, p50: q(0.5), p90: q(0.9), p99: q(0.99), max: lags.length ? lags[lags.length - 1] : NaN },
      timings: { setupMs, loadMs, drainMs, webhookMs, wallMs: Date.now() - t0 },
      dataDir: dir,
    };
  } finally {
    shuttingDown = true;
    // The last gateway stops the way an operator stops it (SIGTERM, bounded); any other
    // child still alive after a failure is SIGKILLed.
    for (const c of children) {
      if (c.proc.exitCode !== null) continue;
      killedByUs.add(c);
      c.proc.kill(c === current ? 'SIGTERM' : 'SIGKILL');
      const ok = await bounded(c.exited, 12_000, 'gateway exit').then(
        () => true,
        () => false,
      );
      if (!ok) {
        c.proc.kill('SIGKILL');
        await bounded(c.exited, 5_000, 'gateway exit').catch(() => undefined);
      }
    }
    await mx?.close().catch(() => undefined);
    await hooks?.close().catch(() => undefined);
    await dns?.close().catch(() => undefined);
    if (process.env.RELAYGATE_CRASH_KEEP) {
      // Kept for a post-mortem: the data directory and each gateway process's log.
      children.forEach((c, i) => fs.writeFileSync(path.join(dir, `gateway-${i}.log`), c.log.join('\n')));
    } else {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  }
}
