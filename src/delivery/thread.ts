// The gateway's handle on its delivery thread (thread-entry.ts): starts it,
// wakes it when mail is queued, writes its log records and metrics, restarts it
// if it dies, and stops it within a grace period.
import type { Worker } from 'node:worker_threads';
import type pino from 'pino';
import type { Logger } from 'pino';
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

  function onRecord(m: FromThread): void {
    if (m.t === 'log') {
      const label = logger.levels.labels[m.level] as pino.Level | undefined;
      if (!label) return;
      const target = Object.keys(m.bindings).length ? logger.child(m.bindings) : logger;
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
    return new Promise<void>((resolve, reject) => {
      let ready = false;
      const timer = setTimeout(() => {
        reject(new Error(`the delivery thread did not start within ${START_TIMEOUT_MS / 1000} s`));
        void w.terminate();
      }, START_TIMEOUT_MS);
      w.on('message', (m: FromThread) => {
        if (m.t === 'ready') {
          ready = true;
          restartDelay = 500;
          clearTimeout(timer);
          resolve();
        } else if (m.t === 'failed') {
          clearTimeout(timer);
          reject(revivedError(m.error));
        } else onRecord(m);
      });
      w.on('error', (err) => {
        if (!ready) {
          clearTimeout(timer);
          reject(err);
        } else log.error({ err }, 'delivery thread failed');
      });
      w.on('exit', (code) => {
        clearTimeout(timer);
        if (worker === w) worker = null;
        active = 0;
        if (!ready) return reject(new Error(`the delivery thread exited during start-up (code ${code})`));
        if (stopping) return;
        // Its leased rows wait for the next thread, which releases them when it starts.
        log.error({ code, restartInMs: restartDelay }, 'delivery thread exited; restarting it');
        scheduleRestart();
      });
    });
  }

  function scheduleRestart(): void {
    restartTimer = setTimeout(() => {
      restartTimer = null;
      if (stopping) return;
      spawn().catch((err: unknown) => {
        log.error({ err }, 'restarting the delivery thread failed');
        restartDelay = Math.min(restartDelay * 2, RESTART_MAX_DELAY_MS);
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
