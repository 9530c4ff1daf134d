// The submission edge (SPEC §4): smtp-server speaking to apps. It only
// translates between the wire and the pipeline: who may send (AUTH, IP
// credentials, sender domain, rate), then hands the bytes to submit().
import ipaddr from 'ipaddr.js';
import type { Logger } from 'pino';
import { RateLimiterMemory } from 'rate-limiter-flexible';
import { SMTPServer, type SMTPServerAuthentication, type SMTPServerSession } from 'smtp-server';
import { PasswordCache } from '../auth/password.js';
import { GatewayError, isGatewayError } from '../errors.js';
import { createSpool, type Spooled } from '../pipeline/spool.js';
import { submit, type PipelineDeps } from '../pipeline/submit.js';
import type { CredentialRow } from '../store/tenants.js';
import { isWithinDomain, parseAddress } from '../util/address.js';
import { preferOwnEnhancedCodes } from './enhanced-codes.js';
import type { TlsMaterial } from './tls.js';

interface SessionState {
  credential?: CredentialRow;
}

type SmtpError = Error & { responseCode: number };

function smtpError(code: number, enhanced: string, text: string): SmtpError {
  return Object.assign(new Error(`${enhanced} ${text}`), { responseCode: code });
}

const toSmtp = (e: GatewayError): SmtpError => smtpError(e.smtp, e.enhanced, e.message);

export function isLoopback(ip: string): boolean {
  try {
    return ipaddr.process(ip).range() === 'loopback';
  } catch {
    return false;
  }
}

export function ipInCidr(ip: string, cidr: string): boolean {
  try {
    const addr = ipaddr.process(ip);
    const [range, bits] = ipaddr.parseCIDR(cidr);
    const norm = range.kind() === 'ipv6' && (range as ipaddr.IPv6).isIPv4MappedAddress()
      ? (range as ipaddr.IPv6).toIPv4Address()
      : range;
    if (addr.kind() !== norm.kind()) return false;
    const prefix = norm.kind() === 'ipv4' && range.kind() === 'ipv6' ? bits - 96 : bits;
    return addr.match(norm, prefix);
  } catch {
    return false;
  }
}

export interface ListenerOptions {
  port: number;
  host: string;
  secure: boolean;
  tls: TlsMaterial;
}

export interface SmtpListener {
  server: SMTPServer;
  port: number;
  close(): Promise<void>;
}

export async function startSmtpListener(deps: PipelineDeps, opts: ListenerOptions): Promise<SmtpListener> {
  preferOwnEnhancedCodes();
  const { config, store } = deps;
  const log: Logger = deps.logger.child({ component: opts.secure ? 'smtps' : 'smtp' });
  const sessions = new Map<string, SessionState>();
  const passwords = new PasswordCache();
  const authFailures = new RateLimiterMemory({
    points: config.smtp.authFailureLimit,
    duration: Math.max(1, Math.round(config.smtp.authFailureWindow / 1000)),
  });
  const rates = new Map<string, { rate: number; limiter: RateLimiterMemory }>();
  const spool = createSpool(config.dataDir);
  // Left by a process that died mid-DATA; an hour is far beyond any live transfer.
  const swept = spool.sweep(3_600_000);
  if (swept) log.warn({ files: swept }, 'removed stale spool files');

  const state = (s: SMTPServerSession) => {
    let st = sessions.get(s.id);
    if (!st) sessions.set(s.id, (st = {}));
    return st;
  };

  const authSlots = new Map<string, { active: number; users: number; waiting: (() => void)[] }>();

  /**
   * Runs one password check for `ip` unless the IP is locked out. At most as many
   * checks run at once as the IP has failures left: otherwise a client opening many
   * connections would get all its guesses checked before the first failure counted.
   * Further attempts wait for a running one (legitimate parallel logins are quick:
   * after the first success they are cache hits).
   */
  async function authGate(ip: string, check: () => Promise<boolean>): Promise<boolean | 'throttled'> {
    let slot = authSlots.get(ip);
    if (!slot) authSlots.set(ip, (slot = { active: 0, users: 0, waiting: [] }));
    slot.users++;
    try {
      for (;;) {
        const left = config.smtp.authFailureLimit - ((await authFailures.get(ip))?.consumedPoints ?? 0);
        if (left <= 0) return 'throttled';
        if (slot.active < left) break;
        await new Promise<void>((resolve) => slot!.waiting.push(resolve));
      }
      slot.active++;
      try {
        return await check();
      } finally {
        slot.active--;
        // Everyone waiting looks again: the outcome changed how many may run.
        for (const wake of slot.waiting.splice(0)) wake();
      }
    } finally {
      if (--slot.users === 0) authSlots.delete(ip);
    }
  }

  async function onAuth(
    auth: SMTPServerAuthentication,
    session: SMTPServerSession,
    cb: (err: Error | null | undefined, res?: { user: unknown }) => void,
  ) {
    const ip = session.remoteAddress;
    if (config.smtp.authRequiresTls && !session.secure && !isLoopback(ip)) {
      return cb(smtpError(538, '5.7.11', 'Encryption required for requested authentication mechanism; use STARTTLS'));
    }
    const username = auth.username ?? '';
    const cred = store.tenants.credentialByUsername(username);
    const verdict = await authGate(ip, async () => {
      const ok =
        !!cred?.password_hash && typeof auth.password === 'string' && (await passwords.verify(auth.password, cred.password_hash));
      if (!ok) await authFailures.penalty(ip, 1).catch(() => undefined);
      return ok;
    });
    if (verdict === 'throttled') {
      log.warn({ ip, session: session.id }, 'AUTH refused: too many failures from this address');
      return cb(smtpError(454, '4.7.0', 'Too many failed authentication attempts; try again later'));
    }
    if (!verdict || !cred) {
      log.info({ ip, session: session.id }, 'AUTH failed');
      return cb(smtpError(535, '5.7.8', 'Authentication credentials invalid'));
    }
    state(session).credential = cred;
    log.info({ ip, session: session.id, credential: cred.id }, 'AUTH ok');
    cb(null, { user: cred.id });
  }

  /** The credential this session sends with for `senderDomain`, or a reply saying why not. */
  function credentialFor(session: SMTPServerSession, senderDomain: string | null): CredentialRow {
    const st = state(session);
    if (st.credential && session.user) {
      // Re-read: a credential removed with the CLI stops working on open sessions too.
      const fresh = store.tenants.credential(st.credential.id);
      if (!fresh) throw smtpError(530, '5.7.0', 'Authentication required');
      if (senderDomain !== null && !isWithinDomain(senderDomain, fresh.domain)) {
        throw smtpError(550, '5.7.1', `Sender address domain ${senderDomain} is not allowed for this credential`);
      }
      return fresh;
    }
    const byIp = store.tenants.ipCredentials().filter((c) => c.cidr && ipInCidr(session.remoteAddress, c.cidr));
    if (!byIp.length) throw smtpError(530, '5.7.0', 'Authentication required');
    const match = senderDomain === null ? byIp[0] : byIp.find((c) => isWithinDomain(senderDomain, c.domain));
    if (!match) throw smtpError(550, '5.7.1', `Sender address domain ${senderDomain} is not allowed from this network`);
    return match;
  }

  async function checkRate(cred: CredentialRow): Promise<void> {
    if (!cred.rate_per_minute) return;
    let entry = rates.get(cred.id);
    if (!entry || entry.rate !== cred.rate_per_minute) {
      entry = { rate: cred.rate_per_minute, limiter: new RateLimiterMemory({ points: cred.rate_per_minute, duration: 60 }) };
      rates.set(cred.id, entry);
    }
    try {
      await entry.limiter.consume(cred.id, 1);
    } catch {
      throw smtpError(451, '4.7.1', `Sending rate exceeded (${cred.rate_per_minute} messages/minute); try again later`);
    }
  }

  const server = new SMTPServer({
    secure: opts.secure,
    key: opts.tls.key,
    cert: opts.tls.cert,
    name: config.hostname,
    banner: 'relaygate ESMTP ready',
    size: config.smtp.maxMessageSize,
    rejectOversized: true,
    maxRecipients: config.smtp.maxRecipients,
    authMethods: ['PLAIN', 'LOGIN'],
    // IP credentials send without AUTH; onMailFrom enforces "no credential, no mail".
    authOptional: true,
    // Checked in onAuth, where loopback can be exempted (smtp-server cannot).
    allowInsecureAuth: true,
    hideENHANCEDSTATUSCODES: false,
    hideDSN: true,
    disableReverseLookup: true,
    closeTimeout: config.smtp.closeTimeout,
    socketTimeout: config.smtp.socketTimeout,
    logger: false,
    onAuth: (auth, session, cb) => {
      onAuth(auth, session, cb).catch((e) => {
        log.error({ err: e }, 'AUTH handler failed');
        cb(smtpError(454, '4.7.0', 'Temporary authentication failure'));
      });
    },
    onMailFrom: (address, session, cb) => {
      (async () => {
        const raw = address.address ?? '';
        // SPEC §3: a credential sends only with an envelope sender in its own domain. The
        // null sender (RFC 5321 §4.5.5) is for bounces and other non-delivery reports, which
        // apps do not submit; accepting it would also send mail whose bounces reach no one.
        if (raw === '') {
          credentialFor(session, null);
          throw smtpError(550, '5.7.1', 'A null envelope sender is not allowed; use an address in your sending domain');
        }
        const parsed = parseAddress(raw);
        if (!parsed) throw smtpError(501, '5.1.7', `Bad sender address syntax: ${raw.slice(0, 100)}`);
        const cred = credentialFor(session, parsed.domain);
        await checkRate(cred);
        state(session).credential = cred;
      })().then(
        () => cb(),
        (e) => cb(e.responseCode ? e : smtpError(451, '4.3.0', 'Temporary failure, try again later')),
      );
    },
    onRcptTo: (address, _session, cb) => {
      if (!parseAddress(address.address ?? '')) {
        return cb(smtpError(501, '5.1.3', `Bad recipient address syntax: ${(address.address ?? '').slice(0, 100)}`));
      }
      cb();
    },
    onData: (stream, session, cb) => {
      const limit = config.smtp.maxMessageSize;
      const tooLarge = () => smtpError(552, '5.3.4', `Message exceeds fixed maximum message size ${limit}`);
      const tempFail = () => smtpError(451, '4.3.0', 'Temporary failure, try again later');
      let spooled: Spooled | undefined;
      // The spool file is gone before the reply is sent, whatever the outcome.
      const removeSpool = async () => {
        if (spooled) await spool.remove(spooled).catch((e) => log.warn({ err: e }, 'removing spool file failed'));
      };
      const accept = async () => {
        spooled = await spool.receive(stream, limit);
        // Past the limit smtp-server answers 552 itself; the reply here says the same.
        if (spooled.oversize || (stream as unknown as { sizeExceeded?: boolean }).sizeExceeded) throw tooLarge();
        if (spooled.writeError) {
          log.error({ err: spooled.writeError, session: session.id }, 'spooling DATA failed');
          throw tempFail();
        }
        const cred = state(session).credential;
        if (!cred) throw smtpError(530, '5.7.0', 'Authentication required');
        const raw = await spool.read(spooled);
        // Unlinked before submit(), not after it: once the commit is durable the 250 must go
        // out in the same turn. Awaiting the unlink in between held each stored message's reply
        // back by a thread-pool round trip; a crash there makes the client send a stored
        // message again (RFC 1047's duplicate), and the crash suite counted them.
        await removeSpool();
        return submit(deps, {
          raw,
          mailFrom: session.envelope.mailFrom ? session.envelope.mailFrom.address : '',
          recipients: session.envelope.rcptTo.map((r) => r.address),
          sender: { credentialId: cred.id, domain: cred.domain },
          source: 'smtp',
          trace: { helo: session.hostNameAppearsAs, clientAddress: session.remoteAddress, protocol: session.transmissionType || 'ESMTP' },
        });
      };
      const reply = (e: any): SmtpError => {
        if (e?.responseCode) return e;
        if (isGatewayError(e)) {
          log.info({ session: session.id, code: e.code }, `message refused: ${e.message}`);
          return toSmtp(e);
        }
        // The client went away mid-DATA: there is nobody left to answer.
        if (e?.code !== 'ECONNECTION' && e?.code !== 'ERR_STREAM_PREMATURE_CLOSE') log.error({ err: e, session: session.id }, 'accept failed');
        return tempFail();
      };
      accept().then(
        (res) => cb(null, `2.0.0 Ok: queued as ${res.id}`),
        async (e) => {
          await removeSpool();
          cb(reply(e));
        },
      );
    },
    onClose: (session) => {
      sessions.delete(session.id);
    },
  });
  server.on('error', (e) => log.error({ err: e }, 'SMTP server error'));

  await new Promise<void>((resolve, reject) => {
    server.server.once('error', reject);
    server.listen(opts.port, opts.host, () => {
      server.server.off('error', reject);
      resolve();
    });
  });
  const port = (server.server.address() as { port: number }).port;
  log.info({ port, host: opts.host, secure: opts.secure }, 'SMTP listener started');
  return {
    server,
    port,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
