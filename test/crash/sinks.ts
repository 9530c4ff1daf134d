// The far ends of a crash run, both on loopback and both outliving every
// gateway process: the destination MX (counts each message by its
// X-Crash-Seq header) and the webhook receiver (counts each event id). Each
// can be armed once to call back the instant it has answered a request, so
// the driver can SIGKILL the gateway in the window between "the peer took
// it" and "the gateway recorded that".
import http from 'node:http';
import type net from 'node:net';
import { SMTPServer } from 'smtp-server';

const SEQ_HEADER = /^X-Crash-Seq:[ \t]*(\d+)/im;
// Our Received field names the queue id: the same id twice is the gateway sending one stored
// message again; two ids for one seq are two submissions (a client resending).
const QUEUE_ID = /^Received:[^]*?\(relaygate\) with \S+ id (\S+?)[;\s]/im;

export interface CountingMx {
  /** Receptions per seq (a seq seen twice was delivered twice). */
  counts: Map<number, number>;
  /** For each seq, the epoch (gateway process number) of each reception. */
  epochs: Map<number, number[]>;
  /** Messages without a readable X-Crash-Seq header (should stay 0). */
  unreadable: number;
  /** seq → Date.now() of its first reception. */
  firstAt: Map<number, number>;
  /** seq → the gateway queue id of each reception (from its Received field). */
  queueIds: Map<number, string[]>;
  total(): number;
  /** Calls `fn` right after the next 250 to DATA has been written (once). */
  armAfter250(fn: () => void): void;
  disarm(): void;
  close(): Promise<void>;
}

export async function startCountingMx(ip: string, port: number, epoch: () => number = () => 0): Promise<CountingMx> {
  const counts = new Map<number, number>();
  const epochs = new Map<number, number[]>();
  let armed: (() => void) | null = null;
  let total = 0;
  const mx: CountingMx = {
    counts,
    epochs,
    unreadable: 0,
    firstAt: new Map(),
    queueIds: new Map(),
    total: () => total,
    armAfter250: (fn) => void (armed = fn),
    disarm: () => void (armed = null),
    close: async () => undefined,
  };
  // A connection belongs to the gateway process that opened it. Tagging at DATA time
  // instead would credit the process started after a kill with what its killed
  // predecessor had already written to the socket.
  const connEpoch = new Map<string, number>();
  const server = new SMTPServer({
    authOptional: true,
    disabledCommands: ['STARTTLS', 'AUTH'],
    logger: false,
    size: 10 * 1024 * 1024,
    onConnect(session, cb) {
      connEpoch.set(session.id, epoch());
      cb();
    },
    onClose(session) {
      connEpoch.delete(session.id);
    },
    onData(stream, session, cb) {
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('end', () => {
        const text = Buffer.concat(chunks).toString('latin1');
        const end = text.indexOf('\r\n\r\n');
        const head = end >= 0 ? text.slice(0, end) : text;
        const m = SEQ_HEADER.exec(head);
        if (m) {
          const seq = Number(m[1]);
          counts.set(seq, (counts.get(seq) ?? 0) + 1);
          const qid = QUEUE_ID.exec(head)?.[1] ?? '?';
          const ids = mx.queueIds.get(seq);
          if (ids) ids.push(qid);
          else mx.queueIds.set(seq, [qid]);
          const at = connEpoch.get(session.id) ?? epoch();
          const e = epochs.get(seq);
          if (e) e.push(at);
          else {
            epochs.set(seq, [at]);
            mx.firstAt.set(seq, Date.now());
          }
        } else mx.unreadable++;
        total++;
        cb(); // writes the 250 to the socket now
        const fire = armed;
        armed = null;
        fire?.();
      });
    },
  });
  server.on('error', () => undefined); // a gateway killed mid-session resets its connections
  await new Promise<void>((resolve, reject) => {
    server.server.once('error', reject);
    server.listen(port, ip, () => resolve());
  });
  mx.close = () => new Promise<void>((r) => server.close(() => r()));
  return mx;
}

export interface WebhookReceiver {
  url: string;
  /** Deliveries per event id (X-Relaygate-Event-Id). */
  byEvent: Map<string, number>;
  /** Event ids of `delivered` events per seq (from the recipient address). */
  deliveredBySeq: Map<number, Set<string>>;
  total(): number;
  armOnReceipt(fn: () => void): void;
  disarm(): void;
  close(): Promise<void>;
}

/** Recipients are `c<seq>@…`, so an event names its seq through its recipient. */
export const seqOfRecipient = (rcpt: unknown): number | null => {
  const m = typeof rcpt === 'string' ? /^c(\d+)@/.exec(rcpt) : null;
  return m ? Number(m[1]) : null;
};

export async function startWebhookReceiver(host: string): Promise<WebhookReceiver> {
  const byEvent = new Map<string, number>();
  const deliveredBySeq = new Map<number, Set<string>>();
  let armed: (() => void) | null = null;
  let total = 0;
  const sockets = new Set<net.Socket>();
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      let ev: { id?: string; type?: string; recipient?: unknown } = {};
      try {
        ev = JSON.parse(Buffer.concat(chunks).toString('utf8'));
      } catch {
        // counted below under its header id anyway
      }
      const id = String(req.headers['x-relaygate-event-id'] ?? ev.id ?? 'unknown');
      byEvent.set(id, (byEvent.get(id) ?? 0) + 1);
      total++;
      const seq = seqOfRecipient(ev.recipient);
      if (ev.type === 'delivered' && seq !== null) {
        let s = deliveredBySeq.get(seq);
        if (!s) deliveredBySeq.set(seq, (s = new Set()));
        s.add(id);
      }
      res.writeHead(200, { 'Content-Type': 'text/plain' });
      res.end('ok');
      const fire = armed;
      armed = null;
      fire?.();
    });
  });
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, host, () => resolve());
  });
  const { port } = server.address() as net.AddressInfo;
  return {
    url: `http://${host}:${port}/hook`,
    byEvent,
    deliveredBySeq,
    total: () => total,
    armOnReceipt: (fn) => void (armed = fn),
    disarm: () => void (armed = null),
    close: () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  };
}
