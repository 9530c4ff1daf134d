// The client side of a crash run: 8 SMTP sessions (AUTH PLAIN on loopback,
// many transactions per connection) and a few HTTP senders pull message
// numbers ("seqs") from a shared queue and keep going across gateway
// restarts. Only a 250 to the final dot or a 202 acknowledges a seq. A seq
// whose request was handed over but never answered is "ambiguous": it may or
// may not have been stored, and it goes back on the queue like any failure,
// to be sent again later (what a real app does, RFC 1047's duplicate case).
import http from 'node:http';
import net from 'node:net';

const REPLY_TIMEOUT_MS = 20_000;
const CONNECT_TIMEOUT_MS = 3_000;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export interface Ledger {
  /** seq → the channel whose 250/202 acknowledged it. */
  acked: Map<number, 'smtp' | 'http'>;
  /** seq → attempts handed over (final dot sent, HTTP body sent) that got no reply. */
  ambiguous: Map<number, number>;
  /** seq → a permanent refusal (5xx / 4xx from the API); never expected. */
  refused: Map<number, string>;
  /** Temporary refusals (4xx SMTP, 5xx/429 HTTP), retried. */
  tempFailures: number;
  /** Connections or requests that failed before anything was handed over. */
  connectFailures: number;
}

export interface LoadOptions {
  messages: number;
  sessions: number;
  /** Every httpEvery-th seq goes through the HTTP API. */
  httpEvery: number;
  httpWorkers: number;
  smtpPort: number;
  httpPort: number;
  cred: { username: string; password: string };
  apiKey: string;
  /** Destination domains; seq n goes to c<n>@domains[n % length]. */
  domains: string[];
  rand: () => number;
  /** Give up (leaving seqs unacknowledged) at this Date.now(). */
  deadline: number;
  /** Messages per second over all senders; 0 or absent: as fast as the gateway answers. */
  rate?: number;
}

export const recipientOf = (seq: number, domains: string[]) => `c${seq}@${domains[seq % domains.length]}`;

interface Reply {
  code: number;
  text: string;
}

class HandedOver extends Error {}

/** One SMTP client connection with a reply reader; any failure kills it. */
class SmtpConn {
  private buf = '';
  private lines: string[] = [];
  private replies: Reply[] = [];
  private waiter: { resolve: (r: Reply) => void; reject: (e: Error) => void; timer: NodeJS.Timeout } | null = null;
  private dead: Error | null = null;

  private constructor(private sock: net.Socket) {
    sock.setNoDelay(true);
    sock.on('data', (d: Buffer) => {
      this.buf += d.toString('latin1');
      let i;
      while ((i = this.buf.indexOf('\r\n')) >= 0) {
        const line = this.buf.slice(0, i);
        this.buf = this.buf.slice(i + 2);
        this.lines.push(line);
        if (/^\d{3}(?: |$)/.test(line)) {
          const r = { code: Number(line.slice(0, 3)), text: this.lines.join('\n') };
          this.lines = [];
          if (this.waiter) {
            const w = this.waiter;
            this.waiter = null;
            clearTimeout(w.timer);
            w.resolve(r);
          } else this.replies.push(r);
        }
      }
    });
    const fail = (e: Error) => {
      if (this.dead) return;
      this.dead = e;
      if (this.waiter) {
        const w = this.waiter;
        this.waiter = null;
        clearTimeout(w.timer);
        w.reject(e);
      }
    };
    sock.on('error', fail);
    sock.on('close', () => fail(new Error('connection closed')));
  }

  static open(port: number): Promise<SmtpConn> {
    return new Promise((resolve, reject) => {
      const sock = net.connect({ host: '127.0.0.1', port });
      const timer = setTimeout(() => (sock.destroy(), reject(new Error('connect timeout'))), CONNECT_TIMEOUT_MS);
      sock.once('error', (e) => (clearTimeout(timer), reject(e)));
      sock.once('connect', () => {
        clearTimeout(timer);
        resolve(new SmtpConn(sock));
      });
    });
  }

  read(): Promise<Reply> {
    const r = this.replies.shift();
    if (r) return Promise.resolve(r);
    if (this.dead) return Promise.reject(this.dead);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiter = null;
        this.sock.destroy();
        reject(new Error('reply timeout'));
      }, REPLY_TIMEOUT_MS);
      this.waiter = { resolve, reject, timer };
    });
  }

  cmd(line: string): Promise<Reply> {
    this.sock.write(`${line}\r\n`);
    return this.read();
  }

  write(data: string): void {
    this.sock.write(data);
  }

  close(): void {
    this.sock.destroy();
  }
}

function smtpMessage(seq: number, rcpt: string): string {
  return (
    [
      'From: Crash App <app@example.test>',
      `To: <${rcpt}>`,
      `Subject: crash message ${seq}`,
      `X-Crash-Seq: ${seq}`,
      'MIME-Version: 1.0',
      'Content-Type: text/plain; charset=utf-8',
      '',
      `Message ${seq} of the crash suite.`,
      'A second line, so the body is more than one line long.',
      '',
    ].join('\r\n') + '.\r\n'
  );
}

export class Load {
  readonly ledger: Ledger = { acked: new Map(), ambiguous: new Map(), refused: new Map(), tempFailures: 0, connectFailures: 0 };
  /** Requests handed over and not yet answered (SMTP after the final dot, HTTP after the body). */
  inflight = 0;
  private inflightWatch: { atLeast: number; fn: () => void } | null = null;
  private smtpQueue: number[] = [];
  private httpQueue: number[] = [];
  private stopped = false;
  private nextStartAt = 0;

  constructor(private o: LoadOptions) {
    for (let seq = 1; seq <= o.messages; seq++) (seq % o.httpEvery === 0 ? this.httpQueue : this.smtpQueue).push(seq);
  }

  /** Calls `fn` (once, synchronously) the moment `atLeast` requests are awaiting their reply. */
  whenInflight(atLeast: number, fn: () => void): void {
    if (this.inflight >= atLeast) return fn();
    this.inflightWatch = { atLeast, fn };
  }

  cancelInflightWatch(): void {
    this.inflightWatch = null;
  }

  private handedOver(): void {
    this.inflight++;
    const w = this.inflightWatch;
    if (w && this.inflight >= w.atLeast) {
      this.inflightWatch = null;
      w.fn();
    }
  }

  /** Seqs neither acknowledged nor refused. */
  remaining(): number {
    return this.o.messages - this.ledger.acked.size - this.ledger.refused.size;
  }

  stop(): void {
    this.stopped = true;
  }

  async run(): Promise<void> {
    const workers = [
      ...Array.from({ length: this.o.sessions }, () => this.smtpSession()),
      ...Array.from({ length: this.o.httpWorkers }, () => this.httpWorker()),
    ];
    await Promise.all(workers);
  }

  private over(): boolean {
    return this.stopped || this.remaining() === 0 || Date.now() > this.o.deadline;
  }

  /** With a rate set, waits for this sender's next start slot (resends take slots too). */
  private async pace(): Promise<void> {
    if (!this.o.rate) return;
    const now = Date.now();
    const at = Math.max(now, this.nextStartAt);
    this.nextStartAt = at + 1000 / this.o.rate;
    if (at > now) await sleep(at - now);
  }

  private ambiguous(seq: number): void {
    this.ledger.ambiguous.set(seq, (this.ledger.ambiguous.get(seq) ?? 0) + 1);
  }

  private async smtpSession(): Promise<void> {
    let conn: SmtpConn | null = null;
    while (!this.over()) {
      await this.pace();
      const seq = this.smtpQueue.shift();
      if (seq === undefined) {
        await sleep(20); // others may still requeue theirs
        continue;
      }
      let handedOver = false;
      try {
        if (!conn) conn = await this.connect();
        const rcpt = recipientOf(seq, this.o.domains);
        const mail = await conn.cmd('MAIL FROM:<app@example.test>');
        if (mail.code !== 250) throw this.refusal(seq, mail);
        const to = await conn.cmd(`RCPT TO:<${rcpt}>`);
        if (to.code !== 250) throw this.refusal(seq, to);
        const data = await conn.cmd('DATA');
        if (data.code !== 354) throw this.refusal(seq, data);
        conn.write(smtpMessage(seq, rcpt));
        handedOver = true;
        this.handedOver();
        let final: Reply;
        try {
          final = await conn.read();
        } finally {
          this.inflight--;
        }
        if (final.code === 250) this.ledger.acked.set(seq, 'smtp');
        else throw this.refusal(seq, final);
      } catch (e) {
        conn?.close();
        if (e instanceof HandedOver) {
          // A definite answer other than 250: not stored. Retry unless permanent; start
          // the next transaction on a fresh connection rather than RSET a confused one.
          conn = null;
          if (!this.ledger.refused.has(seq)) this.smtpQueue.push(seq);
          await sleep(20);
          continue;
        }
        conn = null;
        if (handedOver) this.ambiguous(seq);
        else this.ledger.connectFailures++;
        this.smtpQueue.push(seq);
        await sleep(50 + this.o.rand() * 100);
      }
    }
    if (conn) {
      await Promise.race([conn.cmd('QUIT').catch(() => undefined), sleep(500)]);
      conn.close();
    }
  }

  private async connect(): Promise<SmtpConn> {
    const conn = await SmtpConn.open(this.o.smtpPort);
    try {
      const greeting = await conn.read();
      if (greeting.code !== 220) throw new Error(`greeting ${greeting.text}`);
      const ehlo = await conn.cmd('EHLO crash-client.test');
      if (ehlo.code !== 250) throw new Error(`EHLO ${ehlo.text}`);
      const plain = Buffer.from(`\0${this.o.cred.username}\0${this.o.cred.password}`).toString('base64');
      const auth = await conn.cmd(`AUTH PLAIN ${plain}`);
      if (auth.code !== 235) throw new Error(`AUTH ${auth.text}`);
      return conn;
    } catch (e) {
      conn.close();
      throw e;
    }
  }

  /** A reply that is not the one we wanted: 4xx is retried, 5xx recorded as a refusal. */
  private refusal(seq: number, r: Reply): HandedOver {
    if (r.code >= 500) this.ledger.refused.set(seq, r.text);
    else this.ledger.tempFailures++;
    return new HandedOver(r.text);
  }

  private async httpWorker(): Promise<void> {
    while (!this.over()) {
      await this.pace();
      const seq = this.httpQueue.shift();
      if (seq === undefined) {
        await sleep(20);
        continue;
      }
      const rcpt = recipientOf(seq, this.o.domains);
      const body = JSON.stringify({
        from: 'Crash App <app@example.test>',
        to: rcpt,
        subject: `crash message ${seq}`,
        text: `Message ${seq} of the crash suite, sent through the HTTP API.`,
        headers: { 'X-Crash-Seq': String(seq) },
      });
      const res = await postJson(this.o.httpPort, '/api/v1/messages', this.o.apiKey, body, `crash-${seq}`, () => this.handedOver());
      if (res.handedOver) this.inflight--;
      if (res.status === 202) {
        this.ledger.acked.set(seq, 'http');
        continue;
      }
      if (res.status === null) {
        if (res.handedOver) this.ambiguous(seq);
        else this.ledger.connectFailures++;
      } else if (res.status === 429 || res.status >= 500) {
        this.ledger.tempFailures++;
      } else {
        this.ledger.refused.set(seq, `${res.status} ${res.text}`);
        continue;
      }
      this.httpQueue.push(seq);
      await sleep(50 + this.o.rand() * 100);
    }
  }
}

/**
 * POST with a fresh connection (no keep-alive: a pooled socket from a killed
 * gateway would fail a request that was never handed over). The
 * Idempotency-Key is what a careful API client sends, so a resend after a lost
 * reply is answered from the first request instead of queued twice.
 */
export function postJson(
  port: number,
  path: string,
  key: string,
  body: string,
  idempotencyKey: string | null,
  onHandedOver: () => void = () => undefined,
): Promise<{ status: number | null; text: string; handedOver: boolean }> {
  return new Promise((resolve) => {
    let handedOver = false;
    let done = false;
    const finish = (status: number | null, text: string) => {
      if (done) return;
      done = true;
      resolve({ status, text, handedOver });
    };
    const headers: Record<string, string> = {
      'Content-Type': 'application/json',
      'Content-Length': String(Buffer.byteLength(body)),
      Authorization: `Bearer ${key}`,
    };
    if (idempotencyKey) headers['Idempotency-Key'] = idempotencyKey;
    const req = http.request({ host: '127.0.0.1', port, path, method: 'POST', headers, agent: false, timeout: REPLY_TIMEOUT_MS });
    req.on('finish', () => {
      handedOver = true;
      onHandedOver();
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', () => finish(null, ''));
    req.on('response', (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => finish(res.statusCode ?? null, Buffer.concat(chunks).toString('utf8')));
      res.on('error', () => finish(null, ''));
    });
    req.end(body);
  });
}
