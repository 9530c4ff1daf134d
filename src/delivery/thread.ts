// The gateway's handle on its delivery thread (thread-entry.ts): starts it,
// wakes it when mail is queued, writes its log records and metrics, restarts it
// if it dies, and stops it within a grace period.
import type { Worker } from 'node:worker_threads';
import type { Level, Logger } from 'pino';
import type { Config } from '../config/schema.js';
import type { Metrics } from '../metrics.js';
import type { Store } from '../store/index.js';
import { startWorkerThread } from '../util/worker-thread.js';
import { revivedArgs, revivedError, type DeliveryThreadData, type FromThread, type ToThread } from './thread-protocol.js';

export interface DeliveryRunner {
  /** Resolves once the thread has its store open and has released leases left by a previous process. */
  start(): Promise<void>;
  /** New mail is due: look now rather than at the next poll. */
  wake(): void;
  stop(graceMs?: number): Promise<void>;
  /** SMTP transactions in flight. */
  active(): number;
  /** The running thread, if any: for diagnostics and the tests that make it die. */
  thread(): Worker | null;
}

const START_TIMEOUT_MS = 30_000;
const RESTART_MAX_DELAY_MS = 30_000;

export function createDeliveryThread(deps: { config: Config; store: Store; logger: Logger; metrics?: Metrics }): DeliveryRunner {
  const { config, store, logger, metrics } = deps;
  const log = logger.child({ component: 'delivery' });
  let worker: Worker | null = null;
  let active = 0;
  let stopping = false;
  let wakeQueued = false;
  let restartDelay = 500;
  let restartTimer: NodeJS.Timeout | null = null;

  const data = (): DeliveryThreadData => ({ config, sync: store.syncShared, logLevel: logger.level });

  // Children by their bindings: the thread logs with a handful of them, a line per delivery.
  const children = new Map<string, Logger>();
  const loggerFor = (bindings: Record<string, unknown>): Logger => {
    const key = JSON.stringify(bindings);
    if (key === '{}') return logger;
    let child = children.get(key);
    if (!child) {
      if (children.size >= 64) children.clear();
      children.set(key, (child = logger.child(bindings)));
    }
    return child;
  };

  function onRecord(m: FromThread): void {
    if (m.t === 'log') {
      const label = logger.levels.labels[m.level] as Level | undefined;
      if (!label) return;
      const target = loggerFor(m.bindings);
      (target[label] as (...a: unknown[]) => void)(...revivedArgs(m.args));
    } else if (m.t === 'outcome') {
      metrics?.deliveries.inc({ result: m.result, bounce_class: m.bounceClass });
      if (m.latencySeconds !== undefined) metrics?.deliveryLatency.observe(m.latencySeconds);
    } else if (m.t === 'active') {
      active = m.n;
    }
  }

  /** Starts a thread; resolves when it is ready, rejects if it fails to start. */
  function spawn(): Promise<void> {
    const w = startWorkerThread(import.meta.url, 'thread-entry', { workerData: data() });
    worker = w;
    w.unref();
    let readyAt = 0;
    return new Promise<void>((resolve, reject) => {
      // Settled once: a 'ready' that comes after the start-up timeout is ignored (that thread
      // is being terminated), so no second thread is ever started beside a live one.
      let settled = false;
      const settle = (err?: unknown) => {
        if (settled) return false;
        settled = true;
        clearTimeout(timer);
        if (err) {
          reject(err);
          void w.terminate();
        } else resolve();
        return true;
      };
      const timer = setTimeout(() => settle(new Error(`the delivery thread did not start within ${START_TIMEOUT_MS / 1000} s`)), START_TIMEOUT_MS);
      w.on('message', (m: FromThread) => {
        try {
          if (m.t === 'ready') {
            if (settle()) readyAt = Date.now();
          } else if (m.t === 'failed') settle(revivedError(m.error));
          else onRecord(m);
        } catch (err) {
          // A record we cannot write must not take the gateway down with it.
          log.error({ err }, 'handling a message from the delivery thread failed');
        }
      });
      w.on('error', (err) => {
        if (!settle(err)) log.error({ err }, 'delivery thread failed');
      });
      w.on('exit', (code) => {
        settle(new Error(`the delivery thread exited during start-up (code ${code})`));
        const current = worker === w;
        if (current) worker = null;
        active = 0;
        if (!readyAt || stopping || !current) return;
        // Node closes the files a dead thread opened (its journal, its database); the journal's
        // lines stay for the next thread to replay. A thread that ran a while is restarted
        // at once; one that keeps dying, ever later.
        if (Date.now() - readyAt > 60_000) restartDelay = 500;
        log.error({ code, restartInMs: restartDelay }, 'delivery thread exited; restarting it');
        scheduleRestart();
      });
    });
  }

  function scheduleRestart(): void {
    restartTimer = setTimeout(() => {
      restartTimer = null;
      if (stopping) return;
      // Doubled for the next time, until a thread has run a minute.
      restartDelay = Math.min(restartDelay * 2, RESTART_MAX_DELAY_MS);
      spawn().catch((err: unknown) => {
        log.error({ err, retryInMs: restartDelay }, 'restarting the delivery thread failed');
        scheduleRestart();
      });
    }, restartDelay);
    restartTimer.unref();
  }

  const send = (m: ToThread) => worker?.postMessage(m);

  return {
    start: () => spawn(),
    wake() {
      // One message per event-loop turn however many messages were queued in it.
      if (wakeQueued) return;
      wakeQueued = true;
      setImmediate(() => {
        wakeQueued = false;
        send({ t: 'wake' });
      });
    },
    async stop(graceMs = 7000) {
      stopping = true;
      if (restartTimer) clearTimeout(restartTimer);
      const w = worker;
      if (!w) return;
      const exited = new Promise<void>((r) => w.once('exit', () => r()));
      send({ t: 'stop', graceMs });
      let timer: NodeJS.Timeout | undefined;
      const late = new Promise<boolean>((r) => (timer = setTimeout(() => r(true), graceMs + 3000)));
      const tooLate = await Promise.race([exited.then(() => false), late]);
      clearTimeout(timer);
      if (tooLate) {
        log.warn('the delivery thread did not stop in time; terminating it (its deliveries are retried at next start)');
        await w.terminate();
      }
    },
    active: () => active,
    thread: () => worker,
  };
}
