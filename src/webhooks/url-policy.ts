// Webhook destinations: loopback and private networks are fine (receivers
// often run beside the gateway), but link-local and cloud metadata endpoints
// are refused: a webhook URL must never become a way to read instance
// credentials (SSRF, e.g. 169.254.169.254).
import { lookup } from 'node:dns/promises';
import ipaddr from 'ipaddr.js';

const METADATA_HOSTS = new Set(['metadata.google.internal', 'metadata.goog', 'metadata', 'instance-data', 'instance-data.ec2.internal']);
const METADATA_IPS = new Set(['169.254.169.254', '169.254.170.2', 'fd00:ec2::254', '100.100.100.200', '192.0.0.192']);

export function isForbiddenIp(ip: string): boolean {
  let addr: ipaddr.IPv4 | ipaddr.IPv6;
  try {
    addr = ipaddr.process(ip);
  } catch {
    return true;
  }
  // An IPv4 address inside an IPv6 one reaches the same host: NAT64 (64:ff9b::/96, RFC 6052)
  // translates it, and the deprecated IPv4-compatible form (::a.b.c.d) is routed to it on
  // some stacks. ipaddr.process() already unwraps ::ffff:a.b.c.d.
  if (addr.kind() === 'ipv6') {
    const parts = (addr as ipaddr.IPv6).parts;
    const nat64 = parts[0] === 0x64 && parts[1] === 0xff9b && parts.slice(2, 6).every((p) => p === 0);
    const compat = parts.slice(0, 6).every((p) => p === 0) && (parts[6] !== 0 || parts[7] > 1);
    if (nat64 || compat) {
      const v4 = `${parts[6] >> 8}.${parts[6] & 255}.${parts[7] >> 8}.${parts[7] & 255}`;
      if (isForbiddenIp(v4)) return true;
    }
  }
  if (METADATA_IPS.has(addr.toString())) return true;
  const range = addr.range();
  return range === 'linkLocal' || range === 'unspecified' || range === 'broadcast' || range === 'multicast';
}

/** Static check of a URL as given (scheme, literal IPs, well-known metadata names). Returns the reason or null. */
export function webhookUrlProblem(raw: string, allowLinkLocal: boolean): string | null {
  // The URL parser silently drops tab, CR and LF: the stored URL would not be the one used.
  if (/[\x00-\x20\x7f]/.test(raw)) return 'url must not contain spaces or control characters';
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return 'url must be an absolute http(s) URL';
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return 'url must use http or https';
  if (url.username || url.password) return 'url must not contain credentials';
  if (raw.length > 2048) return 'url is too long';
  if (allowLinkLocal) return null;
  // "metadata.google.internal." (absolute form, trailing dot) names the same host.
  const host = url.hostname.replace(/^\[|\]$/g, '').toLowerCase().replace(/\.+$/, '');
  if (METADATA_HOSTS.has(host)) return `${host} is a cloud metadata endpoint`;
  if (ipaddr.isValid(host) && isForbiddenIp(host)) return `${host} is a link-local or metadata address`;
  return null;
}

/** Checked again at send time: a name can resolve to a forbidden address (DNS rebinding). */
export async function resolvedProblem(url: URL, allowLinkLocal: boolean): Promise<string | null> {
  if (allowLinkLocal) return null;
  const host = url.hostname.replace(/^\[|\]$/g, '');
  if (ipaddr.isValid(host)) return isForbiddenIp(host) ? `${host} is a link-local or metadata address` : null;
  try {
    const addrs = await lookup(host, { all: true });
    const bad = addrs.find((a) => isForbiddenIp(a.address));
    return bad ? `${host} resolves to forbidden address ${bad.address}` : null;
  } catch {
    return null; // fetch reports the resolution failure itself
  }
}
