// A raw SMTP client for tests that must see exact replies, send exact bytes
// (smuggling attempts, pipelined commands) or connect from a chosen loopback
// address (per-IP throttling, IP credentials). nodemailer hides all of these.
import net from 'node:net';
import tls from 'node:tls';

export interface RawSmtp {
  /** The greeting line(s) as received. */
  greeting: string;
  /** Send one command line (CRLF added) and return its whole reply. */
  cmd(line: string, timeoutMs?: number): Promise<string>;
  /** Write bytes exactly as given. */
  write(bytes: string | Buffer): void;
  /** The next complete reply (multi-line replies joined with CRLF). */
  reply(timeoutMs?: number): Promise<string>;
  /** EHLO, then STARTTLS and EHLO again over TLS. Returns the second EHLO reply. */
  starttls(ehloName?: string): Promise<string>;
  /** AUTH PLAIN; returns the reply. */
  authPlain(user: string, pass: string): Promise<string>;
  /** Replies that arrived and were not yet read (for "nothing more was said" checks). */
  pending(): string[];
  /** True once the server closed the connection. */
  closed(): boolean;
  close(): Promise<void>;
}

export interface RawOptions {
  port: number;
  host?: string;
  localAddress?: string;
  timeoutMs?: number;
}

export async function rawSmtp(o: RawOptions): Promise<RawSmtp> {
  const defaultTimeout = o.timeoutMs ?? 10_000;
  let socket: net.Socket | tls.TLSSocket = net.connect({ host: o.host ?? '127.0.0.1', port: o.port, localAddress: o.localAddress });
  let buffer = '';
  let lines: string[] = [];
  const replies: string[] = [];
  let waiter: (() => void) | null = null;
  let isClosed = false;

  const onData = (chunk: Buffer) => {
    buffer += chunk.toString('latin1');
    let i: number;
    while ((i = buffer.indexOf('\r\n')) >= 0) {
      const line = buffer.slice(0, i);
      buffer = buffer.slice(i + 2);
      lines.push(line);
      // "250-..." continues, "250 ..." (or a bare code) ends the reply.
      if (!/^\d{3}-/.test(line)) {
        replies.push(lines.join('\r\n'));
        lines = [];
      }
    }
    waiter?.();
  };
  const onClose = () => {
    isClosed = true;
    waiter?.();
  };
  const attach = (s: net.Socket) => {
    s.on('data', onData);
    s.on('close', onClose);
    s.on('error', () => undefined);
  };
  attach(socket);
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });

  async function reply(timeoutMs = defaultTimeout): Promise<string> {
    const end = Date.now() + timeoutMs;
    while (!replies.length) {
      if (isClosed) throw new Error(`connection closed while waiting for a reply${lines.length ? ` (partial: ${lines.join(' | ')})` : ''}`);
      const left = end - Date.now();
      if (left <= 0) throw new Error(`no SMTP reply within ${timeoutMs} ms`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        waiter = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      waiter = null;
    }
    return replies.shift()!;
  }

  const client: RawSmtp = {
    greeting: '',
    write(bytes) {
      socket.write(typeof bytes === 'string' ? Buffer.from(bytes, 'latin1') : bytes);
    },
    async cmd(line, timeoutMs) {
      client.write(`${line}\r\n`);
      return reply(timeoutMs);
    },
    reply,
    async starttls(ehloName = 'client.test') {
      await client.cmd(`EHLO ${ehloName}`);
      const r = await client.cmd('STARTTLS');
      if (!r.startsWith('220')) throw new Error(`STARTTLS refused: ${r}`);
      const raw = socket as net.Socket;
      raw.removeListener('data', onData);
      raw.removeListener('close', onClose);
      const secure = tls.connect({ socket: raw, rejectUnauthorized: false, servername: undefined });
      await new Promise<void>((resolve, reject) => {
        secure.once('secureConnect', resolve);
        secure.once('error', reject);
      });
      socket = secure;
      attach(secure);
      return client.cmd(`EHLO ${ehloName}`);
    },
    async authPlain(user, pass) {
      return client.cmd(`AUTH PLAIN ${Buffer.from(`\0${user}\0${pass}`).toString('base64')}`);
    },
    pending: () => replies.slice(),
    closed: () => isClosed,
    async close() {
      if (isClosed) return;
      socket.end();
      await Promise.race([
        new Promise<void>((r) => socket.once('close', () => r())),
        new Promise<void>((r) => setTimeout(r, 1000).unref()),
      ]);
      socket.destroy();
    },
  };
  client.greeting = await reply();
  return client;
}

/** Reads replies until `n` have arrived (pipelining), each within the timeout. */
export async function replies(c: RawSmtp, n: number, timeoutMs?: number): Promise<string[]> {
  const out: string[] = [];
  for (let i = 0; i < n; i++) out.push(await c.reply(timeoutMs));
  return out;
}

/**
 * A whole authenticated session up to the DATA body: EHLO, AUTH PLAIN (when
 * given), MAIL, RCPTs, DATA — each expected to succeed.
 */
export async function openTransaction(
  c: RawSmtp,
  o: { auth?: { user: string; pass: string }; from: string; to: string[] },
): Promise<void> {
  const expect = (r: string, code: string, what: string) => {
    if (!r.startsWith(code)) throw new Error(`${what}: expected ${code}, got ${r}`);
  };
  expect(await c.cmd('EHLO client.test'), '250', 'EHLO');
  if (o.auth) expect(await c.authPlain(o.auth.user, o.auth.pass), '235', 'AUTH');
  expect(await c.cmd(`MAIL FROM:<${o.from}>`), '250', 'MAIL');
  for (const t of o.to) expect(await c.cmd(`RCPT TO:<${t}>`), '250', `RCPT ${t}`);
  expect(await c.cmd('DATA'), '354', 'DATA');
}
