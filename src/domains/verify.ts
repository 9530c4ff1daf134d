// Live check of a domain's DNS against recordsFor() (SPEC §8 verify). The DNS
// edge: every lookup goes through one Resolver on the configured servers.
import { createPublicKey } from 'node:crypto';
import { Resolver } from 'node:dns/promises';
import { isIP } from 'node:net';
import { spf } from 'mailauth';
import { parseDkimRecord } from '../dkim/keys.js';
import {
  normalizeName,
  recordsFor,
  spfMechanisms,
  type DnsRecord,
  type DomainDnsInput,
  type DomainKeyInfo,
} from './records.js';

export type CheckStatus = 'pass' | 'fail' | 'missing';

export interface RecordCheck {
  type: string;
  name: string;
  expected: string;
  found: string[];
  status: CheckStatus;
  purpose: string;
  /** A lookup failure (SERVFAIL, timeout, …): we could not tell what is published. */
  error?: string;
  /** Why a record that was found does not pass. */
  detail?: string;
}

export interface VerifyResult {
  domain: string;
  verified: boolean;
  records: RecordCheck[];
}

export interface VerifyDeps {
  /** `ip` or `ip:port`; empty → the system resolvers. */
  dnsServers: string[];
  /** Rough upper bound for one lookup. Default 3000 ms. */
  timeoutMs?: number;
}

type Lookup<T> = { ok: true; value: T } | { ok: false; missing: true } | { ok: false; missing: false; error: string };

const MISSING_CODES = new Set(['ENOTFOUND', 'ENODATA']);

function describe(err: unknown, type: string, name: string): string {
  const code = (err as { code?: string }).code ?? '';
  if (code === 'ETIMEOUT') return `timeout resolving ${type} ${name}`;
  if (code === 'ESERVFAIL') return `SERVFAIL resolving ${type} ${name}`;
  return `${code || 'error'} resolving ${type} ${name}: ${(err as Error).message}`;
}

export function createDnsResolver(deps: VerifyDeps): Resolver {
  const total = deps.timeoutMs ?? 3000;
  // Two tries of total/2: one lost UDP packet is survived and a dead server
  // costs about `total` (measured: 3000 → 2.0–3.0 s; c-ares has a floor of a
  // few hundred ms for very small values).
  const resolver = new Resolver({ timeout: Math.max(50, Math.ceil(total / 2)), tries: 2 });
  if (deps.dnsServers.length) resolver.setServers(deps.dnsServers);
  return resolver;
}

async function lookup<T>(run: () => Promise<T>, type: string, name: string): Promise<Lookup<T>> {
  try {
    return { ok: true, value: await run() };
  } catch (err) {
    // NXDOMAIN and "no records of this type" both mean nothing is published;
    // anything else means we do not know, and must not claim "missing".
    if (MISSING_CODES.has((err as { code?: string }).code ?? '')) return { ok: false, missing: true };
    return { ok: false, missing: false, error: describe(err, type, name) };
  }
}

/** TXT character-strings of one record are concatenated with no separator (RFC 7208 §3.3, RFC 6376 §3.6.2.2). */
const joinTxt = (rows: string[][]): string[] => rows.map((r) => r.join(''));

const check = (rec: DnsRecord, found: string[], status: CheckStatus, extra: Partial<RecordCheck> = {}): RecordCheck => ({
  type: rec.type,
  name: rec.name,
  expected: rec.value,
  found,
  status,
  purpose: rec.purpose,
  ...extra,
});

function fromLookupFailure(rec: DnsRecord, r: Exclude<Lookup<unknown>, { ok: true }>): RecordCheck {
  return r.missing ? check(rec, [], 'missing') : check(rec, [], 'fail', { error: r.error });
}

async function checkSpf(rec: DnsRecord, input: DomainDnsInput, resolver: Resolver): Promise<RecordCheck> {
  const domain = rec.name;
  const txt = await lookup(() => resolver.resolveTxt(domain), 'TXT', domain);
  if (!txt.ok) return fromLookupFailure(rec, txt);
  const spfRecords = joinTxt(txt.value).filter((r) => /^v=spf1(\s|$)/i.test(r.trim()));
  if (spfRecords.length === 0) return check(rec, [], 'missing');
  if (spfRecords.length > 1) {
    return check(rec, spfRecords, 'fail', { detail: 'more than one v=spf1 record: receivers treat that as a permerror (RFC 7208 §4.5)' });
  }

  let ips = input.publicIps.map((ip) => ip.trim().split('/')[0]).filter((ip) => isIP(ip));
  if (ips.length === 0) {
    const host = normalizeName(input.hostname);
    const [a, aaaa] = await Promise.all([
      lookup(() => resolver.resolve4(host), 'A', host),
      lookup(() => resolver.resolve6(host), 'AAAA', host),
    ]);
    ips = [...(a.ok ? a.value : []), ...(aaaa.ok ? aaaa.value : [])];
    const failed = [a, aaaa].find((r): r is { ok: false; missing: false; error: string } => !r.ok && !r.missing);
    if (ips.length === 0 && failed) return check(rec, spfRecords, 'fail', { error: failed.error });
  }
  if (ips.length === 0) {
    // No configured address and the HELO name does not resolve: there is no
    // IP to evaluate the record for, so the best evidence available is that
    // the record names the mechanism we asked for. Receivers will evaluate it
    // against the real sending address once the host name resolves.
    const terms = spfRecords[0].toLowerCase().split(/\s+/);
    const wanted = spfMechanisms({ publicIps: [], spfInclude: input.spfInclude, hostname: input.hostname });
    const ok = wanted.some((m) => terms.includes(m) || terms.includes(`+${m}`));
    return check(rec, spfRecords, ok ? 'pass' : 'fail', ok ? {} : { detail: `record does not contain ${wanted.join(' or ')}` });
  }

  // Evaluate, do not string-match: includes, redirects, a/mx mechanisms and
  // CIDR ranges all authorize an address without spelling it out.
  const dnsResolve = async (name: string, rrtype: string) => {
    try {
      return await resolver.resolve(name, rrtype as 'TXT');
    } catch (err) {
      // mailauth tags only ETIMEOUT/EREFUSED as temperror and silently skips
      // an include: whose lookup failed otherwise (SERVFAIL), turning "we do
      // not know" into softfail. RFC 7208 §5.2: that is a temperror.
      const e = err as Error & { code?: string; spfResult?: unknown };
      if (!MISSING_CODES.has(e.code ?? '') && !e.spfResult) {
        e.spfResult = { error: 'temperror', text: describe(e, rrtype, name) };
      }
      throw e;
    }
  };
  const results = await Promise.all(
    ips.map(async (ip) => {
      const res = await spf({
        sender: `postmaster@${domain}`,
        ip,
        helo: normalizeName(input.hostname),
        mta: normalizeName(input.hostname),
        resolver: dnsResolve as never,
      });
      return { ip, result: res.status.result, comment: (res.status as { comment?: string }).comment };
    }),
  );
  const bad = results.filter((r) => r.result !== 'pass');
  if (bad.length === 0) return check(rec, spfRecords, 'pass');
  const temp = bad.find((r) => r.result === 'temperror');
  if (temp) return check(rec, spfRecords, 'fail', { error: `SPF evaluation for ${temp.ip}: ${temp.comment ?? 'temperror'}` });
  return check(rec, spfRecords, 'fail', {
    detail: bad.map((r) => `${r.ip}: ${r.result}`).join(', ') + ' (every sending address must get "pass")',
  });
}

/** RSA keys may be published as SPKI or bare PKCS#1; compare the key, not the encoding. */
function sameKey(algorithm: DomainKeyInfo['algorithm'], published: string, ours: string): boolean {
  if (published === ours) return true;
  if (algorithm !== 'rsa' || !published) return false;
  const spki = (b64: string): string | null => {
    const der = Buffer.from(b64, 'base64');
    for (const type of ['spki', 'pkcs1'] as const) {
      try {
        return createPublicKey({ key: der, format: 'der', type }).export({ type: 'spki', format: 'der' }).toString('base64');
      } catch {
        /* try the next encoding */
      }
    }
    return null;
  };
  const a = spki(published);
  return a !== null && a === spki(ours);
}

async function checkDkim(rec: DnsRecord, key: DomainKeyInfo, resolver: Resolver): Promise<RecordCheck> {
  const txt = await lookup(() => resolver.resolveTxt(rec.name), 'TXT', rec.name);
  if (!txt.ok) return fromLookupFailure(rec, txt);
  const found = joinTxt(txt.value);
  for (const row of found) {
    const tags = parseDkimRecord(row);
    if (tags.v !== undefined && tags.v !== 'DKIM1') continue;
    // RFC 6376 §3.6.1: k= defaults to rsa, so an ed25519 key needs k=ed25519.
    if ((tags.k ?? 'rsa').toLowerCase() !== key.algorithm) continue;
    if (sameKey(key.algorithm, tags.p ?? '', key.publicKeyB64)) return check(rec, found, 'pass');
  }
  if (found.length === 0) return check(rec, found, 'missing');
  return check(rec, found, 'fail', { detail: `no record at ${rec.name} publishes this ${key.algorithm} key` });
}

async function checkMx(rec: DnsRecord, hostname: string, resolver: Resolver): Promise<RecordCheck> {
  const mx = await lookup(() => resolver.resolveMx(rec.name), 'MX', rec.name);
  if (!mx.ok) return fromLookupFailure(rec, mx);
  const found = mx.value.map((m) => `${m.priority} ${normalizeName(m.exchange)}`);
  if (found.length === 0) return check(rec, found, 'missing');
  const ok = mx.value.some((m) => normalizeName(m.exchange) === hostname);
  return check(rec, found, ok ? 'pass' : 'fail', ok ? {} : { detail: `no MX exchange is ${hostname}` });
}

async function checkDmarc(rec: DnsRecord, resolver: Resolver): Promise<RecordCheck> {
  const txt = await lookup(() => resolver.resolveTxt(rec.name), 'TXT', rec.name);
  if (!txt.ok) return fromLookupFailure(rec, txt);
  const found = joinTxt(txt.value).filter((r) => /^v\s*=\s*DMARC1\s*(;|$)/i.test(r.trim()));
  // Any DMARC policy satisfies this advisory check: the owner's own policy wins over our starter.
  return check(rec, found, found.length ? 'pass' : 'missing');
}

async function checkTracking(rec: DnsRecord, resolver: Resolver): Promise<RecordCheck> {
  const target = rec.value;
  if (rec.type === 'CNAME') {
    const r = await lookup(() => resolver.resolveCname(rec.name), 'CNAME', rec.name);
    if (!r.ok) return fromLookupFailure(rec, r);
    const found = r.value.map(normalizeName);
    if (found.length === 0) return check(rec, found, 'missing');
    const ok = found.includes(target);
    return check(rec, found, ok ? 'pass' : 'fail', ok ? {} : { detail: `CNAME does not point at ${target}` });
  }
  const r = await lookup(() => (rec.type === 'A' ? resolver.resolve4(rec.name) : resolver.resolve6(rec.name)), rec.type, rec.name);
  if (!r.ok) return fromLookupFailure(rec, r);
  const ok = r.value.includes(target);
  return check(rec, r.value, ok ? 'pass' : r.value.length ? 'fail' : 'missing');
}

export async function verifyDomain(input: DomainDnsInput, deps: VerifyDeps): Promise<VerifyResult> {
  const resolver = createDnsResolver(deps);
  const records = recordsFor(input);
  const hostname = normalizeName(input.hostname);
  let dkimIndex = 0; // recordsFor() emits one DKIM record per key, in key order
  const checks = await Promise.all(
    records.map((rec): Promise<RecordCheck> => {
      switch (rec.purpose) {
        case 'spf':
          return checkSpf(rec, input, resolver);
        case 'dkim':
          return checkDkim(rec, input.keys[dkimIndex++], resolver);
        case 'return-path':
          return checkMx(rec, hostname, resolver);
        case 'dmarc':
          return checkDmarc(rec, resolver);
        case 'tracking':
          return checkTracking(rec, resolver);
      }
    }),
  );
  const spfOk = checks.some((c) => c.purpose === 'spf' && c.status === 'pass');
  const dkim = checks.filter((c) => c.purpose === 'dkim');
  return {
    domain: normalizeName(input.domain),
    // SPF and DKIM decide deliverability; MX, DMARC and tracking are advisory.
    verified: spfOk && dkim.length > 0 && dkim.every((c) => c.status === 'pass'),
    records: checks,
  };
}
