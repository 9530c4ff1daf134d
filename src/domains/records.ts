// The DNS records a sending domain publishes (SPEC §3 `domain add`, §8 verify).
// Pure: the same input always yields the same records, and verify.ts checks
// exactly these names, so what we tell users to publish is what we look up.
import { isIP } from 'node:net';
import { dkimRecordValue, type DkimAlgorithm } from '../dkim/keys.js';

export type DnsRecordPurpose = 'spf' | 'dkim' | 'return-path' | 'dmarc' | 'tracking';

export interface DnsRecord {
  /** A/AAAA only for a tracking host whose target is an IP address (a CNAME cannot point at one). */
  type: 'TXT' | 'MX' | 'CNAME' | 'A' | 'AAAA';
  /** Full name, no trailing dot. */
  name: string;
  /** TXT whole and unsplit; MX as `10 host`. */
  value: string;
  purpose: DnsRecordPurpose;
  note?: string;
}

export interface DomainKeyInfo {
  selector: string;
  algorithm: DkimAlgorithm;
  publicKeyB64: string;
}

export interface DomainDnsInput {
  domain: string;
  keys: DomainKeyInfo[];
  /** Addresses (or CIDR ranges) mail leaves from; empty when unknown. */
  publicIps: string[];
  spfInclude?: string;
  /** HELO name of the gateway. */
  hostname: string;
  trackingHost?: string;
  /** Host of http.publicUrl (a `:port` suffix is ignored). */
  trackingTarget: string;
}

/** Lower-case, no trailing dot: the form DNS names are compared in. */
export function normalizeName(name: string): string {
  return name.trim().toLowerCase().replace(/\.+$/, '');
}

/** Bounces for envelope senders @bounces.{domain} route to the gateway via this name. */
export const returnPathName = (domain: string): string => `bounces.${normalizeName(domain)}`;
export const dkimName = (selector: string, domain: string): string =>
  `${selector.trim().toLowerCase()}._domainkey.${normalizeName(domain)}`;
export const dmarcName = (domain: string): string => `_dmarc.${normalizeName(domain)}`;

/** `host:8080` → `host`; `[::1]:8080` → `::1`. */
export function stripPort(host: string): string {
  const h = host.trim();
  const bracket = /^\[([^\]]+)\](?::\d+)?$/.exec(h);
  if (bracket) return bracket[1];
  if (isIP(h) === 6) return h;
  return h.replace(/:\d+$/, '');
}

/** SPF mechanisms that authorize the gateway, in the order we recommend them. */
export function spfMechanisms(input: Pick<DomainDnsInput, 'publicIps' | 'spfInclude' | 'hostname'>): string[] {
  const out: string[] = [];
  for (const raw of input.publicIps) {
    const ip = raw.trim();
    if (!ip) continue;
    const family = isIP(ip.split('/')[0]);
    if (family === 4) out.push(`ip4:${ip}`);
    else if (family === 6) out.push(`ip6:${ip}`);
  }
  if (input.spfInclude) out.push(`include:${normalizeName(input.spfInclude)}`);
  // Without known addresses, authorize whatever the HELO name resolves to.
  if (out.length === 0) out.push(`a:${normalizeName(input.hostname)}`);
  return out;
}

export function spfValue(input: Pick<DomainDnsInput, 'publicIps' | 'spfInclude' | 'hostname'>): string {
  // ~all (softfail), not -all: a starter record must not make receivers reject
  // mail from senders the domain owner has not listed yet; DMARC decides policy.
  return ['v=spf1', ...spfMechanisms(input), '~all'].join(' ');
}

export function dmarcValue(domain: string): string {
  return `v=DMARC1; p=none; rua=mailto:dmarc-reports@${normalizeName(domain)}`;
}

export function recordsFor(input: DomainDnsInput): DnsRecord[] {
  const domain = normalizeName(input.domain);
  const hostname = normalizeName(input.hostname);
  const spf = spfValue(input);
  const records: DnsRecord[] = [
    {
      type: 'TXT',
      name: domain,
      value: spf,
      purpose: 'spf',
      note:
        `A domain may have only one SPF record (two are a permerror, RFC 7208 §4.5). ` +
        `If ${domain} already has one, add "${spfMechanisms(input).join(' ')}" to it, before its "all" term, ` +
        `instead of publishing a second record.`,
    },
  ];
  for (const key of input.keys) {
    records.push({
      type: 'TXT',
      name: dkimName(key.selector, domain),
      value: dkimRecordValue(key.algorithm, key.publicKeyB64),
      purpose: 'dkim',
      note:
        'Publish the value whole. DNS strings hold at most 255 characters: most DNS panels split it ' +
        'themselves; in a zone file write it as several quoted strings, which resolvers join back together.',
    });
  }
  records.push({
    type: 'MX',
    name: returnPathName(domain),
    value: `10 ${hostname}`,
    purpose: 'return-path',
    note:
      `Advisory. Lets asynchronous bounces for envelope senders @${returnPathName(domain)} reach this gateway ` +
      `(${hostname}). If you send with such envelope senders, publish the SPF record on that name too.`,
  });
  records.push({
    type: 'TXT',
    name: dmarcName(domain),
    value: dmarcValue(domain),
    purpose: 'dmarc',
    note:
      'Advisory starter policy: p=none only collects reports. Move to p=quarantine, then p=reject, ' +
      'once the reports show that all your legitimate mail passes SPF or DKIM.',
  });
  if (input.trackingHost) {
    const target = normalizeName(stripPort(input.trackingTarget));
    const family = isIP(target);
    records.push({
      type: family === 4 ? 'A' : family === 6 ? 'AAAA' : 'CNAME',
      name: normalizeName(input.trackingHost),
      value: target,
      purpose: 'tracking',
      note: 'Points tracking links (opens, clicks, unsubscribe) on your own host name at this gateway.',
    });
  }
  return records;
}
