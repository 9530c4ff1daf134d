// The Location header a click redirect sends for a stored URL. Shared by the
// redirect itself and the rewrite, which must know how long that header will be.
import { domainToASCII } from 'node:url';

/** Header-safe Location: non-ASCII is percent-encoded (host as punycode), everything else kept as stored. */
export function locationFor(url: string): string {
  if (/^[\x21-\x7e]*$/.test(url)) return url;
  const enc = (s: string) => s.replace(/[^\x21-\x7e]+/g, (m) => encodeURIComponent(m));
  const m = /^([a-z][a-z0-9+.-]*:\/\/)([^/?#]*)(.*)$/is.exec(url);
  if (!m) return enc(url);
  const [, scheme, authority, tail] = m;
  const at = authority.lastIndexOf('@');
  const userinfo = at >= 0 ? enc(authority.slice(0, at + 1)) : '';
  const hostPort = authority.slice(at + 1);
  const portMatch = /:(\d+)$/.exec(hostPort);
  const host = portMatch ? hostPort.slice(0, portMatch.index) : hostPort;
  const asciiHost = domainToASCII(host) || enc(host);
  return `${scheme}${userinfo}${asciiHost}${portMatch ? portMatch[0] : ''}${enc(tail)}`;
}
