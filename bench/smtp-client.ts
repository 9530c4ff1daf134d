// A deliberately thin SMTP load generator: N plain-TCP sessions on loopback,
// AUTH PLAIN once per session, then MAIL / RCPT / DATA one command at a time
// (no PIPELINING) with a pre-built, dot-stuffed body written in one call.
// Replies are parsed from latin1 strings with no per-line allocation beyond
// the reply itself, so the client costs far less CPU than any server it
// drives; run.ts prints the client's own CPU next to each result as proof.
import net from 'node:net';
import { nowMs, selfCpuSeconds } from './lib.js';

export interface SmtpLoadOptions {
  host?: string;
  port: number;
  sessions: number;
  total: number;
  auth?: { user: string; pass: string } | null;
  mailFrom: string;
  /** Envelope recipient(s) of message i. */
  rcpt: (i: number) => string | string[];
  /** The message with CRLF line endings, not yet dot-stuffed. */
  body: Buffer;
  /** Stop starting new messages after this long (a slow server still finishes in bounded time). */
  maxMs?: number;
}

export interface SmtpLoadResult {
  accepted: number;
  failed: number;
  /** Messages not attempted because maxMs ran out. */
  skipped: number;
  firstError: string | null;
  /** From the first MAIL FROM (all sessions connected and authenticated) to the last final reply. */
  elapsedMs: number;
  /** Date.now() at that first MAIL FROM, to line up with other processes' clocks. */
  startedAt: number;
  /** Per accepted message: end-of-data written → final 250 received, in ms. */
  latencies: Float64Array;
  /** CPU seconds the bench process (this client) used during the run. */
  clientCpu: number;
}

/** RFC 5321 §4.5.2 transparency plus the terminating `.` line. */
export function dataPayload(body: Buffer): Buffer {
  let s = body.toString('latin1').replace(/(^|\r\n)\./g, '$1..');
  if (!s.endsWith('\r\n')) s += '\r\n';
  return Buffer.from(`${s}.\r\n`, 'latin1');
}

class Session {
  private buf = '';
  private waiting: ((reply: string) => void) | null = null;
  private replies: string[] = [];
  closed = false;

  constructor(private socket: net.Socket) {
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('close', () => {
      this.closed = true;
      this.deliver('421 connection closed');
    });
    socket.on('error', () => undefined);
  }

  private onData(chunk: Buffer) {
    this.buf += chunk.toString('latin1');
    let start = 0;
    for (;;) {
      const nl = this.buf.indexOf('\r\n', start);
      if (nl < 0) break;
      // "250-…" continues a reply; "250 …" ends it.
      if (this.buf.charCodeAt(start + 3) !== 45 /* - */) {
        this.deliver(this.buf.slice(0, nl));
        this.buf = this.buf.slice(nl + 2);
        start = 0;
      } else start = nl + 2;
    }
  }

  private deliver(reply: string) {
    const w = this.waiting;
    if (w) {
      this.waiting = null;
      w(reply);
    } else this.replies.push(reply);
  }

  reply(): Promise<string> {
    const r = this.replies.shift();
    if (r !== undefined) return Promise.resolve(r);
    if (this.closed) return Promise.resolve('421 connection closed');
    return new Promise((resolve) => (this.waiting = resolve));
  }

  cmd(line: string): Promise<string> {
    this.socket.write(`${line}\r\n`, 'latin1');
    return this.reply();
  }

  write(b: Buffer) {
    this.socket.write(b);
  }

  end() {
    this.socket.end();
  }
}

async function open(o: SmtpLoadOptions): Promise<Session> {
  const socket = net.connect({ host: o.host ?? '127.0.0.1', port: o.port });
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  const s = new Session(socket);
  const expect = (r: string, code: string, what: string) => {
    if (!r.startsWith(code)) throw new Error(`${what}: ${r}`);
  };
  expect(await s.reply(), '220', 'greeting');
  expect(await s.cmd('EHLO bench.client.test'), '250', 'EHLO');
  if (o.auth) expect(await s.cmd(`AUTH PLAIN ${Buffer.from(`\0${o.auth.user}\0${o.auth.pass}`).toString('base64')}`), '235', 'AUTH');
  return s;
}

export async function smtpLoad(o: SmtpLoadOptions): Promise<SmtpLoadResult> {
  const payload = dataPayload(o.body);
  const sessions = await Promise.all(Array.from({ length: o.sessions }, () => open(o)));
  const latencies = new Float64Array(o.total);
  let next = 0;
  let accepted = 0;
  let firstError: string | null = null;
  const fail = (r: string) => {
    firstError ??= r;
  };

  const cpu0 = selfCpuSeconds();
  const startedAt = Date.now();
  const t0 = nowMs();
  const deadline = t0 + (o.maxMs ?? Infinity);
  await Promise.all(
    sessions.map(async (s) => {
      while (next < o.total && !s.closed && nowMs() < deadline) {
        const i = next++;
        let r = await s.cmd(`MAIL FROM:<${o.mailFrom}>`);
        if (!r.startsWith('250')) {
          fail(r);
          await s.cmd('RSET');
          continue;
        }
        let refused: string | null = null;
        for (const to of ([] as string[]).concat(o.rcpt(i))) {
          r = await s.cmd(`RCPT TO:<${to}>`);
          if (!r.startsWith('250')) refused ??= r;
        }
        if (refused) {
          fail(refused);
          await s.cmd('RSET');
          continue;
        }
        r = await s.cmd('DATA');
        if (!r.startsWith('354')) {
          fail(r);
          await s.cmd('RSET');
          continue;
        }
        const sentAt = nowMs();
        s.write(payload);
        r = await s.reply();
        if (r.startsWith('250')) latencies[accepted++] = nowMs() - sentAt;
        else fail(r);
      }
    }),
  );
  const elapsedMs = nowMs() - t0;
  const clientCpu = selfCpuSeconds() - cpu0;
  await Promise.all(sessions.map(async (s) => (s.closed ? undefined : (await s.cmd('QUIT'), s.end()))));
  const skipped = o.total - next;
  // Refused, and started on a session that then closed.
  const failed = next - accepted;
  return { accepted, failed, skipped, firstError, elapsedMs, startedAt, latencies: latencies.subarray(0, accepted), clientCpu };
}
