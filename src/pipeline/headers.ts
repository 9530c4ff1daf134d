// Minimal, byte-preserving access to a message's header block. We only ever
// remove or prepend whole header fields, so every other byte reaches the
// recipient as it was submitted (and as DKIM will sign it).

export interface HeaderField {
  /** Name as written. */
  name: string;
  /** Lowercase name for comparisons. */
  key: string;
  /** Unfolded value, leading whitespace trimmed. */
  value: string;
  /** Exact bytes of the field including its final CRLF. */
  raw: Buffer;
}

/** Offset where the body starts (after the blank line), or the message length when there is none. */
export function headerEnd(msg: Buffer): { headerLength: number; bodyStart: number } {
  if (msg.length >= 2 && msg[0] === 13 && msg[1] === 10) return { headerLength: 0, bodyStart: 2 };
  const i = msg.indexOf('\r\n\r\n');
  if (i < 0) return { headerLength: msg.length, bodyStart: msg.length };
  return { headerLength: i + 2, bodyStart: i + 4 };
}

export function parseHeaderBlock(header: Buffer): HeaderField[] {
  const fields: HeaderField[] = [];
  let start = 0;
  while (start < header.length) {
    let end = header.indexOf('\r\n', start);
    if (end < 0) end = header.length - 2;
    // Continuation lines start with SP or HTAB (RFC 5322 §2.2.3).
    while (end + 2 < header.length && (header[end + 2] === 0x20 || header[end + 2] === 0x09)) {
      const next = header.indexOf('\r\n', end + 2);
      end = next < 0 ? header.length - 2 : next;
    }
    const raw = header.subarray(start, end + 2);
    const text = raw.toString('utf8');
    const colon = text.indexOf(':');
    if (colon > 0) {
      const name = text.slice(0, colon).trim();
      const value = text
        .slice(colon + 1)
        .replace(/\r\n([ \t])/g, '$1')
        .trim();
      fields.push({ name, key: name.toLowerCase(), value, raw });
    } else {
      fields.push({ name: '', key: '', value: text.trim(), raw });
    }
    start = end + 2;
  }
  return fields;
}

export interface ParsedMessage {
  fields: HeaderField[];
  body: Buffer;
}

export function splitMessage(msg: Buffer): ParsedMessage {
  const { headerLength, bodyStart } = headerEnd(msg);
  return { fields: parseHeaderBlock(msg.subarray(0, headerLength)), body: msg.subarray(bodyStart) };
}

export function getHeader(fields: HeaderField[], name: string): string | undefined {
  const key = name.toLowerCase();
  return fields.find((f) => f.key === key)?.value;
}

/** Rebuilds the message from (possibly filtered) fields, new fields first, and the body. */
export function joinMessage(fields: HeaderField[], body: Buffer, prepend: string[] = []): Buffer {
  const parts: Buffer[] = [];
  for (const line of prepend) parts.push(Buffer.from(`${line}\r\n`, 'utf8'));
  for (const f of fields) parts.push(f.raw);
  parts.push(Buffer.from('\r\n'), body);
  return Buffer.concat(parts);
}

/**
 * Anything that becomes a header value or an SMTP command passes here: a CR or
 * LF in it would start a new header (or command) the sender did not write.
 */
export function assertNoCrLf(value: string, what: string): string {
  if (/[\r\n]/.test(value)) throw new Error(`${what} must not contain CR or LF`);
  return value;
}
