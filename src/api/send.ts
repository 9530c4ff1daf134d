// HTTP sending: validate the JSON once at the boundary, build MIME with
// MailComposer, then hand the bytes to submit() — the same accept path SMTP
// uses (From authorization, tracking, DKIM, durable queue).
import Mustache from 'mustache';
import type { Config } from '../config/schema.js';
import { isGatewayError } from '../errors.js';
import type { ApiDeps } from '../http/deps.js';
import { MAX_METADATA_BYTES, MAX_SCHEDULE_AHEAD_MS, type Controls, type TrackFlag } from '../pipeline/control-headers.js';
import { submit, type Accepted } from '../pipeline/submit.js';
import type { IdempotentParts } from './idempotency.js';
import type { DomainRow } from '../store/tenants.js';
import { newId } from '../util/ids.js';
import { parseTime } from './common.js';
import {
  assertHeaderSafe,
  checkHeaders,
  composeMime,
  decodeAttachment,
  parseMailboxList,
  parseMailboxes,
  type ComposeAttachment,
  type Mailbox,
} from './compose.js';
import { ApiError, badRequest } from './errors.js';
import type { BatchBody, SendBody, SharedBody } from './message-schemas.js';

/** Everything about a send that does not depend on the recipient, checked once. */
export interface SharedSend {
  from: Mailbox;
  domain: DomainRow;
  replyTo: Mailbox[];
  subject?: string;
  html?: string;
  text?: string;
  headers: Record<string, string>;
  attachments: ComposeAttachment[];
  controls: Partial<Controls>;
}

function trackSet(config: Config, track: NonNullable<SharedBody['track']>): Set<TrackFlag> {
  if (typeof track === 'boolean') {
    return track ? new Set<TrackFlag>(['opens', 'clicks', ...(config.tracking.unsubscribe ? (['unsubscribe'] as const) : [])]) : new Set();
  }
  const pick = (flag: TrackFlag, given: boolean | undefined, dflt: boolean) => ((given ?? dflt) ? [flag] : []);
  return new Set<TrackFlag>([
    ...pick('opens', track.opens, config.tracking.opens),
    ...pick('clicks', track.clicks, config.tracking.clicks),
    ...pick('unsubscribe', track.unsubscribe, config.tracking.unsubscribe),
  ]);
}

function sendAt(value: string, now: number): number | null {
  const t = parseTime(value)!;
  if (t - now > MAX_SCHEDULE_AHEAD_MS) throw badRequest('invalid_request', 'send_at: must be at most 30 days ahead', 'send_at');
  return t > now ? t : null;
}

export function prepareShared(deps: ApiDeps, body: SharedBody, now: number): SharedSend {
  const [from, ...more] = parseMailboxes(body.from, 'from');
  if (more.length) throw badRequest('invalid_address', 'from: exactly one address is allowed', 'from');
  if (body.subject !== undefined) assertHeaderSafe(body.subject, 'subject');
  if (body.html === undefined && body.text === undefined) {
    throw badRequest('invalid_request', 'html: one of html or text is required', 'html');
  }
  const domain = deps.store.tenants.domainFor(from.domain);
  if (!domain) {
    throw new ApiError(403, 'sender_not_allowed', `from: ${from.domain} is not a configured sending domain`, { field: 'from' });
  }
  const controls: Partial<Controls> = {};
  if (body.tags) controls.tags = [...new Set(body.tags)];
  if (body.metadata) controls.metadata = body.metadata;
  if (body.track !== undefined) controls.track = trackSet(deps.config, body.track);
  if (body.send_at !== undefined) controls.sendAt = sendAt(body.send_at, now);
  return {
    from,
    domain,
    replyTo: parseMailboxList(body.reply_to, 'reply_to'),
    subject: body.subject,
    html: body.html,
    text: body.text,
    headers: checkHeaders(body.headers ?? {}),
    attachments: (body.attachments ?? []).map(decodeAttachment),
    controls,
  };
}

interface Addressing {
  to: Mailbox[];
  cc: Mailbox[];
  bcc: Mailbox[];
}

async function submitOne(
  deps: ApiDeps,
  s: SharedSend,
  a: Addressing,
  content: Pick<SharedSend, 'subject' | 'html' | 'text' | 'controls'>,
  inCommit?: (accepted: Accepted) => void,
): Promise<Accepted> {
  const seen = new Set<string>();
  const envelope: string[] = [];
  for (const m of [...a.to, ...a.cc, ...a.bcc]) {
    const k = m.address.toLowerCase();
    if (!seen.has(k)) (seen.add(k), envelope.push(m.address));
  }
  if (!envelope.length) throw badRequest('invalid_request', 'to: at least one recipient (to, cc or bcc) is required', 'to');
  if (envelope.length > deps.config.smtp.maxRecipients) {
    throw badRequest('too_many_recipients', `to: at most ${deps.config.smtp.maxRecipients} recipients per message (use /messages/batch)`, 'to');
  }
  let raw: Buffer;
  try {
    raw = await composeMime({ ...s, ...a, subject: content.subject, html: content.html, text: content.text });
  } catch (e) {
    throw badRequest('invalid_request', `message could not be built: ${(e as Error).message}`);
  }
  try {
    const res = await submit(deps.pipeline, {
      raw,
      mailFrom: s.from.address,
      recipients: envelope,
      sender: { credentialId: null, domain: s.domain.name },
      source: 'http',
      controls: content.controls,
      inCommit,
      trace: { protocol: 'HTTP' },
    });
    deps.metrics.accepted.inc({ source: 'http' });
    return res;
  } catch (e) {
    deps.metrics.rejected.inc({ source: 'http', reason: isGatewayError(e) ? e.code : 'internal' });
    throw e;
  }
}

export async function sendMessage(deps: ApiDeps, body: SendBody, now: number, parts?: IdempotentParts): Promise<Accepted> {
  const shared = prepareShared(deps, body, now);
  const a = { to: parseMailboxList(body.to, 'to'), cc: parseMailboxList(body.cc, 'cc'), bcc: parseMailboxList(body.bcc, 'bcc') };
  return parts?.stored(0) ?? submitOne(deps, shared, a, shared, parts?.record(0));
}

const asIs = (s: string) => s;

function checkTemplate(template: string | undefined, field: string): void {
  if (template === undefined) return;
  try {
    Mustache.parse(template);
  } catch (e) {
    throw badRequest('invalid_template', `${field}: ${(e as Error).message}`, field);
  }
}

/** Per-recipient content: mustache, HTML-escaped in html; a subject is a header, so CR/LF are removed. */
export function renderFor(s: Pick<SharedSend, 'subject' | 'html' | 'text'>, variables: Record<string, unknown>) {
  const view = variables;
  return {
    subject: s.subject === undefined ? undefined : Mustache.render(s.subject, view, {}, { escape: asIs }).replace(/[\r\n]+/g, ''),
    html: s.html === undefined ? undefined : Mustache.render(s.html, view, {}),
    text: s.text === undefined ? undefined : Mustache.render(s.text, view, {}, { escape: asIs }),
  };
}

export interface BatchResult {
  batch_id: string;
  ids: string[];
  queued: number;
  rejected: { index: number; to: string; error: string }[];
}

const BATCH_CONCURRENCY = 16;

export async function sendBatch(deps: ApiDeps, body: BatchBody, now: number, parts?: IdempotentParts): Promise<BatchResult> {
  const shared = prepareShared(deps, body, now);
  checkTemplate(shared.subject, 'subject');
  checkTemplate(shared.html, 'html');
  checkTemplate(shared.text, 'text');
  const results: ({ id: string } | { error: string })[] = new Array(body.recipients.length);

  const one = async (i: number) => {
    const r = body.recipients[i];
    try {
      const to = parseMailboxes(r.to, `recipients[${i}].to`);
      if (to.length !== 1) throw badRequest('invalid_address', `recipients[${i}].to: exactly one address is allowed`);
      let controls = shared.controls;
      if (r.metadata) {
        const metadata = { ...(shared.controls.metadata ?? {}), ...r.metadata };
        if (Buffer.byteLength(JSON.stringify(metadata)) > MAX_METADATA_BYTES) {
          throw badRequest('invalid_request', `recipients[${i}].metadata: merged metadata exceeds ${MAX_METADATA_BYTES} bytes`);
        }
        controls = { ...controls, metadata };
      }
      const content = renderFor(shared, r.variables ?? {});
      const res = parts?.stored(i) ?? (await submitOne(deps, shared, { to, cc: [], bcc: [] }, { ...content, controls }, parts?.record(i)));
      results[i] = { id: res.id };
    } catch (e) {
      if (!isGatewayError(e)) deps.logger.error({ err: e, index: i }, 'batch recipient failed');
      results[i] = { error: isGatewayError(e) ? e.message : 'internal error' };
    }
  };

  let next = 0;
  const workers = Array.from({ length: Math.min(BATCH_CONCURRENCY, body.recipients.length) }, async () => {
    while (next < body.recipients.length) await one(next++);
  });
  await Promise.all(workers);

  const ids: string[] = [];
  const rejected: BatchResult['rejected'] = [];
  results.forEach((r, index) => {
    if ('id' in r) ids.push(r.id);
    else rejected.push({ index, to: body.recipients[index].to, error: r.error });
  });
  return { batch_id: `batch_${newId(now)}`, ids, queued: ids.length, rejected };
}
