// Address syntax for the submission edge. Deliberately stricter than RFC 5321:
// a submission service has no business accepting source routes, %-hacks, bang
// paths, quoted local parts or IP-literal domains, all classic open-relay tricks.
import { domainToASCII } from 'node:url';

export interface ParsedAddress {
  local: string;
  /** Lowercase ASCII (punycode) domain. */
  domain: string;
  /** local@domain with the normalised domain. */
  address: string;
}

const LOCAL_ATOM = /^[A-Za-z0-9!#$&'*+\/=?^_`{|}~\u0080-\uFFFF-]+(\.[A-Za-z0-9!#$&'*+\/=?^_`{|}~\u0080-\uFFFF-]+)*$/u;
const LABEL = /^(?!-)[a-z0-9-]{1,63}(?<!-)$/;

export function parseAddress(input: string): ParsedAddress | null {
  const s = input.trim();
  if (!s || s.length > 320 || /[\r\n\0\s<>()\[\],;:"\\]/.test(s)) return null;
  // U+FFFD is what bytes that were not UTF-8 decode to: the client sent an address we cannot
  // read (RFC 6531 wants UTF-8), and accepting it would relay a different one.
  if (s.includes('\uFFFD')) return null;
  const at = s.lastIndexOf('@');
  if (at <= 0 || at === s.length - 1) return null;
  const local = s.slice(0, at);
  const rawDomain = s.slice(at + 1);
  if (local.length > 64 || !LOCAL_ATOM.test(local)) return null;
  // '%' and '!' route mail onward on some old MTAs (user%other@host, host!user).
  if (/[%!]/.test(local)) return null;
  const domain = normaliseDomain(rawDomain);
  if (!domain) return null;
  return { local, domain, address: `${local}@${domain}` };
}

/** Lowercase punycode form of a host name, or null when it is not a valid one. */
export function normaliseDomain(input: string): string | null {
  if (!input || input.endsWith('.') || input.startsWith('.')) return null;
  // domainToASCII drops tab, CR and LF (WHATWG URL rules), so "a.test\r\nb" would quietly
  // become the domain "a.testb": control characters and spaces make the name invalid instead.
  if (/[\x00-\x20\x7f\uFFFD]/.test(input)) return null;
  const ascii = domainToASCII(input.toLowerCase());
  if (!ascii || ascii.length > 253) return null;
  const labels = ascii.split('.');
  if (labels.length < 2) return null;
  if (!labels.every((l) => LABEL.test(l))) return null;
  // All-numeric TLD means an IP address written as a domain.
  if (/^\d+$/.test(labels[labels.length - 1])) return null;
  return ascii;
}

/** True when `domain` is `parent` or one of its subdomains. */
export function isWithinDomain(domain: string, parent: string): boolean {
  return domain === parent || domain.endsWith(`.${parent}`);
}
