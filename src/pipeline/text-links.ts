// Click tracking for text/plain parts (tracking.textLinks, off by default: a rewritten
// URL in plain text is visible to the reader, unlike an href).
import { locationFor } from '../util/location.js';
import { MAX_TRACKED_URL } from './track-rewrite.js';

export interface TextLink {
  index: number;
  url: string;
}

// Bare URLs end at whitespace or at the delimiters people wrap them in: <url>, "url", (url).
const URL_RE = /https?:\/\/[^\s<>"]+/gi;
// Sentence punctuation after a URL belongs to the sentence, not the URL.
const TRAILING = /[.,;:!?'\])}]+$/;

export function rewriteTextLinks(text: string, opts: { clickUrl: (link: TextLink) => string }): { text: string; links: TextLink[] } {
  const links: TextLink[] = [];
  const out = text.replace(URL_RE, (match) => {
    const trail = TRAILING.exec(match)?.[0] ?? '';
    let url = trail ? match.slice(0, -trail.length) : match;
    // Keep a closing parenthesis that closes one inside the URL (Wikipedia-style paths).
    let tail = trail;
    if (tail.startsWith(')') && (url.match(/\(/g)?.length ?? 0) > (url.match(/\)/g)?.length ?? 0)) {
      url += ')';
      tail = tail.slice(1);
    }
    if (/^https?:\/\/$/i.test(url) || locationFor(url).length > MAX_TRACKED_URL) return match;
    const index = links.length;
    links.push({ index, url });
    return opts.clickUrl({ index, url }) + tail;
  });
  return { text: out, links };
}
