// The Received trace field a relay must add (RFC 5321 §4.4) at the top of each
// message it accepts: who handed it over, to which host, how, under which id,
// and when. It is what a postmaster reads to follow a message through hops,
// and it carries our queue id, the one `relaygate` and the API show.

/** How the message reached us. */
export interface Trace {
  /** The EHLO/HELO argument, as the client sent it. */
  helo?: string;
  clientAddress?: string;
  /** RFC 3848 protocol name (ESMTP, ESMTPA, ESMTPS, ESMTPSA, SMTP) or HTTP for the API. */
  protocol: string;
}

/** The client's HELO name as a trace token: it is the client's text, so only the characters a hostname or address literal has. */
function heloToken(helo: string | undefined): string {
  const s = (helo ?? '').trim();
  return s.length <= 255 && /^[A-Za-z0-9.:_[\]-]+$/.test(s) ? s : 'unknown';
}

/** The address as it goes between brackets: IPv4-mapped IPv6 shown as IPv4 (what the client connected from). */
function addressToken(ip: string | undefined): string {
  if (!ip) return 'unknown';
  const v4 = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(ip);
  if (v4) return v4[1];
  return /^[0-9A-Fa-f:.]+$/.test(ip) ? (ip.includes(':') ? `IPv6:${ip}` : ip) : 'unknown';
}

/** RFC 5322 §3.3 date-time in UTC. */
export function rfc5322Date(ms: number): string {
  return new Date(ms).toUTCString().replace('GMT', '+0000');
}

/**
 * The Received field, folded over three lines. `for` names the recipient only when there
 * is exactly one: listing them all would tell every recipient who else got it (Bcc).
 */
export function receivedHeader(t: Trace, o: { hostname: string; id: string; at: number; recipients: string[] }): string {
  const from = t.protocol === 'HTTP' ? '' : `from ${heloToken(t.helo)} ([${addressToken(t.clientAddress)}])\r\n\t`;
  const forClause = o.recipients.length === 1 ? `\r\n\tfor <${o.recipients[0]}>` : '';
  return `Received: ${from}by ${o.hostname} (relaygate) with ${t.protocol} id ${o.id}${forClause};\r\n\t${rfc5322Date(o.at)}`;
}
