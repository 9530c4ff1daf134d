// JSON → RFC 5322 bytes for HTTP sends, with nodemailer's MailComposer. Every
// value that ends up in a header is checked here first: a CR or LF in it would
// let the caller write headers (or a whole second message) of their own
// (header injection), so it is a 400 naming the field, never "cleaned up".
import MailComposer from 'nodemailer/lib/mail-composer/index.js';
import addressparser from 'nodemailer/lib/addressparser';
import { isControlHeader } from '../pipeline/control-headers.js';
import { splitMessage, joinMessage } from '../pipeline/headers.js';
import { parseAddress } from '../util/address.js';
import { badRequest } from './errors.js';

export interface Mailbox {
  name: string;
  /** local@domain, domain normalised. */
  address: string;
  domain: string;
}

export interface ComposeAttachment {
  filename: string;
  content: Buffer;
  contentType?: string;
  cid?: string;
}

export interface ComposeRequest {
  from: Mailbox;
  to: Mailbox[];
  cc: Mailbox[];
  bcc: Mailbox[];
  replyTo: Mailbox[];
  subject?: string;
  html?: string;
  text?: string;
  headers: Record<string, string>;
  attachments: ComposeAttachment[];
}

export function assertHeaderSafe(value: string, field: string): string {
  if (/[\r\n]/.test(value)) throw badRequest('invalid_request', `${field}: must not contain CR or LF`, field);
  if (value.includes('\0')) throw badRequest('invalid_request', `${field}: must not contain NUL`, field);
  return value;
}

/** One or more mailboxes (`a@x`, `Name <a@x>`, or a comma list of them). */
export function parseMailboxes(value: string, field: string): Mailbox[] {
  assertHeaderSafe(value, field);
  const list = addressparser(value, { flatten: true }) as { name?: string; address?: string }[];
  if (!list.length) throw badRequest('invalid_address', `${field}: no address given`, field);
  return list.map((a) => {
    const parsed = parseAddress(a.address ?? '');
    if (!parsed) throw badRequest('invalid_address', `${field}: "${(a.address || value).slice(0, 100)}" is not a valid email address`, field);
    return { name: a.name ?? '', address: parsed.address, domain: parsed.domain };
  });
}

export function parseMailboxList(value: string | string[] | undefined, field: string): Mailbox[] {
  if (value === undefined) return [];
  if (typeof value === 'string') return parseMailboxes(value, field);
  return value.flatMap((v, i) => parseMailboxes(v, `${field}[${i}]`));
}

/** RFC 5322 field name: printable ASCII except colon. */
const FIELD_NAME = /^[\x21-\x39\x3b-\x7e]{1,76}$/;
/** Built from the JSON fields (or by us); setting them as raw headers would contradict those. */
const RESERVED = new Set([
  'from',
  'to',
  'cc',
  'bcc',
  'reply-to',
  'subject',
  'content-type',
  'content-transfer-encoding',
  'mime-version',
  'return-path',
  'dkim-signature',
]);

export function checkHeaders(headers: Record<string, string>): Record<string, string> {
  for (const [name, value] of Object.entries(headers)) {
    const field = `headers.${name}`;
    if (!FIELD_NAME.test(name)) throw badRequest('invalid_header', `${field}: not a valid header name`, field);
    const key = name.toLowerCase();
    if (RESERVED.has(key)) throw badRequest('invalid_header', `${field}: set this with its own JSON field, not as a header`, field);
    if (isControlHeader({ key } as never)) {
      throw badRequest('invalid_header', `${field}: use the track, tags, metadata and send_at fields instead of X-Relaygate-* headers`, field);
    }
    assertHeaderSafe(value, field);
  }
  return headers;
}

const B64 = /^[A-Za-z0-9+/]*={0,2}$/;
const CONTENT_TYPE = /^[A-Za-z0-9!#$&^_.+-]+\/[A-Za-z0-9!#$&^_.+-]+(\s*;[^\r\n]*)?$/;

export function decodeAttachment(
  a: { filename: string; content: string; content_type?: string; cid?: string },
  i: number,
): ComposeAttachment {
  const field = `attachments[${i}]`;
  assertHeaderSafe(a.filename, `${field}.filename`);
  if (a.content_type !== undefined) {
    assertHeaderSafe(a.content_type, `${field}.content_type`);
    if (!CONTENT_TYPE.test(a.content_type)) {
      throw badRequest('invalid_request', `${field}.content_type: "${a.content_type.slice(0, 60)}" is not a MIME type`, `${field}.content_type`);
    }
  }
  if (a.cid !== undefined) {
    assertHeaderSafe(a.cid, `${field}.cid`);
    if (/[<>\s]/.test(a.cid) || !a.cid) throw badRequest('invalid_request', `${field}.cid: must not contain <, > or spaces`, `${field}.cid`);
  }
  const b64 = a.content.replace(/\s+/g, '');
  if (!B64.test(b64) || b64.length % 4 === 1) {
    throw badRequest('invalid_request', `${field}.content: not valid base64`, `${field}.content`);
  }
  return { filename: a.filename, content: Buffer.from(b64, 'base64'), contentType: a.content_type, cid: a.cid };
}

const addr = (m: Mailbox) => ({ name: m.name, address: m.address });

/** Builds the message. A Message-ID is left to the pipeline (so it carries the gateway's id) unless the caller set one. */
export async function composeMime(req: ComposeRequest): Promise<Buffer> {
  const composer = new MailComposer({
    from: addr(req.from),
    to: req.to.map(addr),
    cc: req.cc.length ? req.cc.map(addr) : undefined,
    // MailComposer leaves Bcc out of the header block; the addresses only go into the envelope.
    bcc: req.bcc.length ? req.bcc.map(addr) : undefined,
    replyTo: req.replyTo.length ? req.replyTo.map(addr) : undefined,
    subject: req.subject,
    html: req.html,
    text: req.text,
    headers: req.headers,
    attachments: req.attachments.map((a) => ({
      filename: a.filename,
      content: a.content,
      contentType: a.contentType,
      cid: a.cid,
    })),
    // The JSON never names files or URLs to read: make sure nothing can.
    disableFileAccess: true,
    disableUrlAccess: true,
  });
  const raw = await new Promise<Buffer>((resolve, reject) =>
    composer.compile().build((err: Error | null, out: Buffer) => (err ? reject(err) : resolve(out))),
  );
  if (Object.keys(req.headers).some((h) => h.toLowerCase() === 'message-id')) return raw;
  const { fields, body } = splitMessage(raw);
  return joinMessage(
    fields.filter((f) => f.key !== 'message-id'),
    body,
  );
}
