// The accept path shared by SMTP and HTTP: one code path after parsing.
// normalize → headers → authorize From → control headers → Message-ID/Date →
// per-recipient tracking rewrite → DKIM sign → group commit. The caller's 250
// (or 202) is sent only after the commit's promise resolves.
import addressparser from 'nodemailer/lib/addressparser';
import type { Logger } from 'pino';
import type { Config } from '../config/schema.js';
import { GatewayError } from '../errors.js';
import type { Store } from '../store/index.js';
import type { NewMessage } from '../store/queue.js';
import type { DomainRow } from '../store/tenants.js';
import { isWithinDomain, parseAddress } from '../util/address.js';
import { newId } from '../util/ids.js';
import { isControlHeader, parseTrack, readControls, type Controls, type TrackFlag } from './control-headers.js';
import { getHeader, headerEnd, joinMessage, splitMessage, type HeaderField } from './headers.js';
import { normalizeLineEndings } from './normalize.js';
import { receivedHeader, rfc5322Date, type Trace } from './trace.js';
import { prepareTracking } from './tracking-plan.js';

export interface SigningKeyInput {
  domain: string;
  selector: string;
  algorithm: 'rsa' | 'ed25519';
  privateKeyPem: string;
}

export interface Signer {
  sign(message: Buffer, keys: SigningKeyInput[]): Promise<Buffer>;
}

export interface PipelineDeps {
  config: Config;
  store: Store;
  signer: Signer;
  logger: Logger;
  clock?: () => number;
  /** Nudges the delivery worker after a commit. */
  onQueued?: () => void;
}

export interface Sender {
  credentialId: string | null;
  /** The configured domain the sender may send for (From and envelope must be within it). */
  domain: string;
}

export interface Submission {
  raw: Buffer;
  mailFrom: string;
  recipients: string[];
  sender: Sender;
  source: 'smtp' | 'http';
  /** HTTP sends pass their options here instead of control headers. */
  controls?: Partial<Controls>;
  /** Runs inside the transaction that stores the message (the Idempotency-Key record of an API send). */
  inCommit?: (accepted: Accepted) => void;
  /** For the Received field; without it the message gets none (only tests submit that way). */
  trace?: Trace;
}

export interface Accepted {
  id: string;
  recipients: { email: string; status: 'queued' | 'scheduled' | 'suppressed' }[];
}

const denied = (message: string) =>
  new GatewayError('sender_not_allowed', message, { smtp: 550, enhanced: '5.7.1', http: 403 });

export function fromAddresses(fields: HeaderField[]): string[] {
  // RFC 5322 §3.6: exactly one From. Checking only the first of two would let a second,
  // foreign one through to readers that show the last.
  if (fields.filter((f) => f.key === 'from').length > 1) {
    throw new GatewayError('invalid_from', 'Message has more than one From header', { smtp: 550, enhanced: '5.6.0', http: 400 });
  }
  const value = getHeader(fields, 'from');
  if (!value) {
    throw new GatewayError('missing_from', 'Message has no From header', { smtp: 550, enhanced: '5.6.0', http: 400 });
  }
  const list = addressparser(value, { flatten: true }) as { address?: string }[];
  const addrs = list.map((a) => a.address ?? '').filter(Boolean);
  if (!addrs.length) {
    throw new GatewayError('invalid_from', 'From header has no valid address', { smtp: 550, enhanced: '5.6.0', http: 400 });
  }
  return addrs;
}

/** The From header must be within the sender's domain (SPEC §3), or DKIM and DMARC cannot align. */
export function authorizeFrom(fields: HeaderField[], sender: Sender): void {
  for (const a of fromAddresses(fields)) {
    const parsed = parseAddress(a);
    if (!parsed) throw new GatewayError('invalid_from', `From header address ${a} is not valid`, { smtp: 550, enhanced: '5.6.0', http: 400 });
    if (!isWithinDomain(parsed.domain, sender.domain)) {
      throw denied(`From header address ${parsed.address} is not allowed for ${sender.domain}`);
    }
  }
}

/**
 * Physical lines allowed in the header block. Found by the bad-input suite: mailauth's header
 * parser is quadratic in continuation lines (one header folded 20,000 times cost 2.7 s of
 * signing, 80,000 times ran past the signer's 30 s timeout), so a large header made of tiny
 * lines was a cheap way to tie up the signer pool. Real submissions carry a few dozen lines.
 */
export const MAX_HEADER_LINES = 10_000;

function checkHeaderLines(raw: Buffer): void {
  const { headerLength } = headerEnd(raw);
  let lines = 0;
  for (let i = raw.indexOf(10); i >= 0 && i < headerLength; i = raw.indexOf(10, i + 1)) {
    if (++lines > MAX_HEADER_LINES) {
      throw new GatewayError('header_too_large', `Message header exceeds ${MAX_HEADER_LINES} lines`, { smtp: 552, enhanced: '5.3.4', http: 400 });
    }
  }
}

export async function submit(deps: PipelineDeps, sub: Submission): Promise<Accepted> {
  const now = (deps.clock ?? Date.now)();
  const { store, config } = deps;
  if (sub.raw.length > config.smtp.maxMessageSize) {
    throw new GatewayError('message_too_large', `Message exceeds fixed maximum message size ${config.smtp.maxMessageSize}`, {
      smtp: 552,
      enhanced: '5.3.4',
      http: 413,
    });
  }
  const raw = normalizeLineEndings(sub.raw);
  checkHeaderLines(raw);
  const { fields, body } = splitMessage(raw);
  authorizeFrom(fields, sub.sender);
  const controls: Controls = { ...readControls(fields, now), ...(sub.controls ?? {}) };
  const domain = store.tenants.domain(sub.sender.domain);
  if (!domain) throw denied(`Domain ${sub.sender.domain} is not configured`);
  if (config.smtp.requireVerifiedDomain && !domain.verified) {
    throw denied(`Domain ${domain.name} is not verified (publish its SPF and DKIM records, then run domain verify)`);
  }

  const id = newId(now);
  // An empty Message-ID or Date is as good as none: drop it and add a real one, never a second field.
  const blankOrigin = (f: HeaderField) => (f.key === 'message-id' || f.key === 'date') && f.value.trim() === '';
  const kept = fields.filter((f) => !isControlHeader(f) && !blankOrigin(f));
  const prepend: string[] = [];
  if (sub.trace) {
    const rcpts = sub.recipients.map((r) => parseAddress(r)?.address ?? r);
    prepend.push(receivedHeader(sub.trace, { hostname: config.hostname, id, at: now, recipients: rcpts }));
  }
  let messageIdHeader = getHeader(kept, 'message-id')?.trim() || null;
  if (!messageIdHeader) {
    messageIdHeader = `<${id}@${config.hostname}>`;
    prepend.push(`Message-ID: ${messageIdHeader}`);
  }
  if (!getHeader(kept, 'date')) prepend.push(`Date: ${rfc5322Date(now)}`);
  const base = joinMessage(kept, body, prepend);

  const flags = trackFlags(config, domain, controls);
  const recipients = sub.recipients.map((email) => {
    const parsed = parseAddress(email)!;
    const suppressed = store.tenants.isSuppressed(domain.name, parsed.address);
    return { email: parsed.address, rcptDomain: parsed.domain, suppressed };
  });

  const keys = signingKeys(store, domain);
  const live = recipients.filter((r) => !r.suppressed);
  const plan = prepareTracking(base, flags, {
    baseUrl: trackingBase(config, domain),
    unsubscribeMailto: config.tracking.unsubscribeMailto,
    textLinks: config.tracking.textLinks,
  });

  const bodies: Buffer[] = [];
  const tokensFor: NewMessage['recipients'][number]['tokens'][] = [];
  if (plan.perRecipient) {
    // Each copy is signed on its own; the signer's worker pool takes them in parallel.
    const copies = live.map((r) => plan.render(r.email));
    bodies.push(...(await Promise.all(copies.map((c) => sign(deps, c.message, keys)))));
    tokensFor.push(...copies.map((c) => c.tokens));
  } else if (live.length) {
    bodies.push(await sign(deps, base, keys));
  }

  const sendAt = controls.sendAt ?? null;
  let liveIndex = 0;
  const msg: NewMessage = {
    id,
    domain: domain.name,
    mailFrom: sub.mailFrom,
    fromHeader: getHeader(kept, 'from') ?? null,
    subject: getHeader(kept, 'subject') ?? null,
    messageIdHeader,
    tags: controls.tags,
    metadata: controls.metadata,
    source: sub.source,
    credentialId: sub.sender.credentialId,
    size: raw.length,
    createdAt: now,
    sendAt,
    bodies,
    // The event log says how the message left: signed with which selectors, or why unsigned.
    eventData: keys.length
      ? { dkim: keys.map((k) => `d=${k.domain} s=${k.selector}`).join(', ') }
      : { dkim: `unsigned: no active DKIM key for ${domain.name}` },
    recipients: recipients.map((r) => {
      if (r.suppressed) {
        return { email: r.email, rcptDomain: r.rcptDomain, bodyIndex: -1, status: 'suppressed' as const, reason: r.suppressed.reason, tokens: [] };
      }
      const i = liveIndex++;
      return {
        email: r.email,
        rcptDomain: r.rcptDomain,
        bodyIndex: plan.perRecipient ? i : 0,
        status: sendAt ? ('scheduled' as const) : ('queued' as const),
        tokens: plan.perRecipient ? tokensFor[i] : [],
      };
    }),
  };
  const accepted: Accepted = { id, recipients: msg.recipients.map((r) => ({ email: r.email, status: r.status })) };
  try {
    await store.committer.run(() => {
      store.queue.enqueue(msg);
      sub.inCommit?.(accepted);
    });
  } catch (e) {
    // Disk full or I/O error: nothing was stored, the client must retry later.
    throw new GatewayError('storage_unavailable', 'Temporary storage failure, try again later', {
      smtp: 451,
      enhanced: '4.3.0',
      http: 503,
      cause: e,
    });
  }
  deps.logger.info(
    { msg_id: id, source: sub.source, rcpts: recipients.length, size: raw.length, dkim: keys.map((k) => k.selector) },
    'message accepted',
  );
  deps.onQueued?.();
  return accepted;
}

/** Most specific wins: the message's own setting, then the domain's, then config. */
function trackFlags(config: Config, domain: DomainRow, controls: Controls): Set<TrackFlag> {
  if (controls.track) return controls.track;
  if (domain.track !== null) return parseTrack(domain.track, 'domain track setting');
  const s = new Set<TrackFlag>();
  if (config.tracking.opens) s.add('opens');
  if (config.tracking.clicks) s.add('clicks');
  if (config.tracking.unsubscribe) s.add('unsubscribe');
  return s;
}

/** The domain's own tracking host once its CNAME verified, else http.publicUrl (SPEC §7). */
export function trackingBase(config: Config, domain: DomainRow): string {
  if (domain.tracking_host && domain.tracking_verified) {
    return `${new URL(config.http.publicUrl).protocol}//${domain.tracking_host}`;
  }
  return config.http.publicUrl;
}

function signingKeys(store: Store, domain: DomainRow): SigningKeyInput[] {
  return store.tenants
    .keys(domain.id)
    .filter((k) => k.status === 'active')
    .map((k) => ({ domain: domain.name, selector: k.selector, algorithm: k.algorithm, privateKeyPem: k.private_key }));
}

async function sign(deps: PipelineDeps, message: Buffer, keys: SigningKeyInput[]): Promise<Buffer> {
  if (!keys.length) return message;
  return deps.signer.sign(message, keys);
}
