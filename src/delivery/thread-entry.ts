// The delivery thread: the delivery worker with a SQLite connection of its own.
// On the main thread, the outcome of a delivery waited behind everything else
// the event loop had to do (SMTP sessions, HTML rewriting, group-commit fsyncs,
// HTTP) — at full load 8–16 ms between the remote 250 and the commit that
// records it, the window in which a crash sends the message a second time.
// Here it waits only for its socket; the outcome goes to a journal file first
// (outcome-recorder.ts), so not even the database's write lock delays it.
import { parentPort, workerData } from 'node:worker_threads';
import pino from 'pino';
import { openStore } from '../store/index.js';
import { OutcomeJournal } from '../store/outcome-journal.js';
import { plainArgs, plainError, type DeliveryThreadData, type FromThread, type ToThread } from './thread-protocol.js';
import { createDeliveryWorker, type DeliveryMetrics } from './worker.js';

if (!parentPort) throw new Error('the delivery thread must run as a worker thread');
const port = parentPort;
const data = workerData as DeliveryThreadData;
const post = (m: FromThread) => port.postMessage(m);

/** JSON of a log record's arguments, whatever they hold: cycles and bigints do not throw. */
function jsonSafe(v: unknown): string {
  const seen = new WeakSet<object>();
  return JSON.stringify(v, (_k, x: unknown) => {
    if (typeof x === 'bigint') return String(x);
    if (x && typeof x === 'object') {
      if (seen.has(x)) return '[circular]';
      seen.add(x);
    }
    return x;
  });
}

// Records go to the gateway's logger, which redacts and writes them; nothing is written here.
const logger = pino({
  level: data.logLevel,
  base: null,
  hooks: {
    logMethod(args, _write, level) {
      const m: FromThread = { t: 'log', level, bindings: this.bindings(), args: plainArgs(args) };
      try {
        post(m);
      } catch {
        // Something in the record cannot be cloned (a socket, a function): send its JSON form.
        post({ ...m, args: JSON.parse(jsonSafe(m.args)) as unknown[] });
      }
    },
  },
});

const metrics: DeliveryMetrics = {
  outcome: (result, bounceClass, latencySeconds) => post({ t: 'outcome', result, bounceClass, latencySeconds }),
};

let store: ReturnType<typeof openStore> | undefined;
let journal: OutcomeJournal | undefined;
try {
  store = openStore(data.config.dataDir, { sync: data.sync });
  journal = new OutcomeJournal(data.config.dataDir);
  const opened = store;
  let lastActive = -1;
  const worker = createDeliveryWorker({
    config: data.config,
    store: opened,
    journal,
    logger,
    metrics,
    onActive: (n) => {
      if (n !== lastActive) post({ t: 'active', n: (lastActive = n) });
    },
  });
  worker.start();
  port.on('message', (m: ToThread) => {
    if (m.t === 'wake') worker.wake();
    else if (m.t === 'stop') {
      void worker
        .stop(m.graceMs)
        .catch((err: unknown) => logger.error({ err }, 'stopping the delivery worker failed'))
        .finally(() => {
          opened.close();
          post({ t: 'stopped' });
          port.close();
        });
    }
  });
  post({ t: 'ready' });
} catch (e) {
  // Nothing may keep a thread that failed to start alive: the gateway starts another.
  journal?.close();
  store?.close();
  post({ t: 'failed', error: plainError(e) });
  port.close();
}
