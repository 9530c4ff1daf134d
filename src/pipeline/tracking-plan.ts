// Per-recipient tracking. The HTML is parsed and rewritten once per message
// into a template with placeholders; each recipient's copy only substitutes
// its own tokens, so 100 recipients cost one parse, not 100.
import iconv from 'iconv-lite';
import { newToken } from '../util/ids.js';
import type { NewToken } from '../store/queue.js';
import type { TrackFlag } from './control-headers.js';
import { joinMessage, splitMessage } from './headers.js';
import { rewriteHtmlParts } from './mime-parts.js';
import { rewriteTextLinks } from './text-links.js';
import { rewriteHtml } from './track-rewrite.js';

export interface TrackingOptions {
  baseUrl: string;
  unsubscribeMailto?: string | null;
  /** Also track http(s) URLs in text/plain parts. */
  textLinks?: boolean;
}

export interface TrackingPlan {
  /** True when every recipient needs a copy of its own. */
  perRecipient: boolean;
  render(email: string): { message: Buffer; tokens: NewToken[] };
}

// Placeholders cannot occur in real HTML: C0 controls are not allowed in documents we rewrite.
const MARK = '\u0001';
const PLACEHOLDER = /\u0001([cou])(\d*)\u0001/g;

/** Charsets whose bytes the rewriter sees as a latin1 "binary" string (see mime-parts). */
const decodedInJs = (charset: string) => /^(iso-2022|utf-16|utf-32|ucs-2)/i.test(charset);

function realUrl(url: string, charset: string): string {
  if (decodedInJs(charset) || !/[\u0080-\u00ff]/.test(url)) return url;
  const bytes = Buffer.from(url, 'latin1');
  const cs = iconv.encodingExists(charset) ? charset : 'utf-8';
  return iconv.decode(bytes, cs);
}

export function prepareTracking(base: Buffer, flags: Set<TrackFlag>, opts: TrackingOptions): TrackingPlan {
  const opens = flags.has('opens');
  const clicks = flags.has('clicks');
  const unsubscribe = flags.has('unsubscribe');
  /** One entry per HTML part, in order; null where the part needs no per-recipient copy. */
  const templates: (string | null)[] = [];
  const links: string[] = [];
  const textLinks = flags.has('clicks') && opts.textLinks === true;

  let unsubscribeLink = false;
  // `href="{{unsubscribe}}"` is honoured even with tracking off: the sender asked for the link.
  // The byte test is only a shortcut; a base64 HTML part hides it, so unsubscribe forces a parse.
  if (opens || clicks || unsubscribe || base.includes('unsubscribe}}')) {
    rewriteHtmlParts(base, (html, ctx) => {
      // A part that already holds the mark would have its own text taken for placeholders
      // (found by the bad-input suite: "\u0001c0\u0001" in an HTML part became a live click
      // token, "\u0001u\u0001" an unsubscribe token). Such a part is left exactly as sent.
      if (html.includes(MARK)) {
        templates.push(null);
        return html;
      }
      const offset = links.length;
      const clickUrl = ({ index }: { index: number }) => `${opts.baseUrl}/t/c/${MARK}c${offset + index}${MARK}`;
      if (ctx.type === 'text/plain') {
        const out = rewriteTextLinks(html, { clickUrl });
        for (const l of out.links) links[offset + l.index] = realUrl(l.url, ctx.charset);
        templates.push(out.links.length ? out.text : null);
        return out.text;
      }
      const out = rewriteHtml(html, {
        clicks,
        openPixelUrl: opens ? `${opts.baseUrl}/t/o/${MARK}o${MARK}` : undefined,
        clickUrl,
        unsubscribeHref: `${opts.baseUrl}/t/u/${MARK}u${MARK}`,
      });
      if (out.html === html) {
        templates.push(null);
        return html;
      }
      if (out.html.includes(`${MARK}u${MARK}`)) unsubscribeLink = true;
      for (const l of out.links) links[offset + l.index] = realUrl(l.url, ctx.charset);
      templates.push(out.html);
      return out.html;
    }, textLinks ? ['text/html', 'text/plain'] : ['text/html']);
  }

  const templated = templates.some((t) => t !== null);
  const perRecipient = templated || unsubscribe;
  return {
    perRecipient,
    render(email: string) {
      void email;
      const tokens: NewToken[] = [];
      const linkTokens = links.map((url, i) => {
        const token = newToken();
        tokens.push({ token, kind: 'c', linkIndex: i, url });
        return token;
      });
      let openToken: string | null = null;
      const unsubToken = unsubscribe || unsubscribeLink ? newToken() : null;
      let message = base;
      if (templated) {
        let part = 0;
        message = rewriteHtmlParts(base, (html) => {
          const template = templates[part++];
          if (template === null || template === undefined) return html;
          return template.replace(PLACEHOLDER, (_m, kind: string, n: string) => {
            if (kind === 'c') return linkTokens[Number(n)];
            if (kind === 'u') return unsubToken!;
            openToken ??= newToken();
            return openToken;
          });
        }, textLinks ? ['text/html', 'text/plain'] : ['text/html']).message;
        if (openToken) tokens.push({ token: openToken, kind: 'o' });
      }
      if (unsubToken) tokens.push({ token: unsubToken, kind: 'u' });
      if (unsubscribe) {
        const token = unsubToken!;
        const { fields, body } = splitMessage(message);
        const kept = fields.filter((f) => f.key !== 'list-unsubscribe' && f.key !== 'list-unsubscribe-post');
        const targets = [`<${opts.baseUrl}/t/u/${token}>`];
        if (opts.unsubscribeMailto) targets.push(`<mailto:${opts.unsubscribeMailto}?subject=unsubscribe>`);
        message = joinMessage(kept, body, [
          `List-Unsubscribe: ${targets.join(', ')}`,
          'List-Unsubscribe-Post: List-Unsubscribe=One-Click',
        ]);
      }
      return { message, tokens };
    },
  };
}
