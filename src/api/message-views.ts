// Stored rows → the JSON of SPEC §8 (GET /messages/{id} and the list).
import addressparser from 'nodemailer/lib/addressparser';
import type { EventRow } from '../store/events.js';
import type { MessageRow, RecipientRow } from '../store/queue.js';
import { decodeMimeWords } from '../util/mime-words.js';
import { iso } from './common.js';

function fromAddress(m: MessageRow): string {
  if (m.from_header) {
    const list = addressparser(m.from_header, { flatten: true }) as { address?: string }[];
    const first = list.find((a) => a.address)?.address;
    if (first) return first;
  }
  return m.mail_from;
}

function messageBase(m: MessageRow) {
  return {
    id: m.id,
    from: fromAddress(m),
    from_header: m.from_header === null ? null : decodeMimeWords(m.from_header),
    subject: m.subject === null ? null : decodeMimeWords(m.subject),
    domain: m.domain,
    tags: JSON.parse(m.tags) as string[],
    metadata: m.metadata ? (JSON.parse(m.metadata) as Record<string, unknown>) : null,
    source: m.source,
    created_at: iso(m.created_at)!,
    send_at: iso(m.send_at),
  };
}

export function recipientView(r: RecipientRow) {
  return {
    email: r.email,
    status: r.status,
    attempts: r.attempts,
    last_reply: r.last_reply,
    bounce_class: r.bounce_class,
    updated_at: iso(r.updated_at)!,
    opened_at: iso(r.first_open_at),
    clicked_at: iso(r.first_click_at),
  };
}

const str = (v: unknown): string | null => (typeof v === 'string' ? v : null);

export function eventView(e: EventRow) {
  const data = e.data ? (JSON.parse(e.data) as Record<string, unknown>) : {};
  return {
    type: e.type,
    at: iso(e.at)!,
    recipient: e.recipient,
    url: str(data.url),
    ip: str(data.ip),
    user_agent: str(data.user_agent),
    reply: str(data.reply),
    bounce_class: str(data.bounce_class),
    ...(typeof data.is_bot === 'boolean' ? { is_bot: data.is_bot } : {}),
    ...(typeof data.is_proxy === 'boolean' ? { is_proxy: data.is_proxy } : {}),
    data,
  };
}

export function messageView(m: MessageRow, recipients: RecipientRow[], events: EventRow[]) {
  return {
    ...messageBase(m),
    message_id_header: m.message_id_header,
    recipients: recipients.map(recipientView),
    events: events.map(eventView),
  };
}

export function messageSummary(m: MessageRow, recipients: RecipientRow[]) {
  return { ...messageBase(m), recipients: recipients.map((r) => ({ email: r.email, status: r.status })) };
}
