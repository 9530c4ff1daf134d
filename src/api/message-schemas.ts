// Request and response schemas of the message routes (SPEC §8). The request
// schemas validate; all of them feed openapi.json.
import { z } from 'zod';
import { EVENT_TYPES } from '../store/events.js';
import { MAX_METADATA_BYTES, MAX_TAGS, TAG_RE } from '../pipeline/control-headers.js';
import { isoDoc, pageParams, parseTime, timeRange } from './common.js';

export const MAX_BATCH = 1000;

const addresses = z
  .union([z.string(), z.array(z.string()).max(1000)])
  .meta({ description: 'Addresses: "a@example.com", "Name <a@example.com>", or an array of them' });

export const metadataSchema = z
  .record(z.string(), z.unknown())
  .refine((v) => Buffer.byteLength(JSON.stringify(v)) <= MAX_METADATA_BYTES, `must be at most ${MAX_METADATA_BYTES} bytes as JSON`)
  .meta({ description: `A JSON object (at most ${MAX_METADATA_BYTES} bytes), echoed in the message API and in webhooks` });

const trackSchema = z
  .union([
    z.boolean(),
    z.object({
      opens: z.boolean().optional(),
      clicks: z.boolean().optional(),
      unsubscribe: z.boolean().optional(),
    }),
  ])
  .meta({ description: 'Tracking for this message; omitted flags keep the gateway defaults (tracking.* config). false = no tracking.' });

const attachmentSchema = z.object({
  filename: z.string().min(1).max(255),
  content: z.string().meta({ description: 'The bytes, base64' }),
  content_type: z.string().max(255).optional().meta({ description: 'MIME type; guessed from the filename when omitted' }),
  cid: z.string().min(1).max(255).optional().meta({ description: 'Content-ID for inline images: reference it as <img src="cid:ID">' }),
});

const sharedFields = {
  from: z.string().min(1).max(998).meta({ description: 'Sender; its domain must be a configured domain (or a subdomain of one)' }),
  reply_to: addresses.optional(),
  subject: z.string().max(2000).optional(),
  html: z.string().optional(),
  text: z.string().optional(),
  headers: z
    .record(z.string(), z.string())
    .optional()
    .meta({ description: 'Extra headers. No CR/LF; From, To, Cc, Bcc, Subject, Reply-To, Content-Type, MIME-Version and X-Relaygate-* are set through their own fields' }),
  attachments: z.array(attachmentSchema).max(100).optional(),
  tags: z
    .array(z.string().regex(TAG_RE, 'a tag is 1-128 of A-Z a-z 0-9 _ . : - (starting with a letter or digit)'))
    .max(MAX_TAGS)
    .optional()
    .meta({ description: `Up to ${MAX_TAGS} tags, for stats and filters` }),
  metadata: metadataSchema.optional(),
  track: trackSchema.optional(),
  send_at: z
    .string()
    .refine((v) => parseTime(v) !== null, 'expected an ISO 8601 date-time, e.g. 2026-12-01T09:00:00Z')
    .optional()
    .meta({ description: 'Scheduled delivery (ISO 8601). In the past = now; more than 30 days ahead is refused.' }),
};

export const sendSchema = z
  .object({
    ...sharedFields,
    to: addresses.optional(),
    cc: addresses.optional(),
    bcc: addresses.optional().meta({ description: 'Envelope-only recipients (no Bcc header is sent)' }),
  })
  .meta({ description: 'One message. At least one of to/cc/bcc and one of html/text are required.' });

export const batchSchema = z
  .object({
    ...sharedFields,
    recipients: z
      .array(
        z.object({
          to: z.string().min(1).max(998).meta({ description: 'One address' }),
          variables: z.record(z.string(), z.unknown()).optional().meta({ description: 'Values for {{name}} in subject, html and text' }),
          metadata: metadataSchema.optional().meta({ description: 'Merged over the shared metadata for this recipient' }),
        }),
      )
      .min(1)
      .max(MAX_BATCH),
  })
  .meta({
    description:
      'One message per recipient. {{name}} in subject/html/text is filled from the recipient\'s variables ' +
      '(mustache; HTML-escaped in html, as is in text, CR/LF removed in subject).',
  });

export type SendBody = z.output<typeof sendSchema>;
export type BatchBody = z.output<typeof batchSchema>;
export type SharedBody = Omit<SendBody, 'to' | 'cc' | 'bcc'>;

const statusEnum = z.enum(['queued', 'scheduled', 'deferred', 'delivered', 'bounced', 'expired', 'suppressed']);

export const listQuery = z.object({
  status: statusEnum.optional().meta({ description: 'Messages with at least one recipient in this state' }),
  tag: z.string().max(128).optional(),
  domain: z.string().max(253).optional().meta({ description: 'Sending domain' }),
  recipient: z.string().max(320).optional().meta({ description: 'Messages sent to this address' }),
  ...timeRange,
  ...pageParams,
});

// Response documents (openapi.json only).
export const acceptedDoc = z.object({
  id: z.string(),
  recipients: z.array(z.object({ email: z.string(), status: z.enum(['queued', 'scheduled', 'suppressed']) })),
});

export const batchDoc = z.object({
  batch_id: z.string(),
  ids: z.array(z.string()).meta({ description: 'Ids of the accepted messages, in recipient order' }),
  queued: z.number().int().meta({ description: 'How many messages were accepted' }),
  rejected: z.array(z.object({ index: z.number().int(), to: z.string(), error: z.string() })),
});

const recipientDoc = z.object({
  email: z.string(),
  status: statusEnum,
  attempts: z.number().int(),
  last_reply: z.string().nullable(),
  bounce_class: z.string().nullable(),
  updated_at: isoDoc,
  opened_at: isoDoc.nullable(),
  clicked_at: isoDoc.nullable(),
});

const eventDoc = z.object({
  type: z.enum(EVENT_TYPES),
  at: isoDoc,
  recipient: z.string().nullable(),
  url: z.string().nullable(),
  ip: z.string().nullable(),
  user_agent: z.string().nullable(),
  reply: z.string().nullable(),
  bounce_class: z.string().nullable(),
  is_bot: z.boolean().optional(),
  is_proxy: z.boolean().optional(),
  data: z.record(z.string(), z.unknown()),
});

const messageBase = {
  id: z.string(),
  from: z.string().meta({ description: 'Address of the From header' }),
  from_header: z.string().nullable(),
  subject: z.string().nullable(),
  domain: z.string(),
  tags: z.array(z.string()),
  metadata: z.record(z.string(), z.unknown()).nullable(),
  source: z.enum(['smtp', 'http']),
  created_at: isoDoc,
  send_at: isoDoc.nullable(),
};

export const messageDoc = z.object({ ...messageBase, message_id_header: z.string().nullable(), recipients: z.array(recipientDoc), events: z.array(eventDoc) });
export const messageSummaryDoc = z.object({ ...messageBase, recipients: z.array(z.object({ email: z.string(), status: statusEnum })) });
