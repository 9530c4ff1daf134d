// X-Relaygate-* control headers (SPEC §4): read once, validated, and stripped
// before signing so they never reach the recipient.
import { decodeMimeWords } from '../util/mime-words.js';
import { GatewayError } from '../errors.js';
import type { HeaderField } from './headers.js';

export type TrackFlag = 'opens' | 'clicks' | 'unsubscribe';

export interface Controls {
  /** null = not given (use config/domain defaults); otherwise the explicit set. */
  track: Set<TrackFlag> | null;
  tags: string[];
  metadata: Record<string, unknown> | null;
  sendAt: number | null;
}

export const CONTROL_PREFIX = 'x-relaygate-';
const TRACK_FLAGS: TrackFlag[] = ['opens', 'clicks', 'unsubscribe'];
export const TAG_RE = /^[A-Za-z0-9][A-Za-z0-9_.:\-]{0,127}$/;
export const MAX_TAGS = 10;
export const MAX_METADATA_BYTES = 2048;
/** Scheduling further ahead than this is almost always a mistake (wrong year, ms vs s). */
export const MAX_SCHEDULE_AHEAD_MS = 30 * 86_400_000;

const bad = (header: string, why: string) =>
  new GatewayError('invalid_control_header', `Invalid ${header} header: ${why}`, {
    smtp: 550,
    enhanced: '5.6.0',
    http: 400,
  });

export function parseTrack(value: string, header = 'X-Relaygate-Track'): Set<TrackFlag> {
  const v = value.trim().toLowerCase();
  if (v === 'none') return new Set();
  const items = v.split(',').map((s) => s.trim());
  const out = new Set<TrackFlag>();
  for (const item of items) {
    if (!TRACK_FLAGS.includes(item as TrackFlag)) {
      throw bad(header, `"${item}" is not one of none, opens, clicks, unsubscribe`);
    }
    out.add(item as TrackFlag);
  }
  return out;
}

export function validateTags(tags: string[], header = 'X-Relaygate-Tag'): string[] {
  if (tags.length > MAX_TAGS) throw bad(header, `at most ${MAX_TAGS} tags`);
  for (const t of tags) {
    if (!TAG_RE.test(t)) throw bad(header, `tag "${t.slice(0, 40)}" must be 1-128 of A-Z a-z 0-9 _ . : -`);
  }
  return [...new Set(tags)];
}

export function validateMetadata(value: unknown, header = 'X-Relaygate-Meta'): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw bad(header, 'must be a JSON object');
  if (Buffer.byteLength(JSON.stringify(value)) > MAX_METADATA_BYTES) {
    throw bad(header, `must be at most ${MAX_METADATA_BYTES} bytes`);
  }
  return value as Record<string, unknown>;
}

/** Returns the send time in ms, or null for "now" (a time in the past means now). */
export function parseSendAt(value: string, now: number, header = 'X-Relaygate-Send-At'): number | null {
  const v = value.trim();
  // ISO 8601 with a date and, when a time is given, an explicit zone; RFC 5322 dates also accepted.
  const iso = /^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2}))?$/i;
  const rfc5322 = /^([A-Za-z]{3},\s*)?\d{1,2}\s+[A-Za-z]{3}\s+\d{4}\s+\d{2}:\d{2}(:\d{2})?\s+([+-]\d{4}|GMT|UTC|Z)$/;
  if (!iso.test(v) && !rfc5322.test(v)) throw bad(header, `"${v.slice(0, 60)}" is not an ISO 8601 date-time`);
  const t = Date.parse(v);
  if (!Number.isFinite(t)) throw bad(header, `"${v.slice(0, 60)}" is not a valid date`);
  if (t - now > MAX_SCHEDULE_AHEAD_MS) throw bad(header, 'must be at most 30 days ahead');
  return t > now ? t : null;
}

/**
 * Mail libraries encode any header value with characters such as `"` or `{` as
 * RFC 2047 encoded-words (nodemailer turns `{"user_id":"42"}` into
 * `=?UTF-8?Q?=7B=22user=5Fid...?=`), so a control header is decoded before it is
 * parsed; a charset we cannot decode is a malformed header, not raw text.
 */
export function decodeEncodedWords(value: string, header: string): string {
  return decodeMimeWords(value, (cs) => {
    throw bad(header, `unknown charset "${cs.slice(0, 40)}" in an encoded-word`);
  });
}

/** Reads and validates every control header; throws 550 5.6.0 naming the bad one. */
export function readControls(fields: HeaderField[], now: number): Controls {
  const controls: Controls = { track: null, tags: [], metadata: null, sendAt: null };
  for (const field of fields) {
    if (!field.key.startsWith(CONTROL_PREFIX)) continue;
    const f = { ...field, value: decodeEncodedWords(field.value, field.name) };
    switch (f.key) {
      case 'x-relaygate-track':
        controls.track = parseTrack(f.value, f.name);
        break;
      case 'x-relaygate-tag': {
        const tags = f.value
          .split(',')
          .map((s) => s.trim())
          .filter(Boolean);
        if (!tags.length) throw bad(f.name, 'empty');
        controls.tags = validateTags([...controls.tags, ...tags], f.name);
        break;
      }
      case 'x-relaygate-meta': {
        if (Buffer.byteLength(f.value) > MAX_METADATA_BYTES) throw bad(f.name, `must be at most ${MAX_METADATA_BYTES} bytes`);
        let parsed: unknown;
        try {
          parsed = JSON.parse(f.value);
        } catch {
          throw bad(f.name, 'not valid JSON');
        }
        controls.metadata = validateMetadata(parsed, f.name);
        break;
      }
      case 'x-relaygate-send-at':
        controls.sendAt = parseSendAt(f.value, now, f.name);
        break;
      default:
        throw bad(f.name, 'unknown control header');
    }
  }
  return controls;
}

export const isControlHeader = (f: HeaderField) => f.key.startsWith(CONTROL_PREFIX);
