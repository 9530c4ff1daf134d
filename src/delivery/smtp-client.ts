// Outbound SMTP edge (SPEC §6): one transaction for the recipients of one domain, tried on
// the caller's MX targets in order, with idle connections kept for reuse.
//
// Built on nodemailer's SMTPConnection. It owns the protocol; this file owns the decisions:
// which failure moves on to the next MX, which one ends the attempt, and what each
// recipient's status and verbatim reply are.
import net from 'node:net';
import { createHash } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import SMTPConnection from 'nodemailer/lib/smtp-connection';
import type { Logger } from 'pino';

export interface DeliveryTarget {
  /** Hostname, for TLS SNI and for messages. */
  host: string;
  /** IP to connect to. */
  address: string;
  port: number;
}

export interface SendOptions {
  /** Envelope sender; '' is the null sender. */
  mailFrom: string;
  /** All in one domain: one SMTP transaction. */
  recipients: string[];
  /** Final CRLF message bytes (already DKIM-signed), sent exactly as they are. */
  body: Buffer;
  heloName: string;
  tls: 'opportunistic' | 'required';
  /** Smarthost mode. */
  auth?: { user: string; pass: string };
  timeouts: { connectMs: number; greetingMs: number; socketMs: number };
}

export interface RecipientResult {
  recipient: string;
  status: 'delivered' | 'deferred' | 'bounced';
  /** The remote reply verbatim; for failures without one, a reply written here in the same form. */
  reply: string;
  code?: number;
}

export interface AttemptResult {
  target?: DeliveryTarget;
  results: RecipientResult[];
}

export interface SmtpClient {
  send(targets: DeliveryTarget[], opts: SendOptions): Promise<AttemptResult>;
  /** Close pooled idle connections. */
  close(): Promise<void>;
}

export interface SmtpClientOptions {
  /** How long an idle connection is kept for the next message to the same target. */
  maxIdleMs?: number;
  maxMessagesPerConnection?: number;
  logger?: Logger;
}

type SmtpError = SMTPConnection.SMTPError;
type Status = RecipientResult['status'];

/** Why a target could not take the message; `permanent` only for a 5xx the server sent. */
interface Failure {
  reply: string;
  permanent: boolean;
  /** The TLS handshake itself failed: an opportunistic retry in plaintext may work. */
  tlsHandshake?: boolean;
}

class SetupFailure extends Error {
  constructor(readonly failure: Failure) {
    super(failure.reply);
  }
}

interface Live {
  conn: SMTPConnection;
  key: string;
  target: DeliveryTarget;
  messages: number;
  broken: boolean;
  idleTimer?: NodeJS.Timeout;
}

// Fields of SMTPConnection that its typings keep private. They are read, never written;
// the version is pinned and the tests exercise every path that reads them.
interface ConnInternals {
  _envelope?: { accepted?: string[]; rejectedErrors?: SmtpError[] } | false;
  _supportedExtensions?: string[];
  _maxAllowedSize?: number;
}

type TxOutcome =
  | { kind: 'results'; results: Map<string, RecipientResult>; reusable: boolean }
  | { kind: 'next'; failure: Failure }
  | { kind: 'retry-fresh' };

const NON_ASCII = /[^\x00-\x7f]/;
// Anything that would let an address break out of `MAIL FROM:<...>` / `RCPT TO:<...>`.
const BAD_ADDRESS = /[\x00-\x20<>\x7f]/;

export function codeOf(reply: string): number | undefined {
  const m = /^([2-5]\d\d)(?:[ -]|$)/.exec(reply);
  return m ? Number(m[1]) : undefined;
}

/** 2xx delivered, 5xx bounced, anything else — 4xx, 503 (a confused session), none — deferred. */
function statusOf(reply: string): Status {
  const code = codeOf(reply) ?? 0;
  if (code >= 200 && code < 300) return 'delivered';
  if (code >= 500 && code !== 503) return 'bounced';
  return 'deferred';
}

function result(recipient: string, reply: string, status: Status = statusOf(reply)): RecipientResult {
  const code = codeOf(reply);
  return code === undefined ? { recipient, status, reply } : { recipient, status, reply, code };
}

function has8bit(body: Buffer): boolean {
  for (const byte of body) if (byte > 0x7f) return true;
  return false;
}

function who(t: DeliveryTarget): string {
  return `${t.host || t.address} [${t.address}]`;
}

/**
 * Wait for one step of the session. SMTPConnection reports a dying connection through
 * 'error' (and 'end'), sometimes *before* the callback that carries the server's reply
 * (a 421 closes first, then answers), so 'end' waits a turn to let the callback win.
 */
function step<T>(conn: SMTPConnection, run: (done: (err: SmtpError | null | undefined, value?: T) => void) => void): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    let settled = false;
    const finish = (err: SmtpError | null | undefined, value?: T) => {
      if (settled) return;
      settled = true;
      conn.off('error', onError);
      conn.off('end', onEnd);
      if (err) reject(err);
      else resolve(value as T);
    };
    const onError = (err: SmtpError) => finish(err);
    const onEnd = () => setImmediate(() => finish(Object.assign(new Error('Connection closed'), { code: 'ECONNECTION' })));
    conn.on('error', onError);
    conn.on('end', onEnd);
    run(finish);
  });
}

/** A reply for a failure that has no remote reply of its own (or the remote one, verbatim). */
function describe(err: SmtpError, t: DeliveryTarget, during: string): Failure {
  const code = err.responseCode;
  if (err.response && code) {
    if (err.code === 'ETLS') return { reply: `451 4.7.5 STARTTLS failed at ${who(t)}: ${err.response}`, permanent: false };
    return { reply: err.response, permanent: code >= 500 && code !== 503 };
  }
  if (err.code === 'ETIMEDOUT') {
    const what: Record<string, string> = {
      GREETING_TIMEOUT: `connection timed out at greeting from ${who(t)}`,
      UPGRADE_TIMEOUT: `TLS handshake timed out with ${who(t)}`,
      CONNECT_TIMEOUT: `session setup timed out with ${who(t)}`,
    };
    const text = what[err.timeoutType ?? ''] ?? `connection timed out ${during} with ${who(t)}`;
    return { reply: `421 4.4.2 ${text}`, permanent: false, tlsHandshake: err.timeoutType === 'UPGRADE_TIMEOUT' };
  }
  if (err.code === 'ETLS') {
    return { reply: `421 4.7.0 TLS negotiation failed with ${who(t)} (${err.originalCode ?? err.message})`, permanent: false, tlsHandshake: true };
  }
  const detail = err.originalCode ?? err.code ?? 'error';
  return { reply: `421 4.4.2 connection lost with ${who(t)} ${during} (${detail})`, permanent: false };
}

function authKey(auth: SendOptions['auth']): string {
  return auth ? createHash('sha256').update(`${auth.user}\0${auth.pass}`).digest('hex').slice(0, 16) : '-';
}

export function createSmtpClient(options: SmtpClientOptions = {}): SmtpClient {
  const maxIdleMs = options.maxIdleMs ?? 5000;
  const maxMessages = options.maxMessagesPerConnection ?? 100;
  const log = options.logger?.child({ component: 'smtp-client' });
  const idle = new Map<string, Live[]>();
  let closed = false;

  function unpool(live: Live): void {
    clearTimeout(live.idleTimer);
    live.idleTimer = undefined;
    const list = idle.get(live.key);
    if (!list) return;
    const i = list.indexOf(live);
    if (i >= 0) list.splice(i, 1);
    if (!list.length) idle.delete(live.key);
  }

  function discard(live: Live, polite: boolean): void {
    unpool(live);
    live.broken = true;
    if (polite && !live.conn.destroyed) live.conn.quit();
    else live.conn.close();
  }

  function release(live: Live): void {
    if (closed || live.broken || live.conn.destroyed || live.messages >= maxMessages) return discard(live, true);
    const list = idle.get(live.key) ?? [];
    list.push(live);
    idle.set(live.key, list);
    live.idleTimer = setTimeout(() => discard(live, true), maxIdleMs);
    live.idleTimer.unref();
  }

  /** An idle connection to the same target, reset and proven alive, or undefined. */
  async function checkout(key: string): Promise<Live | undefined> {
    for (;;) {
      const live = idle.get(key)?.pop();
      if (!live) return undefined;
      unpool(live);
      if (live.broken || live.conn.destroyed) continue;
      try {
        // RSET before reuse: clears whatever the last transaction left (RFC 5321 §4.1.1.5)
        // and proves the server has not dropped the idle session.
        await step<boolean | undefined>(live.conn, (done) => live.conn.reset((err, ok) => done(err, ok)));
        return live;
      } catch {
        discard(live, false);
      }
    }
  }

  function connectSocket(t: DeliveryTarget, connectMs: number): Promise<net.Socket> {
    return new Promise((resolve, reject) => {
      const socket = net.connect({ host: t.address, port: t.port });
      // Stays for the socket's whole life: after STARTTLS nodemailer listens only on the
      // TLS socket, and an 'error' on the raw one with no listener would crash the process.
      socket.on('error', () => {});
      const fail = (reply: string) => {
        clearTimeout(timer);
        socket.destroy();
        reject(new SetupFailure({ reply, permanent: false }));
      };
      const timer = setTimeout(() => fail(`421 4.4.1 connection timed out to ${who(t)}:${t.port}`), connectMs);
      const onError = (e: NodeJS.ErrnoException) =>
        fail(
          e.code === 'ECONNREFUSED'
            ? `421 4.4.1 connection refused by ${who(t)}:${t.port}`
            : `421 4.4.1 cannot connect to ${who(t)}:${t.port} (${e.code ?? e.message})`,
        );
      socket.once('error', onError);
      socket.once('connect', () => {
        clearTimeout(timer);
        socket.off('error', onError);
        resolve(socket);
      });
    });
  }

  async function open(t: DeliveryTarget, o: SendOptions, key: string, plaintext: boolean): Promise<Live> {
    const socket = await connectSocket(t, o.timeouts.connectMs);
    const opportunistic = o.tls === 'opportunistic';
    const conn = new SMTPConnection({
      connection: socket,
      host: t.address,
      port: t.port,
      servername: t.host && !net.isIP(t.host) ? t.host : undefined,
      name: o.heloName,
      greetingTimeout: o.timeouts.greetingMs,
      socketTimeout: o.timeouts.socketMs,
      // nodemailer's budget for greeting + EHLO + STARTTLS, after our own TCP connect.
      connectionTimeout: o.timeouts.greetingMs + o.timeouts.socketMs,
      socketCloseTimeout: 1000,
      ignoreTLS: plaintext,
      // A STARTTLS the server answers with 4xx/5xx: go on in plaintext when opportunistic;
      // when TLS is required the session ends instead (checked below too).
      opportunisticTLS: opportunistic,
      // MX certificates rarely match the MX name, and there is no one to ask (RFC 7435,
      // opportunistic security): any encryption beats plaintext, so do not verify, and
      // accept the old protocol versions still found on MX hosts. 'required' means
      // "encrypted" (Postfix's `encrypt` level), not "authenticated".
      tls: opportunistic
        ? { rejectUnauthorized: false, minVersion: 'TLSv1', ciphers: 'DEFAULT:@SECLEVEL=0' }
        : { rejectUnauthorized: false },
      logger: false,
    });
    const live: Live = { conn, key, target: t, messages: 0, broken: false };
    // Always listened to: nodemailer emits 'error' for any dying socket, also while idle.
    conn.on('error', (err: SmtpError) => {
      live.broken = true;
      unpool(live);
      log?.debug({ target: t.address, err: err.message }, 'smtp connection error');
    });
    conn.on('end', () => {
      live.broken = true;
      unpool(live);
    });

    try {
      await step<void>(conn, (done) => conn.connect((err) => done(err)));
    } catch (e) {
      // Still `upgrading`: the failure hit the TLS handshake (whatever code the socket gave).
      const inTls = conn.upgrading === true;
      conn.close();
      const err = e as SmtpError;
      if (inTls && !err.response) {
        const detail = err.timeoutType === 'UPGRADE_TIMEOUT' ? 'timed out' : (err.originalCode ?? err.code ?? err.message);
        throw new SetupFailure({ reply: `421 4.7.0 TLS negotiation failed with ${who(t)} (${detail})`, permanent: false, tlsHandshake: true });
      }
      throw new SetupFailure(describe(err, t, 'during session setup'));
    }
    if (o.tls === 'required' && !conn.secure) {
      discard(live, true);
      throw new SetupFailure({ reply: `451 4.7.5 TLS required but STARTTLS not offered by ${who(t)}`, permanent: false });
    }
    if (o.auth && !conn.secure) {
      // A smarthost password must not cross the network in clear text (RFC 4954 §4).
      discard(live, true);
      throw new SetupFailure({ reply: `451 4.7.0 refusing to authenticate to ${who(t)} without TLS`, permanent: false });
    }
    if (o.auth) {
      try {
        await step<boolean | undefined>(conn, (done) => conn.login({ user: o.auth!.user, pass: o.auth!.pass }, (err, ok) => done(err, ok)));
      } catch (e) {
        discard(live, !conn.destroyed);
        const err = e as SmtpError;
        // Our credentials, not the recipient: never a bounce.
        const why = err.response ?? err.message;
        throw new SetupFailure({ reply: `451 4.7.0 authentication failed at ${who(t)}: ${why}`, permanent: false });
      }
    }
    return live;
  }

  async function transaction(live: Live, o: SendOptions, rcpts: string[], reused: boolean): Promise<TxOutcome> {
    const { conn, target: t } = live;
    const internals = conn as unknown as ConnInternals;
    const out = new Map<string, RecipientResult>();

    // RFC 6531: a non-ASCII mailbox needs SMTPUTF8, which nodemailer asks for only when
    // offered. Without it the address cannot be sent; that is the recipient's fate.
    if (!internals._supportedExtensions?.includes('SMTPUTF8')) {
      const reply = `553 5.6.7 SMTPUTF8 is required but was not offered by ${who(t)}`;
      const needy = NON_ASCII.test(o.mailFrom) ? rcpts : rcpts.filter((r) => NON_ASCII.test(r));
      for (const r of needy) out.set(r, result(r, reply));
      rcpts = rcpts.filter((r) => !out.has(r));
      if (!rcpts.length) return { kind: 'results', results: out, reusable: true };
    }

    live.messages++;
    conn.lastServerResponse = false;
    const envelope = { from: o.mailFrom, to: rcpts, size: o.body.length, use8BitMime: has8bit(o.body) };
    let info: SMTPConnection.SentMessageInfo | undefined;
    let err: SmtpError | undefined;
    try {
      info = await step<SMTPConnection.SentMessageInfo>(conn, (done) => conn.send(envelope, o.body, (e, i) => done(e, i)));
    } catch (e) {
      err = e as SmtpError;
    }
    const env = internals._envelope || undefined;
    const rejected = new Map<string, SmtpError>();
    for (const r of env?.rejectedErrors ?? info?.rejectedErrors ?? []) if (r.recipient && r.response) rejected.set(r.recipient, r);
    const perRcpt = () => {
      for (const [r, e] of rejected) if (rcpts.includes(r)) out.set(r, result(r, e.response!));
    };

    if (!err && info) {
      perRcpt();
      for (const r of rcpts) if (!out.has(r)) out.set(r, result(r, info.response, 'delivered'));
      return { kind: 'results', results: out, reusable: true };
    }
    const e = err!;

    if (e.command === 'MAIL FROM') {
      if (e.response && e.responseCode) {
        // RFC 5321 §3.3: a refused MAIL refuses the whole transaction. A 4xx is this host's
        // trouble (greylisting, load): another MX may take it now.
        if (e.responseCode < 500 || e.responseCode === 503) {
          discard(live, !conn.destroyed);
          return { kind: 'next', failure: { reply: e.response, permanent: false } };
        }
        for (const r of rcpts) out.set(r, result(r, e.response));
        return { kind: 'results', results: out, reusable: !conn.destroyed };
      }
      if (e.code === 'EMESSAGE') {
        // nodemailer refused locally: larger than the SIZE the server announced (RFC 1870).
        const reply = `552 5.3.4 message size ${o.body.length} exceeds the limit ${internals._maxAllowedSize ?? '?'} of ${who(t)}`;
        for (const r of rcpts) out.set(r, result(r, reply));
        return { kind: 'results', results: out, reusable: !conn.destroyed };
      }
    }

    if ((e.command === 'RCPT TO' || e.command === 'DATA') && e.responseCode && e.response) {
      perRcpt();
      // Every RCPT refused, or DATA answered: the DATA reply goes to every accepted recipient.
      for (const r of rcpts) if (!out.has(r)) out.set(r, result(r, e.response));
      return { kind: 'results', results: out, reusable: !conn.destroyed };
    }

    // The connection failed under the transaction.
    discard(live, false);
    if (conn.lastServerResponse === false) {
      // Nothing was answered, so nothing was accepted anywhere: safe to try again.
      return reused ? { kind: 'retry-fresh' } : { kind: 'next', failure: describe(e, t, 'before any reply') };
    }
    // Something was answered: the message may even have been taken after the final dot, so
    // do not hand it to another MX now (that risks a duplicate); defer what is undecided.
    perRcpt();
    const failure = describe(e, t, 'during the transaction');
    for (const r of rcpts) if (!out.has(r)) out.set(r, result(r, failure.reply, 'deferred'));
    return { kind: 'results', results: out, reusable: false };
  }

  async function attempt(t: DeliveryTarget, o: SendOptions, rcpts: string[]): Promise<Map<string, RecipientResult> | Failure> {
    const key = `${t.address}|${t.port}|${o.tls}|${o.heloName}|${authKey(o.auth)}`;
    let live = await checkout(key);
    let reused = !!live;
    let plaintext = false;
    for (;;) {
      if (!live) {
        try {
          live = await open(t, o, key, plaintext);
        } catch (e) {
          if (!(e instanceof SetupFailure)) throw e;
          // Opportunistic TLS whose handshake broke: retry once in plaintext rather than
          // never delivering to a host with a broken TLS stack (what MTAs do for `may`).
          if (e.failure.tlsHandshake && o.tls === 'opportunistic' && !plaintext) {
            plaintext = true;
            continue;
          }
          return e.failure;
        }
      }
      const outcome = await transaction(live, o, rcpts, reused);
      if (outcome.kind === 'retry-fresh') {
        live = undefined;
        reused = false;
        continue;
      }
      if (outcome.kind === 'next') return outcome.failure;
      if (outcome.reusable) release(live);
      else if (!live.broken) discard(live, true);
      return outcome.results;
    }
  }

  async function send(targets: DeliveryTarget[], o: SendOptions): Promise<AttemptResult> {
    const unique = [...new Set(o.recipients)];
    const pre = new Map<string, RecipientResult>();
    if (o.mailFrom && BAD_ADDRESS.test(o.mailFrom)) {
      for (const r of unique) pre.set(r, result(r, '553 5.1.7 invalid sender address'));
    }
    for (const r of unique) if (!pre.has(r) && (!r || BAD_ADDRESS.test(r))) pre.set(r, result(r, '553 5.1.3 invalid recipient address'));
    const rcpts = unique.filter((r) => !pre.has(r));

    let last: Failure = { reply: '451 4.4.4 no MX target to try', permanent: false };
    let lastTarget: DeliveryTarget | undefined;
    let final: Map<string, RecipientResult> | undefined;
    if (rcpts.length) {
      for (const t of targets) {
        lastTarget = t;
        let r: Map<string, RecipientResult> | Failure;
        try {
          r = await attempt(t, o, rcpts);
        } catch (e) {
          // A bug here must not lose the message or crash the worker: defer and say why.
          log?.error({ err: e, target: t.address }, 'smtp client failed unexpectedly');
          r = { reply: `451 4.3.0 local error while delivering to ${who(t)}: ${(e as Error).message}`, permanent: false };
        }
        if (r instanceof Map) {
          final = r;
          break;
        }
        last = r;
        log?.debug({ target: t.address, host: t.host, reply: r.reply }, 'target failed, trying the next one');
      }
    }
    const status: Status = last.permanent ? 'bounced' : 'deferred';
    const results = o.recipients.map((r) => pre.get(r) ?? final?.get(r) ?? result(r, last.reply, status));
    log?.debug({ target: lastTarget?.address, statuses: results.map((r) => r.status) }, 'delivery attempt finished');
    return lastTarget ? { target: lastTarget, results } : { results };
  }

  async function close(): Promise<void> {
    closed = true;
    const all = [...idle.values()].flat();
    await Promise.all(
      all.map(async (live) => {
        const ended = new Promise<void>((resolve) => live.conn.once('end', () => resolve()));
        discard(live, true);
        // QUIT politely, but do not wait long for a server that never answers it.
        await Promise.race([ended, sleep(1000, undefined, { ref: false })]);
        live.conn.close();
      }),
    );
  }

  return { send, close };
}
