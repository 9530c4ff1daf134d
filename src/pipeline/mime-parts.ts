// Rewrites only the decoded text/html nodes of a message and splices them back, so every other
// byte — other parts, headers, boundaries, preamble/epilogue — reaches the recipient unchanged
// (SPEC §5: "non-HTML bodies byte for byte"; the ZoneMTA approach from STYLE.md).
//
// The walk works on offsets into the original Buffer and never re-serializes a MIME tree.
import iconv from 'iconv-lite';

/**
 * `name` as written; `value` unfolded (RFC 5322 §2.2.3), leading whitespace removed, UTF-8
 * (RFC 6532); `raw` the original bytes with folds and final CRLF, at [start, end) of the input.
 */
export interface HeaderField {
  name: string;
  value: string;
  raw: Buffer;
  start: number;
  end: number;
}

export interface HtmlPartContext {
  /** Declared charset (lower-case), else the `<meta charset>` found, else `utf-8`. */
  charset: string;
  /**
   * true: the html string holds the raw bytes, one char per byte (latin1), so the part
   * round-trips byte for byte; decode URLs with `charset`. false: a real Unicode string
   * (charsets that are not ASCII-compatible: UTF-16/32, UTF-7).
   */
  binary: boolean;
  /** `text/html`, or `text/plain` when plain parts were asked for. */
  type: string;
}

export type HtmlRewriter = (html: string, ctx: HtmlPartContext) => string;

const CRLF = Buffer.from('\r\n');
const CRLFCRLF = Buffer.from('\r\n\r\n');
const MAX_DEPTH = 32; // deeper nesting is no real mail; leave it alone rather than recurse
const MAX_LINE = 998; // RFC 5322 §2.1.1, excluding CRLF
const QP_CTE_LINE = 'Content-Transfer-Encoding: quoted-printable\r\n';

/** Where the header block of the entity in [start, end) ends and its body begins. */
function locateBody(
  buf: Buffer,
  start: number,
  end: number,
): { headerEnd: number; bodyStart: number } {
  if (end - start >= 2 && buf[start] === 13 && buf[start + 1] === 10) {
    return { headerEnd: start, bodyStart: start + 2 };
  }
  const i = buf.subarray(start, end).indexOf(CRLFCRLF);
  if (i < 0) return { headerEnd: end, bodyStart: end };
  const at = start + i;
  if (at + 4 > end) return { headerEnd: Math.min(at + 2, end), bodyStart: end };
  return { headerEnd: at + 2, bodyStart: at + 4 };
}

/** header: up to and including the last header line's CRLF; body: after the blank line. */
export function splitHeaderBody(message: Buffer): {
  header: Buffer;
  body: Buffer;
  bodyOffset: number;
} {
  const { headerEnd, bodyStart } = locateBody(message, 0, message.length);
  const header = message.subarray(0, headerEnd);
  return { header, body: message.subarray(bodyStart), bodyOffset: bodyStart };
}

function parseHeaderRegion(buf: Buffer, start: number, end: number): HeaderField[] {
  const fields: HeaderField[] = [];
  let pos = start;
  while (pos < end) {
    const nl = buf.indexOf(CRLF, pos);
    const lineEnd = nl < 0 || nl + 2 > end ? end : nl + 2;
    const isContinuation = buf[pos] === 32 || buf[pos] === 9;
    const last = fields[fields.length - 1];
    if (isContinuation && last && last.end === pos) {
      last.end = lineEnd;
    } else if (!isContinuation) {
      const line = buf.subarray(pos, lineEnd);
      const colon = line.indexOf(58);
      // A line without a colon is not a field (RFC 5322 §2.2); skip it rather than guess.
      if (colon > 0) fields.push({ name: '', value: '', raw: line, start: pos, end: lineEnd });
    }
    pos = lineEnd;
  }
  for (const f of fields) {
    f.raw = buf.subarray(f.start, f.end);
    const text = f.raw.toString('utf8');
    const colon = text.indexOf(':');
    f.name = text.slice(0, colon).trim();
    f.value = text
      .slice(colon + 1)
      .replace(/\r\n(?=[ \t])/g, '')
      .replace(/\r\n$/, '')
      .replace(/^[ \t]+/, '');
  }
  return fields;
}

export function parseHeaders(header: Buffer): HeaderField[] {
  return parseHeaderRegion(header, 0, header.length);
}

function fieldValue(fields: HeaderField[], name: string): string | undefined {
  return fields.find((f) => f.name.toLowerCase() === name)?.value;
}

/** `type/subtype; a=b; c="d"` → lower-cased type and params (RFC 2045 §5.1, RFC 2231 `*`). */
export function parseStructured(value: string): { type: string; params: Map<string, string> } {
  const semi = value.indexOf(';');
  const type = (semi < 0 ? value : value.slice(0, semi)).trim().toLowerCase();
  const params = new Map<string, string>();
  let i = semi < 0 ? value.length : semi + 1;
  while (i < value.length) {
    while (i < value.length && /[\s;]/.test(value[i])) i++;
    const eq = value.indexOf('=', i);
    if (eq < 0) break;
    const junkEnd = value.indexOf(';', i);
    if (junkEnd >= 0 && junkEnd < eq) {
      i = junkEnd + 1; // a parameter without `=`: skip it
      continue;
    }
    let name = value.slice(i, eq).trim().toLowerCase();
    i = eq + 1;
    while (i < value.length && /\s/.test(value[i])) i++;
    let v = '';
    if (value[i] === '"') {
      i++;
      while (i < value.length && value[i] !== '"') {
        if (value[i] === '\\' && i + 1 < value.length) i++;
        v += value[i++];
      }
      i++;
    } else {
      const next = value.indexOf(';', i);
      v = value.slice(i, next < 0 ? value.length : next).trim();
      i = next < 0 ? value.length : next;
    }
    if (name.endsWith('*') && !name.includes('*0')) {
      name = name.slice(0, -1);
      const m = /^[^']*'[^']*'(.*)$/.exec(v);
      if (m) {
        try {
          v = decodeURIComponent(m[1]);
        } catch {
          v = m[1];
        }
      }
    }
    if (!params.has(name)) params.set(name, v);
  }
  return { type, params };
}

/** Content ranges of the body parts of a multipart body (RFC 2046 §5.1.1). */
function splitMultipart(
  buf: Buffer,
  start: number,
  end: number,
  boundary: string,
): [number, number][] {
  const delim = Buffer.from(`--${boundary}`, 'utf8');
  const lines: { lineStart: number; contentStart: number; close: boolean }[] = [];
  let pos = start;
  while (pos < end) {
    const i = buf.indexOf(delim, pos);
    if (i < 0 || i + delim.length > end) break;
    pos = i + 1;
    // The CRLF before a delimiter belongs to the delimiter, and it must start a line.
    if (i !== start && !(i - start >= 2 && buf[i - 2] === 13 && buf[i - 1] === 10)) continue;
    let j = i + delim.length;
    const close = j + 2 <= end && buf[j] === 45 && buf[j + 1] === 45;
    if (close) j += 2;
    while (j < end && (buf[j] === 32 || buf[j] === 9)) j++;
    // Anything else after `--boundary` means a longer, different boundary (a nested part's).
    if (j < end && !(j + 2 <= end && buf[j] === 13 && buf[j + 1] === 10)) continue;
    lines.push({ lineStart: i === start ? i : i - 2, contentStart: Math.min(j + 2, end), close });
    if (close) break;
  }
  const parts: [number, number][] = [];
  for (let k = 0; k < lines.length && !lines[k].close; k++) {
    const ps = lines[k].contentStart;
    // A missing close delimiter: the last part runs to the end of its parent.
    const pe = k + 1 < lines.length ? Math.max(ps, lines[k + 1].lineStart) : end;
    if (pe > ps) parts.push([ps, pe]);
  }
  return parts;
}

interface HtmlNode {
  headerEnd: number;
  bodyStart: number;
  end: number;
  fields: HeaderField[];
  charset?: string;
  type: string;
}

function collectHtmlNodes(
  buf: Buffer,
  start: number,
  end: number,
  depth: number,
  out: HtmlNode[],
  types: readonly string[],
): void {
  const { headerEnd, bodyStart } = locateBody(buf, start, end);
  const fields = parseHeaderRegion(buf, start, headerEnd);
  const ct = parseStructured(fieldValue(fields, 'content-type') ?? 'text/plain');
  if (ct.type.startsWith('multipart/')) {
    const boundary = ct.params.get('boundary');
    if (!boundary || depth >= MAX_DEPTH) return;
    for (const [ps, pe] of splitMultipart(buf, bodyStart, end, boundary)) {
      collectHtmlNodes(buf, ps, pe, depth + 1, out, types);
    }
    return;
  }
  // message/rfc822 and friends are someone else's message: never descended.
  if (!types.includes(ct.type) || bodyStart >= end) return;
  const disposition = parseStructured(fieldValue(fields, 'content-disposition') ?? '');
  if (disposition.type === 'attachment') return;
  // An HTML file attached without a disposition still carries a name; it is a file, not the body.
  if (!disposition.type && ct.params.has('name')) return;
  out.push({ headerEnd, bodyStart, end, fields, charset: ct.params.get('charset'), type: ct.type });
}

export function qpDecode(body: Buffer): Buffer {
  const out = Buffer.alloc(body.length);
  let o = 0;
  let pos = 0;
  while (pos <= body.length) {
    const nl = body.indexOf(CRLF, pos);
    const hasBreak = nl >= 0;
    let lineEnd = hasBreak ? nl : body.length;
    // Trailing whitespace was added in transport and must be deleted (RFC 2045 §6.7 rule 3).
    while (lineEnd > pos && (body[lineEnd - 1] === 32 || body[lineEnd - 1] === 9)) lineEnd--;
    const soft = lineEnd > pos && body[lineEnd - 1] === 61;
    if (soft) lineEnd--;
    for (let i = pos; i < lineEnd; i++) {
      const c = body[i];
      if (c === 61 && i + 2 < lineEnd && isHex(body[i + 1]) && isHex(body[i + 2])) {
        out[o++] = parseInt(String.fromCharCode(body[i + 1], body[i + 2]), 16);
        i += 2;
      } else {
        out[o++] = c;
      }
    }
    if (!hasBreak) break;
    if (!soft) {
      out[o++] = 13;
      out[o++] = 10;
    }
    pos = nl + 2;
  }
  return out.subarray(0, o);
}

const isHex = (c: number): boolean =>
  (c >= 48 && c <= 57) || ((c | 0x20) >= 97 && (c | 0x20) <= 102);

/** Quoted-printable per RFC 2045 §6.7: CRLF stays a hard break, lines ≤ 76 with soft breaks. */
const HEX_DIGITS = Buffer.from('0123456789ABCDEF', 'latin1');

// Byte-level writer: this runs on every tracked HTML part of every recipient copy, on the
// main thread, so it writes into one preallocated buffer instead of building strings.
export function qpEncode(bytes: Buffer): Buffer {
  // Worst case: every byte as =XX, plus a soft break (=CRLF) every 25 encoded bytes.
  const out = Buffer.allocUnsafe(bytes.length * 3 + Math.ceil(bytes.length / 25) * 3 + 8);
  let o = 0;
  let col = 0;
  const n = bytes.length;
  for (let i = 0; i < n; i++) {
    const b = bytes[i];
    if (b === 13 && bytes[i + 1] === 10) {
      out[o++] = 13;
      out[o++] = 10;
      col = 0;
      i++;
      continue;
    }
    let encode: boolean;
    if (b >= 33 && b <= 126 && b !== 61) encode = false;
    // Whitespace at the end of a line would be stripped in transit (rule 3): encode it.
    else if (b === 32 || b === 9) encode = i + 1 === n || (bytes[i + 1] === 13 && bytes[i + 2] === 10);
    else encode = true;
    const width = encode ? 3 : 1;
    if (col + width > 75) {
      out[o++] = 61;
      out[o++] = 13;
      out[o++] = 10;
      col = 0;
    }
    if (encode) {
      out[o++] = 61;
      out[o++] = HEX_DIGITS[b >> 4];
      out[o++] = HEX_DIGITS[b & 15];
    } else {
      out[o++] = b;
    }
    col += width;
  }
  return Buffer.from(out.subarray(0, o));
}

const hex = (b: number): string => b.toString(16).toUpperCase().padStart(2, '0');

function base64Wrapped(bytes: Buffer): Buffer {
  const b64 = bytes.toString('base64');
  const lines: string[] = [];
  for (let i = 0; i < b64.length; i += 76) lines.push(b64.slice(i, i + 76));
  return Buffer.from(lines.join('\r\n'), 'latin1');
}

function longestLine(bytes: Buffer): number {
  let max = 0;
  let pos = 0;
  while (pos <= bytes.length) {
    const nl = bytes.indexOf(10, pos);
    const end = nl < 0 ? bytes.length : nl;
    const len = end - pos - (end > pos && bytes[end - 1] === 13 ? 1 : 0);
    if (len > max) max = len;
    if (nl < 0) break;
    pos = nl + 1;
  }
  return max;
}

const has8bit = (bytes: Buffer): boolean => /[\x80-\xff]/.test(bytes.toString('latin1'));

// Charsets whose bytes are not a superset of ASCII: markup cannot be found in their raw bytes.
const ASCII_INCOMPATIBLE =
  /^(utf-?16|utf-?32|ucs-?2|ucs-?4|unicode|utf-?7|iso-?2022|csiso2022|hz-gb)/;

function sniffCharset(bytes: Buffer): string | undefined {
  const head = bytes.subarray(0, 1024).toString('latin1');
  return /<meta[^>]*?charset\s*=\s*["']?\s*([a-z0-9_:.()-]+)/i.exec(head)?.[1]?.toLowerCase();
}

function unicodeCodec(charset: string, bytes: Buffer): string {
  // The BOM (or, without one, where the zero byte of an ASCII char sits — HTML starts with
  // ASCII) fixes the byte order; name it so the encoder writes the same order back.
  const big = (bytes[0] === 0xfe && bytes[1] === 0xff) || (bytes[0] === 0 && bytes[1] !== 0xfe);
  if (/^utf-?16$/.test(charset)) return big ? 'utf-16be' : 'utf-16le';
  if (/^utf-?32$/.test(charset)) return bytes[0] === 0 ? 'utf-32be' : 'utf-32le';
  return charset;
}

/** Back to bytes; chars above U+00FF (inserted by `fn` into a binary string) use the charset. */
function binaryToBytes(html: string, charset: string): Buffer {
  if (!/[^\u0000-\u00ff]/.test(html)) return Buffer.from(html, 'latin1');
  const cs = iconv.encodingExists(charset) ? charset : 'utf-8';
  const runs = html.split(/([^\u0000-\u00ff]+)/);
  return Buffer.concat(
    runs.map((r, i) => (i % 2 ? iconv.encode(r, cs) : Buffer.from(r, 'latin1'))),
  );
}

interface Splice {
  start: number;
  end: number;
  bytes: Buffer;
}

function rewriteNode(buf: Buffer, node: HtmlNode, fn: HtmlRewriter, splices: Splice[]): boolean {
  const body = buf.subarray(node.bodyStart, node.end);
  const cte = (fieldValue(node.fields, 'content-transfer-encoding') ?? '7bit').trim().toLowerCase();
  let bytes: Buffer;
  if (cte === 'quoted-printable') bytes = qpDecode(body);
  else if (cte === 'base64') {
    // Node decodes base64 leniently (skips what it cannot read); re-encoding that would
    // replace the part with other bytes than were sent. Leave an invalid part as it is.
    const b64 = body.toString('latin1').replace(/[\t\r\n ]+/g, '');
    if (!/^[A-Za-z0-9+/]*={0,2}$/.test(b64) || b64.length % 4 === 1) return false;
    bytes = Buffer.from(b64, 'base64');
  }
  else if (['7bit', '8bit', 'binary', ''].includes(cte)) bytes = body;
  else return false; // x-uuencode and the like: we cannot re-encode it faithfully

  const charset = (node.charset || (node.type === 'text/html' ? sniffCharset(bytes) : undefined) || 'utf-8').trim().toLowerCase();
  const binary = !ASCII_INCOMPATIBLE.test(charset);
  let html: string;
  let codec = charset;
  let bom = false;
  if (binary) {
    html = bytes.toString('latin1');
  } else {
    codec = unicodeCodec(charset, bytes);
    if (!iconv.encodingExists(codec)) return false; // e.g. ISO-2022-JP: iconv-lite has no codec
    const withBom = iconv.decode(bytes, codec, { stripBOM: false });
    bom = withBom.charCodeAt(0) === 0xfeff;
    html = bom ? withBom.slice(1) : withBom;
  }
  const next = fn(html, { charset, binary, type: node.type });
  if (next === html) return true;
  const newBytes = binary
    ? binaryToBytes(next, charset)
    : iconv.encode(next, codec, { addBOM: bom });

  let newBody: Buffer;
  let switchToQp = false;
  if (cte === 'quoted-printable') {
    newBody = qpEncode(newBytes);
  } else if (cte === 'base64') {
    const trailing = body.length >= 2 && body[body.length - 2] === 13 && body.at(-1) === 10;
    newBody = trailing ? Buffer.concat([base64Wrapped(newBytes), CRLF]) : base64Wrapped(newBytes);
  } else {
    // RFC 5322 §2.1.1 caps lines at 998 octets; a 7bit part must stay 7bit (RFC 2045 §2.7).
    const sevenBit = cte === '7bit' || cte === '';
    switchToQp =
      longestLine(newBytes) > MAX_LINE || (sevenBit && has8bit(newBytes) && !has8bit(bytes));
    newBody = switchToQp ? qpEncode(newBytes) : newBytes;
  }
  splices.push({ start: node.bodyStart, end: node.end, bytes: newBody });
  if (switchToQp) {
    const qpLine = Buffer.from(QP_CTE_LINE, 'latin1');
    const ctes = node.fields.filter((f) => f.name.toLowerCase() === 'content-transfer-encoding');
    if (ctes.length === 0) {
      splices.push({ start: node.headerEnd, end: node.headerEnd, bytes: qpLine });
    }
    // Replace the first CTE field in place; drop duplicates so no reader sees the old value.
    ctes.forEach((f, i) =>
      splices.push({ start: f.start, end: f.end, bytes: i === 0 ? qpLine : Buffer.alloc(0) }),
    );
  }
  return true;
}

/**
 * Hand every inline text/html part of `message` (CRLF line endings) to `fn` and splice the
 * re-encoded result back. `htmlParts` counts the parts handed to `fn`. Malformed MIME never
 * throws: what cannot be found safely is left as is. Errors thrown by `fn` propagate.
 */
export function rewriteHtmlParts(
  message: Buffer,
  fn: HtmlRewriter,
  /** Part types to hand over; text/plain is only for the optional text-link tracking. */
  types: readonly string[] = ['text/html'],
): { message: Buffer; htmlParts: number } {
  const nodes: HtmlNode[] = [];
  try {
    collectHtmlNodes(message, 0, message.length, 0, nodes, types);
  } catch {
    return { message, htmlParts: 0 };
  }
  const splices: Splice[] = [];
  let htmlParts = 0;
  for (const node of nodes) if (rewriteNode(message, node, fn, splices)) htmlParts++;
  if (splices.length === 0) return { message, htmlParts };
  splices.sort((a, b) => a.start - b.start || a.end - b.end);
  const chunks: Buffer[] = [];
  let pos = 0;
  for (const s of splices) {
    chunks.push(message.subarray(pos, s.start), s.bytes);
    pos = s.end;
  }
  chunks.push(message.subarray(pos));
  return { message: Buffer.concat(chunks), htmlParts };
}
