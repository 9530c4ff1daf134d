// Click/open tracking rewrite of one HTML document (SPEC §7).
//
// The document is never re-serialized: e-mail HTML is full of things a DOM round trip damages
// (MSO conditional comments, VML, `<br/>`, entities, odd quoting — see VERIFIED-STACK §5).
// We run htmlparser2's tokenizer only to LOCATE the spans we change (href values, the notrack
// attribute, the last `</body>`) and splice the original string: every other byte stays.
// The tokenizer also knows comments, `<script>`/`<style>`/`<title>`/`<textarea>` raw text, so an
// `<a href>` inside a JS string or a comment is never touched.
import iconv from 'iconv-lite';
import { decodeHTMLAttribute, escapeAttribute } from 'entities';
import { Tokenizer } from 'htmlparser2';
import { locationFor } from '../util/location.js';

export interface RewriteOptions {
  /** Rewrite http(s) links to click-tracking URLs. */
  clicks: boolean;
  /** When set, a 1×1 pixel with this src is inserted just before the last `</body>`. */
  openPixelUrl?: string;
  /** Tracking URL for link #index; the caller creates the token. Called in document order. */
  clickUrl: (link: { index: number; url: string }) => string;
  /** Links equal to this (or to the `{{unsubscribe}}` placeholder) are never tracked. */
  unsubscribeUrl?: string;
  /** When set, `href="{{unsubscribe}}"` is replaced with this URL (the recipient's one-click page). */
  unsubscribeHref?: string;
  /**
   * Set only when `html` is a "binary" string (one char per byte, as handed out by
   * rewriteHtmlParts with `binary: true`): the charset of those bytes. Href values are then
   * decoded from it so `TrackedLink.url` is a real Unicode URL. Leave unset for a normal string.
   */
  charset?: string;
}

export interface TrackedLink {
  index: number;
  /** The real URL: entities decoded exactly once, tab/newline removed as a browser would. */
  url: string;
}

export const NOTRACK_ATTRIBUTE = 'data-relaygate-notrack';
const UNSUBSCRIBE_PLACEHOLDER = /^\{\{\s*unsubscribe\s*\}\}$/i;
const HTTP_URL = /^https?:\/\//i;
/**
 * Links whose Location header would be longer are left as sent (non-ASCII counts
 * percent-encoded, up to 9 bytes a character). Browsers, proxies and Node's own
 * HTTP parser (16 KiB for all headers) refuse headers much past 8 KiB, so such a
 * tracked link would stop working.
 */
export const MAX_TRACKED_URL = 8192;

interface Attr {
  name: string;
  nameStart: number;
  valueStart: number; // -1 when the attribute has no value
  valueEnd: number;
  end: number;
  quote: number; // htmlparser2 QuoteType: 0 none, 1 unquoted, 2 single, 3 double
}

interface Tag {
  name: string;
  attrs: Attr[];
}

interface Edit {
  start: number;
  end: number;
  text: string;
}

type TagSink = (tag: Tag) => void;

/**
 * Tokenize `src` (or its slice [from, to)), reporting each complete start tag with absolute
 * offsets. Tags cut off by the end of input are not reported: half a tag is never rewritten.
 */
function scanTags(
  src: string,
  from: number,
  to: number,
  onTag: TagSink,
  onBodyClose?: (lt: number) => void,
  onComment?: (start: number, end: number) => void,
): void {
  const text = from === 0 && to === src.length ? src : src.slice(from, to);
  let tag: Tag | null = null;
  let attr: Attr | null = null;
  const finish = (): void => {
    if (tag) onTag(tag);
    tag = null;
    attr = null;
  };
  const noop = (): void => {};
  const tokenizer = new Tokenizer(
    { decodeEntities: false, xmlMode: false },
    {
      onopentagname(start, end) {
        tag = { name: text.slice(start, end).toLowerCase(), attrs: [] };
      },
      onattribname(start, end) {
        attr = {
          name: text.slice(start, end).toLowerCase(),
          nameStart: from + start,
          valueStart: -1,
          valueEnd: -1,
          end: from + end,
          quote: 0,
        };
      },
      onattribdata(start, end) {
        if (!attr) return;
        if (attr.valueStart < 0) attr.valueStart = from + start;
        attr.valueEnd = from + end;
      },
      onattribend(quote, end) {
        if (!attr || !tag) return;
        attr.quote = quote;
        attr.end = from + end;
        if (attr.valueStart < 0 && quote !== 0) attr.valueStart = attr.valueEnd = attr.end;
        tag.attrs.push(attr);
        attr = null;
      },
      onopentagend: finish,
      onselfclosingtag: finish,
      onclosetag(start, end) {
        tag = null;
        if (onBodyClose && text.slice(start, end).toLowerCase() === 'body') {
          onBodyClose(from + text.lastIndexOf('<', start));
        }
      },
      oncomment(start, end, endOffset) {
        onComment?.(from + start, from + end - endOffset);
      },
      onattribentity: noop,
      oncdata: noop,
      ondeclaration: noop,
      onend: noop,
      onprocessinginstruction: noop,
      ontext: noop,
      ontextentity: noop,
    },
  );
  tokenizer.write(text);
  tokenizer.end();
}

// WHATWG URL parsing strips leading/trailing C0+space and removes every tab/LF/CR, so this is
// the URL a browser would have followed — and a redirect target can never carry a CR/LF.
function cleanUrl(value: string): string {
  return value.replace(/^[\u0000-\u0020]+|[\u0000-\u0020]+$/g, '').replace(/[\t\n\r]/g, '');
}

function decodeBytes(raw: string, charset: string | undefined): string | null {
  // Nothing to decode, or chars above U+00FF: the caller passed a real Unicode string after all.
  if (!charset || !/[\u0080-\u00ff]/.test(raw) || /[^\u0000-\u00ff]/.test(raw)) return raw;
  const cs = iconv.encodingExists(charset) ? charset : 'utf-8';
  const out = iconv.decode(Buffer.from(raw, 'latin1'), cs);
  // A replacement character means the bytes were not valid in that charset: tracking such a
  // link would redirect to a mangled URL, so the caller leaves it alone.
  return out.includes('\ufffd') ? null : out;
}

function writeValue(value: string, quote: number): string {
  let escaped = escapeAttribute(value);
  if (quote === 2) escaped = escaped.replace(/'/g, '&#39;');
  if (quote === 1 && /[\s"'=<>`]/.test(escaped)) return `"${escaped}"`;
  return escaped;
}

/**
 * Conditional comments `<!--[if mso]>…<![endif]-->` hold markup Outlook renders (VML buttons),
 * so their links are tracked too. `<!--[if !mso]><!-->` only opens a revealed block: skip it.
 */
function isDownlevelHidden(html: string, start: number, end: number): boolean {
  const opener = /^\[if [^\]]*\]>/i.exec(html.slice(start, Math.min(end, start + 100)));
  return opener !== null && !(end - start >= 2 && html.startsWith('<!', end - 2));
}

export function rewriteHtml(
  html: string,
  opts: RewriteOptions,
): { html: string; links: TrackedLink[] } {
  const edits: Edit[] = [];
  const links: TrackedLink[] = [];
  let lastBodyClose = -1;

  const isUnsubscribe = (url: string): boolean =>
    UNSUBSCRIBE_PLACEHOLDER.test(url) ||
    (opts.unsubscribeUrl !== undefined && url === cleanUrl(opts.unsubscribeUrl));

  const onTag = (tag: Tag, inComment: boolean): void => {
    const isLink = tag.name === 'a' || (inComment && tag.name.startsWith('v:'));
    if (!isLink) return;
    const notrack = tag.attrs.filter((a) => a.name === NOTRACK_ATTRIBUTE);
    for (const a of notrack) {
      let start = a.nameStart;
      while (start > 0 && /[ \t\n\r\f]/.test(html[start - 1])) start--;
      edits.push({ start, end: a.end, text: '' });
    }
    // HTML keeps the first of duplicate attributes.
    const href = tag.attrs.find((a) => a.name === 'href');
    if (notrack.length > 0 || !href || href.valueStart < 0) return;
    const raw = html.slice(href.valueStart, href.valueEnd);
    const decoded = decodeBytes(raw, opts.charset);
    if (decoded === null) return;
    const url = cleanUrl(decodeHTMLAttribute(decoded));
    if (UNSUBSCRIBE_PLACEHOLDER.test(url) && opts.unsubscribeHref !== undefined) {
      edits.push({ start: href.valueStart, end: href.valueEnd, text: writeValue(opts.unsubscribeHref, href.quote) });
      return;
    }
    if (!opts.clicks || !HTTP_URL.test(url) || locationFor(url).length > MAX_TRACKED_URL || isUnsubscribe(url)) return;
    const index = links.length;
    links.push({ index, url });
    const text = writeValue(opts.clickUrl({ index, url }), href.quote);
    edits.push({ start: href.valueStart, end: href.valueEnd, text });
  };

  const onComment = (start: number, end: number): void => {
    if (!isDownlevelHidden(html, start, end)) return;
    scanTags(html, start, end, (tag) => onTag(tag, true));
  };

  scanTags(
    html,
    0,
    html.length,
    (tag) => onTag(tag, false),
    (lt) => {
      lastBodyClose = lt;
    },
    onComment,
  );

  if (opts.openPixelUrl !== undefined) {
    const pixel =
      `<img src="${escapeAttribute(opts.openPixelUrl)}" width="1" height="1" alt="" ` +
      'style="display:block;border:0;width:1px;height:1px" />';
    const at = lastBodyClose >= 0 ? lastBodyClose : html.length;
    edits.push({ start: at, end: at, text: pixel });
  }

  edits.sort((a, b) => a.start - b.start || a.end - b.end);
  let out = '';
  let pos = 0;
  for (const e of edits) {
    out += html.slice(pos, e.start) + e.text;
    pos = e.end;
  }
  out += html.slice(pos);
  return { html: out, links };
}
