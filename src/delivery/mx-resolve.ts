// MX resolution for outbound delivery (SPEC §6, RFC 5321 §5.1, RFC 7505).
//
// DNS edge: every lookup — the MX records and the A/AAAA of each exchange — goes through
// one node:dns Resolver pointed at `dns.servers`, so tests (and split-horizon setups)
// control every answer. Temporary DNS failures throw a 4xx GatewayError so the caller
// defers; only answers that are authoritative "no" (NXDOMAIN, null MX) are results.
import { Resolver } from 'node:dns/promises';
import net from 'node:net';
import { domainToASCII } from 'node:url';
import { GatewayError } from '../errors.js';

export interface MxHost {
  exchange: string;
  priority: number;
  /** IPv4 first, then IPv6. */
  addresses: string[];
}

export type MxResult =
  | { kind: 'hosts'; hosts: MxHost[] }
  | { kind: 'null-mx' }
  | { kind: 'nxdomain' }
  | { kind: 'no-address' };

export interface MxResolver {
  resolve(domain: string): Promise<MxResult>;
}

export interface MxResolverOptions {
  /** `ip` or `ip:port` (`[v6]:port`); empty → the system resolvers. */
  servers: string[];
  /** Per-try timeout. */
  timeoutMs?: number;
  tries?: number;
  /** How long a list of hosts is reused; 0 disables the cache. Default 60 s. */
  cacheMs?: number;
  /** How long NXDOMAIN / null MX / no address is reused. Default 10 s (0 with cacheMs 0). */
  negativeCacheMs?: number;
  /** Exchanges looked at, at most (a hostile zone could list hundreds). Default 10. */
  maxHosts?: number;
  /** Injected for tests. */
  now?: () => number;
  random?: () => number;
}

interface RawMx {
  exchange: string;
  priority: number;
}

type Lookup = { kind: 'hosts'; hosts: MxHost[] } | Exclude<MxResult, { kind: 'hosts' }>;

const MAX_CACHE_ENTRIES = 10_000;
const TEMP_OPTS = { smtp: 451, enhanced: '4.4.3' } as const;

/** Lowercase A-label form without the trailing dot, or '' when it is not a domain name. */
export function normaliseDomain(domain: string): string {
  const trimmed = domain.trim().replace(/\.$/, '');
  if (!trimmed || /[\s/\\@]/.test(trimmed)) return '';
  return domainToASCII(trimmed).toLowerCase();
}

function errCode(e: unknown): string {
  return typeof e === 'object' && e !== null && 'code' in e ? String((e as { code: unknown }).code) : '';
}

function tempError(what: string, e: unknown): GatewayError {
  const code = errCode(e) || (e instanceof Error ? e.message : String(e));
  return new GatewayError('dns_temp', `DNS lookup failed temporarily: ${what} (${code})`, { ...TEMP_OPTS, cause: e });
}

/** RFC 5321 §5.1: lowest preference first; equal preferences in random order. */
export function orderByPreference<T extends { priority: number }>(list: T[], random: () => number = Math.random): T[] {
  const byPref = new Map<number, T[]>();
  for (const item of list) {
    const group = byPref.get(item.priority) ?? [];
    group.push(item);
    byPref.set(item.priority, group);
  }
  const out: T[] = [];
  for (const pref of [...byPref.keys()].sort((a, b) => a - b)) {
    const group = byPref.get(pref)!.slice();
    for (let i = group.length - 1; i > 0; i--) {
      const j = Math.floor(random() * (i + 1));
      [group[i], group[j]] = [group[j], group[i]];
    }
    out.push(...group);
  }
  return out;
}

export function createMxResolver(opts: MxResolverOptions): MxResolver {
  const resolver = new Resolver({ timeout: opts.timeoutMs ?? 3000, tries: opts.tries ?? 2 });
  if (opts.servers.length) resolver.setServers(opts.servers);
  const cacheMs = opts.cacheMs ?? 60_000;
  const negativeMs = cacheMs === 0 ? 0 : (opts.negativeCacheMs ?? 10_000);
  const maxHosts = opts.maxHosts ?? 10;
  const now = opts.now ?? Date.now;
  const random = opts.random ?? Math.random;
  const cache = new Map<string, { expires: number; value: Lookup }>();
  const inFlight = new Map<string, Promise<Lookup>>();

  /** Addresses of one name, A then AAAA; [] when it has none or does not exist. */
  async function addressesOf(name: string): Promise<string[]> {
    if (net.isIP(name)) return [name];
    const [v4, v6] = await Promise.allSettled([resolver.resolve4(name), resolver.resolve6(name)]);
    const out: string[] = [];
    let temp: unknown;
    for (const r of [v4, v6]) {
      if (r.status === 'fulfilled') out.push(...r.value);
      else if (!['ENODATA', 'ENOTFOUND'].includes(errCode(r.reason))) temp = r.reason;
    }
    // One family answering is enough to deliver; only when nothing answered does a
    // temporary failure of the other family matter.
    if (!out.length && temp !== undefined) throw tempError(`A/AAAA ${name}`, temp);
    return out;
  }

  async function lookup(domain: string): Promise<Lookup> {
    // RFC 5321 §4.1.3 address literal: user@[192.0.2.1] / user@[IPv6:2001:db8::1].
    const literal = /^\[(?:ipv6:)?([^\]]+)\]$/.exec(domain);
    if (literal) {
      const ip = literal[1];
      return net.isIP(ip) ? { kind: 'hosts', hosts: [{ exchange: ip, priority: 0, addresses: [ip] }] } : { kind: 'nxdomain' };
    }

    let records: RawMx[];
    try {
      records = await resolver.resolveMx(domain);
    } catch (e) {
      const code = errCode(e);
      if (code === 'ENOTFOUND') return { kind: 'nxdomain' };
      if (code !== 'ENODATA') throw tempError(`MX ${domain}`, e);
      records = [];
    }

    const mx = records.map((r) => ({ exchange: r.exchange.replace(/\.$/, '').toLowerCase(), priority: r.priority }));
    // RFC 7505: a null MX is one record whose exchange is the root ('.', which node
    // reports as ''). Stray null records next to real ones are ignored (§4.3).
    const real = mx.filter((r) => r.exchange !== '');
    if (mx.length && !real.length) return { kind: 'null-mx' };

    if (!real.length) {
      // RFC 5321 §5.1: no MX at all → the domain itself is the implicit MX, preference 0.
      const addresses = await addressesOf(domain);
      return addresses.length ? { kind: 'hosts', hosts: [{ exchange: domain, priority: 0, addresses }] } : { kind: 'no-address' };
    }

    const unique = [...new Map(real.map((r) => [r.exchange, r])).values()]
      .sort((a, b) => a.priority - b.priority)
      .slice(0, maxHosts);
    const settled = await Promise.allSettled(unique.map((r) => addressesOf(r.exchange)));
    const hosts: MxHost[] = [];
    let temp: unknown;
    settled.forEach((s, i) => {
      if (s.status === 'rejected') temp = s.reason;
      else if (s.value.length) hosts.push({ ...unique[i], addresses: s.value });
    });
    if (hosts.length) return { kind: 'hosts', hosts };
    // Some exchange could not be looked up right now: it may have addresses, so defer.
    if (temp !== undefined) throw temp;
    return { kind: 'no-address' };
  }

  /** Keeps the cache bounded: drop what expired, then the oldest entries. */
  function sweep(): void {
    const t = now();
    for (const [k, v] of cache) if (v.expires <= t) cache.delete(k);
    for (const k of cache.keys()) {
      if (cache.size < MAX_CACHE_ENTRIES) break;
      cache.delete(k);
    }
  }

  function present(value: Lookup): MxResult {
    if (value.kind !== 'hosts') return value;
    // Shuffle on every call, not once per cache entry, so equal-preference MX hosts share
    // the load even while the answer is cached.
    return { kind: 'hosts', hosts: orderByPreference(value.hosts, random).map((h) => ({ ...h, addresses: [...h.addresses] })) };
  }

  return {
    async resolve(rawDomain: string): Promise<MxResult> {
      const literal = /^\[.*\]$/.test(rawDomain.trim());
      const domain = literal ? rawDomain.trim().toLowerCase() : normaliseDomain(rawDomain);
      if (!domain) return { kind: 'nxdomain' };

      const hit = cache.get(domain);
      if (hit && hit.expires > now()) return present(hit.value);
      if (hit) cache.delete(domain);

      let pending = inFlight.get(domain);
      if (!pending) {
        pending = lookup(domain).finally(() => inFlight.delete(domain));
        inFlight.set(domain, pending);
      }
      const value = await pending;
      const ttl = value.kind === 'hosts' ? cacheMs : negativeMs;
      if (ttl > 0) {
        if (cache.size >= MAX_CACHE_ENTRIES) sweep();
        cache.set(domain, { expires: now() + ttl, value });
      }
      return present(value);
    },
  };
}
