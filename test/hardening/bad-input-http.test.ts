// Bad HTTP API bodies (issue 6, part 3): wrong types, huge arrays, deep JSON,
// invalid JSON and UTF-8, invalid emails, CR/LF in every header-bound field
// (from, names, subject, custom headers, attachment filenames). Each case
// asserts the exact status and JSON error code (and the field it names), that
// nothing was queued or created, and that the API still answers afterwards.
// More validation cases live in test/api/messages.test.ts and admin.test.ts.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createApiKey } from '../../src/auth/api-keys.js';
import { createDomainService } from '../../src/domains/service.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { apiClient, type Call } from '../api/client.js';
import { isTimeout, newTally, report } from './tally.js';

interface HttpCase {
  name: string;
  method?: string;
  path?: string;
  /** JSON-encoded; or `raw` sent as is. */
  body?: unknown;
  raw?: string | Buffer;
  status: number;
  code?: string;
  field?: string;
  /** Batch sends answer 202 with per-recipient refusals: how many. */
  rejected?: number;
}

const OK = { from: 'App <app@example.test>', to: ['x@dest.test'], subject: 'ok', text: 'body' };
const msg = (patch: Record<string, unknown>) => ({ ...OK, ...patch });
const batch = (patch: Record<string, unknown>) => ({ from: 'app@example.test', subject: 'hi {{name}}', text: 'x', recipients: [{ to: 'r@dest.test' }], ...patch });
const deepArray = (n: number) => '['.repeat(n) + ']'.repeat(n);
const deepObject = (n: number) => '{"a":'.repeat(n) + '1' + '}'.repeat(n);
const withRaw = (field: string, value: string) => `{"from":"app@example.test","to":["x@dest.test"],"text":"b","${field}":${value}}`;
const many = <T>(n: number, f: (i: number) => T): T[] => Array.from({ length: n }, (_, i) => f(i));

const inv = (field: string, status = 400): Pick<HttpCase, 'status' | 'code' | 'field'> => ({ status, code: 'invalid_request', field });
const addr = (field: string): Pick<HttpCase, 'status' | 'code' | 'field'> => ({ status: 400, code: 'invalid_address', field });
const hdr = (field: string): Pick<HttpCase, 'status' | 'code' | 'field'> => ({ status: 400, code: 'invalid_header', field });
const json: Pick<HttpCase, 'status' | 'code'> = { status: 400, code: 'invalid_json' };

const CASES: HttpCase[] = [
  // ---- wrong types
  { name: 'to is a number', body: msg({ to: 5 }), ...inv('to') },
  { name: 'to is null', body: msg({ to: null }), ...inv('to') },
  { name: 'to is an object', body: msg({ to: { a: 1 } }), ...inv('to') },
  { name: 'to holds a number', body: msg({ to: [5] }), ...inv('to') },
  { name: 'from is an array', body: msg({ from: ['app@example.test'] }), ...inv('from') },
  { name: 'from is a number', body: msg({ from: 5 }), ...inv('from') },
  { name: 'from is missing', body: msg({ from: undefined }), ...inv('from') },
  { name: 'from is empty', body: msg({ from: '' }), ...inv('from') },
  { name: 'subject is a number', body: msg({ subject: 42 }), ...inv('subject') },
  { name: 'subject is 2,001 characters', body: msg({ subject: 's'.repeat(2_001) }), ...inv('subject') },
  { name: 'text is a number', body: msg({ text: 5 }), ...inv('text') },
  { name: 'html is an object', body: msg({ text: undefined, html: {} }), ...inv('html') },
  { name: 'neither html nor text', body: msg({ text: undefined }), ...inv('html') },
  { name: 'headers is an array', body: msg({ headers: ['X-A: 1'] }), ...inv('headers') },
  { name: 'a header value is a number', body: msg({ headers: { 'X-A': 5 } }), ...inv('headers.X-A') },
  { name: 'a header value is null', body: msg({ headers: { 'X-A': null } }), ...inv('headers.X-A') },
  { name: 'attachments is an object', body: msg({ attachments: {} }), ...inv('attachments') },
  { name: 'an attachment is a number', body: msg({ attachments: [5] }), ...inv('attachments[0]') },
  { name: 'attachment content is a number', body: msg({ attachments: [{ filename: 'a', content: 5 }] }), ...inv('attachments[0].content') },
  { name: 'attachment filename is empty', body: msg({ attachments: [{ filename: '', content: 'YQ==' }] }), ...inv('attachments[0].filename') },
  { name: 'attachment filename is 256 characters', body: msg({ attachments: [{ filename: 'f'.repeat(256), content: 'YQ==' }] }), ...inv('attachments[0].filename') },
  { name: 'tags is a string', body: msg({ tags: 'a' }), ...inv('tags') },
  { name: 'a tag is a number', body: msg({ tags: [5] }), ...inv('tags[0]') },
  { name: 'metadata is an array', body: msg({ metadata: [1] }), ...inv('metadata') },
  { name: 'metadata is a string', body: msg({ metadata: 'x' }), ...inv('metadata') },
  { name: 'metadata over 2 KiB', body: msg({ metadata: { a: 'x'.repeat(5_000) } }), ...inv('metadata') },
  { name: 'track is a string', body: msg({ track: 'yes' }), ...inv('track') },
  { name: 'track.opens is a string', body: msg({ track: { opens: 'yes' } }), ...inv('track') },
  { name: 'send_at is a number', body: msg({ send_at: 12 }), ...inv('send_at') },
  { name: 'send_at is not a date', body: msg({ send_at: 'soon' }), ...inv('send_at') },
  { name: 'cc is a number', body: msg({ cc: 5 }), ...inv('cc') },
  { name: 'bcc is true', body: msg({ bcc: true }), ...inv('bcc') },
  { name: 'reply_to is a number', body: msg({ reply_to: 5 }), ...inv('reply_to') },
  { name: 'the body is an array', raw: '[]', ...inv('(body)') },
  { name: 'the body is a string', raw: '"x"', ...inv('(body)') },
  { name: 'the body is null', raw: 'null', ...inv('(body)') },
  { name: 'the body is a number out of range', raw: '1e999', ...inv('(body)') },
  { name: 'the body is true', raw: 'true', ...inv('(body)') },

  // ---- huge arrays
  { name: '100,000 recipients in to', body: msg({ to: many(100_000, (i) => `r${i}@dest.test`) }), ...inv('to') },
  { name: '101 recipients (over smtp.maxRecipients)', body: msg({ to: many(101, (i) => `r${i}@dest.test`) }), status: 400, code: 'too_many_recipients', field: 'to' },
  { name: '2,000 addresses in cc', body: msg({ cc: many(2_000, (i) => `c${i}@dest.test`) }), ...inv('cc') },
  { name: '101 attachments', body: msg({ attachments: many(101, () => ({ filename: 'a', content: 'YQ==' })) }), ...inv('attachments') },
  { name: '100,000 attachments', body: msg({ attachments: many(100_000, () => ({ filename: 'a', content: 'YQ==' })) }), ...inv('attachments') },
  { name: '11 tags', body: msg({ tags: many(11, (i) => `t${i}`) }), ...inv('tags') },
  { name: '100,000 tags', body: msg({ tags: many(100_000, (i) => `t${i}`) }), ...inv('tags') },
  { name: '1,001 batch recipients', path: '/messages/batch', body: batch({ recipients: many(1_001, (i) => ({ to: `r${i}@dest.test` })) }), ...inv('recipients') },
  { name: 'an empty batch', path: '/messages/batch', body: batch({ recipients: [] }), ...inv('recipients') },
  { name: 'a body that is a million-element array', raw: `[${'0,'.repeat(999_999)}0]`, ...inv('(body)') },
  { name: '20,000 custom headers (over the header line limit)', body: msg({ headers: Object.fromEntries(many(20_000, (i) => [`X-H${i}`, 'v'] as const)) }), status: 400, code: 'header_too_large' },

  // ---- deep JSON
  { name: 'the body nested 100,000 arrays deep', raw: deepArray(100_000), ...json },
  { name: 'metadata nested 10,000 objects deep', raw: withRaw('metadata', deepObject(10_000)), ...json },
  { name: 'metadata nested 65 deep (one past the limit)', raw: withRaw('metadata', deepObject(64)), ...json },
  { name: 'metadata arrays nested 10,000 deep', raw: withRaw('metadata', `{"a":${deepArray(10_000)}}`), ...json },
  { name: 'headers nested 50,000 deep', raw: withRaw('headers', deepObject(50_000)), ...json },
  { name: 'batch variables nested 50,000 deep', path: '/messages/batch', raw: `{"from":"app@example.test","text":"{{a}}","recipients":[{"to":"x@dest.test","variables":{"a":${deepObject(50_000)}}}]}`, ...json },
  { name: 'brackets inside strings do not count as depth', raw: `{"from":"app@example.test","to":["x@dest.test"],"text":"${'['.repeat(100_000)}\\"{{{","subject":42}`, ...inv('subject') },

  // ---- invalid JSON and encodings
  { name: 'malformed JSON', raw: '{nope', ...json },
  { name: 'an empty body', raw: '', ...json },
  { name: 'a body of spaces', raw: '   \n ', ...json },
  { name: 'a trailing comma', raw: '{"from":"app@example.test",}', ...json },
  { name: 'a NaN literal', raw: '{"a":NaN}', ...json },
  { name: 'single quotes', raw: "{'from':'app@example.test'}", ...json },
  { name: 'a comment', raw: '{/* c */"from":"app@example.test"}', ...json },
  { name: 'invalid UTF-8 bytes inside a string', raw: Buffer.concat([Buffer.from('{"from":"app@example.test","to":["x@dest.test"],"text":"'), Buffer.from([0xff, 0xfe]), Buffer.from('"}')]), ...json },
  { name: 'a body in UTF-16', raw: Buffer.from(JSON.stringify(OK), 'utf16le'), ...json },
  { name: 'a truncated document', raw: JSON.stringify(OK).slice(0, 40), ...json },

  // ---- invalid emails
  { name: 'from is not an address', body: msg({ from: 'not-an-email' }), ...addr('from') },
  { name: 'from with two @', body: msg({ from: 'a@b@example.test' }), ...addr('from') },
  { name: 'two from addresses', body: msg({ from: 'a@example.test, b@example.test' }), status: 400, code: 'invalid_address', field: 'from' },
  { name: 'from an IP literal', body: msg({ from: 'a@[127.0.0.1]' }), ...addr('from') },
  { name: 'from a foreign domain', body: msg({ from: 'boss@other.test' }), status: 403, code: 'sender_not_allowed', field: 'from' },
  { name: 'from a Cyrillic look-alike domain (exаmple.test)', body: msg({ from: 'app@ex\u0430mple.test' }), status: 403, code: 'sender_not_allowed', field: 'from' },
  { name: 'to @@', body: msg({ to: ['@@'] }), ...addr('to[0]') },
  { name: 'to an empty string', body: msg({ to: '' }), ...addr('to') },
  { name: 'to an empty list', body: msg({ to: [] }), ...inv('to') },
  { name: 'to a %-hack address', body: msg({ to: ['a%other.test@dest.test'] }), ...addr('to[0]') },
  { name: 'to a bang path', body: msg({ to: ['other.test!a@dest.test'] }), ...addr('to[0]') },
  { name: 'to a quoted local part', body: msg({ to: ['"a b"@dest.test'] }), ...addr('to[0]') },
  { name: 'to a domain with a trailing dot', body: msg({ to: ['a@dest.test.'] }), ...addr('to[0]') },
  { name: 'to a single-label host', body: msg({ to: ['a@localhost'] }), ...addr('to[0]') },
  { name: 'to a label starting with a hyphen', body: msg({ to: ['a@-dest.test'] }), ...addr('to[0]') },
  { name: 'to an empty label', body: msg({ to: ['a@dest..test'] }), ...addr('to[0]') },
  { name: 'to a 65-character local part', body: msg({ to: [`${'l'.repeat(65)}@dest.test`] }), ...addr('to[0]') },
  { name: 'to an address holding U+FFFD (undecodable bytes)', body: msg({ to: ['a\ufffd@dest.test'] }), ...addr('to[0]') },
  { name: 'to an IP literal', body: msg({ to: ['a@[127.0.0.1]'] }), ...addr('to[0]') },
  { name: 'an invalid cc', body: msg({ cc: ['nope'] }), ...addr('cc[0]') },
  { name: 'an invalid bcc', body: msg({ bcc: 'nope' }), ...addr('bcc') },
  { name: 'an invalid reply_to', body: msg({ reply_to: 'nope' }), ...addr('reply_to') },
  { name: 'a batch recipient that is not an address', path: '/messages/batch', body: batch({ recipients: [{ to: 'not an address' }] }), status: 202, rejected: 1 },

  // ---- CR/LF (and NUL) in header-bound fields
  { name: 'CRLF in from', body: msg({ from: 'app@example.test\r\nBcc: victim@evil.test' }), ...inv('from') },
  { name: 'CRLF in the from display name', body: msg({ from: '"Evil\r\nBcc: victim@evil.test" <app@example.test>' }), ...inv('from') },
  { name: 'LF in the from display name', body: msg({ from: 'Evil\nX-A: 1 <app@example.test>' }), ...inv('from') },
  { name: 'CR alone in from', body: msg({ from: 'app@example.test\r' }), ...inv('from') },
  { name: 'NUL in from', body: msg({ from: 'app\0@example.test' }), ...inv('from') },
  { name: 'CRLF in to', body: msg({ to: ['x@dest.test\r\nX-Injected: 1'] }), ...inv('to[0]') },
  { name: 'CRLF in a to display name', body: msg({ to: ['"A\r\nB" <x@dest.test>'] }), ...inv('to[0]') },
  { name: 'CR in cc', body: msg({ cc: ['x\r@dest.test'] }), ...inv('cc[0]') },
  { name: 'LF in bcc', body: msg({ bcc: 'x@dest.test\n' }), ...inv('bcc') },
  { name: 'CRLF in reply_to', body: msg({ reply_to: 'r@example.test\r\nX: y' }), ...inv('reply_to') },
  { name: 'CRLF in subject', body: msg({ subject: 'hi\r\nBcc: victim@evil.test' }), ...inv('subject') },
  { name: 'LF in subject', body: msg({ subject: 'hi\nBcc: victim@evil.test' }), ...inv('subject') },
  { name: 'CR in subject', body: msg({ subject: 'a\rb' }), ...inv('subject') },
  { name: 'NUL in subject', body: msg({ subject: 'a\0b' }), ...inv('subject') },
  { name: 'CRLF in a custom header value', body: msg({ headers: { 'X-Test': 'a\r\nBcc: victim@evil.test' } }), ...inv('headers.X-Test') },
  { name: 'LF in a custom header value', body: msg({ headers: { 'X-Test': 'a\nb' } }), ...inv('headers.X-Test') },
  { name: 'CR in a custom header value', body: msg({ headers: { 'X-Test': 'a\rb' } }), ...inv('headers.X-Test') },
  { name: 'NUL in a custom header value', body: msg({ headers: { 'X-Test': 'a\0b' } }), ...inv('headers.X-Test') },
  { name: 'CRLF in a custom header name', body: msg({ headers: { 'X-A\r\nBcc': 'x' } }), ...hdr('headers.X-A\r\nBcc') },
  { name: 'a colon in a custom header name', body: msg({ headers: { 'X-A:B': 'x' } }), ...hdr('headers.X-A:B') },
  { name: 'a space in a custom header name', body: msg({ headers: { 'X Bad': 'x' } }), ...hdr('headers.X Bad') },
  { name: 'an empty custom header name', body: msg({ headers: { '': 'x' } }), ...hdr('headers.') },
  { name: 'a non-ASCII custom header name', body: msg({ headers: { 'X-Ünï': 'x' } }), ...hdr('headers.X-Ünï') },
  { name: 'Bcc as a custom header', body: msg({ headers: { Bcc: 'victim@evil.test' } }), ...hdr('headers.Bcc') },
  { name: 'From as a custom header', body: msg({ headers: { from: 'boss@other.test' } }), ...hdr('headers.from') },
  { name: 'Content-Type as a custom header', body: msg({ headers: { 'Content-Type': 'text/html' } }), ...hdr('headers.Content-Type') },
  { name: 'DKIM-Signature as a custom header', body: msg({ headers: { 'DKIM-Signature': 'v=1' } }), ...hdr('headers.DKIM-Signature') },
  { name: 'an X-Relaygate control header as a custom header', body: msg({ headers: { 'X-Relaygate-Track': 'none' } }), ...hdr('headers.X-Relaygate-Track') },
  { name: 'CRLF in a Message-ID custom header', body: msg({ headers: { 'Message-ID': '<a@b>\r\nBcc: x@y.test' } }), ...inv('headers.Message-ID') },
  { name: 'CRLF in an attachment filename', body: msg({ attachments: [{ filename: 'a.txt\r\nContent-Type: text/html', content: 'YQ==' }] }), ...inv('attachments[0].filename') },
  { name: 'LF in an attachment filename', body: msg({ attachments: [{ filename: 'a\nb.txt', content: 'YQ==' }] }), ...inv('attachments[0].filename') },
  { name: 'CR in an attachment filename', body: msg({ attachments: [{ filename: 'a\rb.txt', content: 'YQ==' }] }), ...inv('attachments[0].filename') },
  { name: 'NUL in an attachment filename', body: msg({ attachments: [{ filename: 'a\0.txt', content: 'YQ==' }] }), ...inv('attachments[0].filename') },
  { name: 'CRLF in an attachment content_type', body: msg({ attachments: [{ filename: 'a', content: 'YQ==', content_type: 'text/plain\r\nX: y' }] }), ...inv('attachments[0].content_type') },
  { name: 'an attachment content_type that is not a MIME type', body: msg({ attachments: [{ filename: 'a', content: 'YQ==', content_type: 'nope' }] }), ...inv('attachments[0].content_type') },
  { name: 'CRLF in an attachment cid', body: msg({ attachments: [{ filename: 'a', content: 'YQ==', cid: 'x\r\ny' }] }), ...inv('attachments[0].cid') },
  { name: 'angle brackets in an attachment cid', body: msg({ attachments: [{ filename: 'a', content: 'YQ==', cid: '<x>' }] }), ...inv('attachments[0].cid') },
  { name: 'attachment content that is not base64', body: msg({ attachments: [{ filename: 'a', content: '!!!' }] }), ...inv('attachments[0].content') },
  { name: 'attachment content of impossible base64 length', body: msg({ attachments: [{ filename: 'a', content: 'YQ=YQ' }] }), ...inv('attachments[0].content') },
  { name: 'CRLF in a tag', body: msg({ tags: ['a\r\nb'] }), ...inv('tags[0]') },
  { name: 'CRLF in a batch subject', path: '/messages/batch', body: batch({ subject: 'a\r\nb' }), ...inv('subject') },
  { name: 'CRLF in a batch recipient', path: '/messages/batch', body: batch({ recipients: [{ to: 'a@dest.test\r\nBcc: v@evil.test' }] }), status: 202, rejected: 1 },
  { name: 'an unparseable batch template', path: '/messages/batch', body: batch({ text: 'Hi {{#open}}' }), status: 400, code: 'invalid_template', field: 'text' },

  // ---- the other write routes
  { name: 'suppression: CRLF in the email', path: '/suppressions', body: { email: 'a@b.test\r\nx' }, status: 400, code: 'invalid_address', field: 'email' },
  { name: 'suppression: email is a number', path: '/suppressions', body: { email: 5 }, ...inv('email') },
  { name: 'suppression: no email', path: '/suppressions', body: {}, ...inv('email') },
  { name: 'webhook: CRLF in the URL', path: '/webhooks', body: { url: 'http://127.0.0.1/\r\nX: y' }, status: 400, code: 'invalid_webhook_url', field: 'url' },
  { name: 'webhook: a javascript: URL', path: '/webhooks', body: { url: 'javascript:alert(1)' }, status: 400, code: 'invalid_webhook_url', field: 'url' },
  { name: 'webhook: events is a string', path: '/webhooks', body: { url: 'http://127.0.0.1/', events: 'all' }, ...inv('events') },
  { name: 'webhook: an unknown event', path: '/webhooks', body: { url: 'http://127.0.0.1/', events: ['exploded'] }, ...inv('events[0]') },
  { name: 'webhook: secret is a number', path: '/webhooks', body: { url: 'http://127.0.0.1/', secret: 5 }, ...inv('secret') },
  { name: 'domain: CRLF in the name', path: '/domains', body: { domain: 'a.test\r\nb' }, status: 400, code: 'invalid_domain' },
  { name: 'domain: a tab in the name', path: '/domains', body: { domain: 'exa\tmple2.test' }, status: 400, code: 'invalid_domain' },
  { name: 'domain: not a domain', path: '/domains', body: { domain: 'not a domain' }, status: 400, code: 'invalid_domain' },
  { name: 'domain: name is a number', path: '/domains', body: { domain: 5 }, ...inv('domain') },
  { name: 'domain: an unknown algorithm', path: '/domains', body: { domain: 'c.test', algorithm: 'dsa' }, ...inv('algorithm') },
  { name: 'domain: CRLF in the selector', path: '/domains', body: { domain: 'c.test', selector: 'rg1\r\nx' }, status: 400, code: 'invalid_selector' },
  { name: 'domain: CRLF in the tracking host', path: '/domains', body: { domain: 'c.test', tracking_host: 't.c.test\r\nx' }, status: 400, code: 'invalid_tracking_host' },
  { name: 'domain: CRLF in a tracking host update', method: 'PATCH', path: '/domains/example.test', body: { tracking_host: 't.example.test\r\nx' }, status: 400, code: 'invalid_tracking_host' },
  { name: 'API key: a 100,000-character name', path: '/api-keys', body: { name: 'x'.repeat(100_000), scopes: ['read'] }, ...inv('name') },
  { name: 'API key: scopes is a string', path: '/api-keys', body: { name: 'x', scopes: 'admin' }, ...inv('scopes') },
  { name: 'API key: an unknown scope', path: '/api-keys', body: { name: 'x', scopes: ['root'] }, ...inv('scopes[0]') },

  // ---- query strings
  { name: 'messages: page=%ZZ', method: 'GET', path: '/messages?page=%ZZ', ...inv('page') },
  { name: 'messages: since=%00', method: 'GET', path: '/messages?since=%00', ...inv('since') },
  { name: 'messages: a 21-digit page', method: 'GET', path: '/messages?page=999999999999999999999', ...inv('page') },
  { name: 'messages: per_page=1001', method: 'GET', path: '/messages?per_page=1001', ...inv('per_page') },
  { name: 'stats: interval=minute', method: 'GET', path: '/stats?interval=minute', ...inv('interval') },
  { name: 'stats: since after until', method: 'GET', path: '/stats?since=2026-02-01&until=2026-01-01', ...inv('since') },
  { name: 'bounces: format=xml', method: 'GET', path: '/bounces?format=xml', ...inv('format') },
  { name: 'bounces: an unknown class', method: 'GET', path: '/bounces?class=nonsense', ...inv('class') },
];

let t: TestGateway;
let api: Call;
let key = '';
const tally = newTally();
const startedAt = Date.now();

const counts = () => ({
  messages: t.gw.store.queue.listMessages({ limit: 1, offset: 0 }).total,
  domains: t.gw.store.tenants.domains().length,
  webhooks: t.gw.store.webhooks.list().length,
});

before(async () => {
  t = await startTestGateway({ http: { rateLimit: 100_000 } });
  await createDomainService({ config: t.config, store: t.gw.store }).add('example.test', { algorithm: 'ed25519' });
  api = apiClient(t.httpUrl);
  key = createApiKey(t.gw.store, 'bad-input', ['admin']).key;
});
after(async () => {
  await t?.stop();
  report('bad input: HTTP API', tally, startedAt);
});

describe('bad API bodies get a JSON 4xx and change nothing', () => {
  test('the table has no duplicate names', () => assert.equal(new Set(CASES.map((c) => c.name)).size, CASES.length));
  for (const c of CASES) {
    test(c.name, async () => {
      tally.tried++;
      const before = counts();
      const method = c.method ?? 'POST';
      const path = c.path ?? '/messages';
      let r: { status: number; json: any; text: string };
      try {
        if (Buffer.isBuffer(c.raw)) {
          const res = await fetch(`${t.httpUrl}/api/v1${path}`, {
            method,
            headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
            body: c.raw,
            signal: AbortSignal.timeout(15_000),
          });
          const text = await res.text();
          r = { status: res.status, text, json: JSON.parse(text) };
        } else {
          r = await api(method, path, { key, ...(c.raw !== undefined ? { raw: c.raw } : c.body !== undefined ? { body: c.body } : {}) });
        }
      } catch (e) {
        if (isTimeout(e)) tally.hangs++;
        tally.failures.push(`${c.name}: ${(e as Error).message}`);
        throw e;
      }
      try {
        assert.equal(r.status, c.status, r.text.slice(0, 300));
        if (c.code) {
          assert.equal(r.json?.error?.code, c.code, r.text.slice(0, 300));
          assert.equal(typeof r.json.error.message, 'string');
        }
        if (c.field !== undefined) assert.equal(r.json.error.field, c.field, r.text.slice(0, 300));
        if (c.rejected !== undefined) {
          assert.equal(r.json.queued, 0);
          assert.equal(r.json.rejected.length, c.rejected);
        }
        assert.deepEqual(counts(), before, 'nothing queued or created');
      } catch (e) {
        tally.failures.push(`${c.name}: ${(e as Error).message}`);
        throw e;
      }
      try {
        const health = await fetch(`${t.httpUrl}/healthz`, { signal: AbortSignal.timeout(5_000) });
        assert.equal(health.status, 200);
      } catch (e) {
        tally.crashes++;
        throw e;
      }
    });
  }

  test('after all of them a valid message is still accepted', async () => {
    const r = await api('POST', '/messages', { key, body: OK });
    assert.equal(r.status, 202, r.text);
  });
});
