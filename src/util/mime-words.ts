// RFC 2047 encoded-words (=?charset?Q|B?text?=) back to text, for showing
// stored Subject and From headers in the API. Adjacent words of one charset
// are joined before decoding (§6.2), so a multi-byte character split across
// two words survives.
import iconv from 'iconv-lite';

const WORD = /=\?([^?\s*]+)(?:\*[^?\s]*)?\?([QqBb])\?([^?\s]*)\?=/g;

function wordBytes(enc: string, text: string): Buffer {
  if (enc.toUpperCase() === 'B') return Buffer.from(text, 'base64');
  const latin = text.replace(/_/g, ' ').replace(/=([0-9A-Fa-f]{2})/g, (_m, h: string) => String.fromCharCode(parseInt(h, 16)));
  return Buffer.from(latin, 'latin1');
}

function decodeBytes(buf: Buffer, charset: string): string | null {
  const cs = charset.toLowerCase();
  if (cs === 'utf-8' || cs === 'utf8' || cs === 'us-ascii') return buf.toString('utf8');
  return iconv.encodingExists(cs) ? iconv.decode(buf, cs) : null;
}

/**
 * `onUnknownCharset` decides what a word in a charset we cannot decode becomes:
 * by default the raw encoded-word text; a strict caller throws instead.
 */
export function decodeMimeWords(value: string, onUnknownCharset: (charset: string, raw: string) => string = (_c, raw) => raw): string {
  if (!value.includes('=?')) return value;
  let out = '';
  let last = 0;
  let pending: { charset: string; chunks: Buffer[]; raw: string } | null = null;
  const flush = () => {
    if (!pending) return;
    out += decodeBytes(Buffer.concat(pending.chunks), pending.charset) ?? onUnknownCharset(pending.charset, pending.raw);
    pending = null;
  };
  for (const m of value.matchAll(WORD)) {
    const between = value.slice(last, m.index);
    const joinable = pending !== null && /^\s*$/.test(between);
    if (!joinable) {
      flush();
      out += between;
    }
    const charset = m[1].toLowerCase();
    const bytes = wordBytes(m[2], m[3]);
    const p = pending as { charset: string; chunks: Buffer[]; raw: string } | null;
    if (p && p.charset === charset) {
      p.chunks.push(bytes);
      p.raw += m[0];
    } else {
      flush();
      pending = { charset, chunks: [bytes], raw: m[0] };
    }
    last = m.index + m[0].length;
  }
  flush();
  return out + value.slice(last);
}
