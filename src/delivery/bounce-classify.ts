// Bounce classification: a permanent remote reply → one of seven classes (SPEC §6).
//
// Pure: text in, class out. The rules are data so that a new provider phrasing is one
// line in a table, not a new branch.
//
// Why text first: providers misuse enhanced status codes (RFC 3463). GoDaddy answers a
// sender rate limit with `550 5.1.1 <x> has sent to too many recipients this hour`,
// Gmail answers a recipient rate limit with 5.2.1, Microsoft answers "user unknown" at
// its edge with `5.4.1 Recipient address rejected: Access denied`. So the wording of the
// whole reply (every line of a multi-line reply) decides, and the enhanced code is only
// a fallback when the wording says nothing decisive.

export type BounceClass =
  | 'bad-mailbox'
  | 'bad-domain'
  | 'mailbox-full'
  | 'message-too-large'
  | 'policy'
  | 'spam'
  | 'other';

export interface TextRule {
  class: BounceClass;
  /** Tested against the normalised reply text (see normaliseReplyText). */
  text: RegExp;
  /** Optional: the rule applies only when the enhanced code matches too. */
  enhanced?: RegExp;
  /** Why the rule exists (a provider, a phrasing), for whoever edits the table. */
  note: string;
}

export interface CodeRule {
  class: BounceClass;
  /** Tested against the enhanced code `class.subject.detail`, e.g. `5.1.1`. */
  enhanced: RegExp;
  note: string;
}

// Ordered: the first match wins. Groups go from the most specific wording to the most
// generic, because one reply often carries words of several classes (a Gmail IP block
// says "spam", an Exim sender-verify failure says "Unrouteable address").
export const TEXT_RULES: readonly TextRule[] = [
  // Loops are not the recipient's fault nor ours; they say so explicitly.
  { class: 'other', text: /mail loop|loops back to myself|hop count exceeded|too many hops/, note: 'routing loop (5.4.6, MS 5.4.14)' },

  // Rate limits — before anything mailbox-shaped: GoDaddy 5.1.1, Gmail 5.2.1/5.4.5.
  { class: 'policy', text: /too many (recipients|messages|connections|emails|mails|sessions)/, note: 'GoDaddy, Postfix, Exim rate limits' },
  { class: 'policy', text: /rate.?limit|at a rate that prevents|unusual rate|(frequency|connections?) limited|sending limit|(daily|hourly|user) (sending )?(limit|quota)|unusual sending activity|exceeded .{0,30}(sending|send|outbound|relay) (limit|quota)/, note: 'Gmail 5.2.1/5.4.5, QQ frequency limited, Zoho 5.4.6' },
  { class: 'policy', text: /\brp:(trc|rcl|qrc|cen)\b|\bhl:(ic[cr]|mep|rcl)\b/, note: 'NetEase 163/126 rate codes' },

  // Something about the SENDER was refused: policy even when a mailbox word follows.
  { class: 'policy', text: /sender (verify|verification) failed|sender address rejected|sender (is |address is )?(blocked|banned|blacklisted|denied|not allowed|rejected)|envelope blocked|blocked senders?|not owned by user|null sender is not allowed|sender('s)? (domain|address)( name)?( [a-z0-9.-]+\.[a-z0-9-]+)? (does not exist|doesn't exist|not found|has no|must (exist|resolve))|domain of sender address/, note: 'Exim sender verify, Postfix sender checks, Mimecast' },
  { class: 'policy', text: /relay(ing)? (access )?(denied|disallowed|not (permitted|allowed))|not permitted to relay|unable to relay|relay not permitted|list of allowed rcpthosts|not allowed to relay/, note: 'relay refused (Postfix, Sendmail, qmail, Zoho)' },

  // The domain itself.
  { class: 'bad-domain', text: /domain (name )?([a-z0-9.-]+\.[a-z0-9-]+ )?(does not exist|doesn't exist|not found|is not found|unknown)|\bnxdomain\b|no such domain|host or domain name not found|host unknown|unknown (recipient )?domain|find the recipient domain|null mx|no mx (record|for)|(domain|host) (does not|doesn't|will not) accept (e-?)?mail|dns domain .{0,60}does not exist|infodomainnonexistent/, note: 'Postfix, Sendmail, Gmail 5.1.2, MS 5.4.310, RFC 7505' },

  // Quota — before size, since "mailbox size limit" is a quota, not a message size.
  { class: 'mailbox-full', text: /mailbox (is )?full|mailbox (size|storage) (limit )?(exceeded|full)|over (the |their |his |her )?(storage )?quota|quota (exceeded|exceed|full)|quotaexceeded|exceeded (the )?(storage|mailbox) (allocation|quota|limit)|insufficient (disk |storage )?space|(mailbox|inbox) has exceeded|out of storage|邮箱(空间)?已满|空间不足|容量不足/, note: 'Gmail 5.2.2, MS STOREDRV, Dovecot, Zoho, iCloud' },

  { class: 'message-too-large', text: /message (size )?(exceeds|exceeded|is too (big|large)|too (big|large))|(exceeded|exceeds) .{0,40}message size|message size (limit|exceeds)|size limit|maximum (fixed |permitted )?(message )?size|exceeds maximum (fixed )?size|mailsize limit|too large|size exceeds|邮件(大小)?超(过|出)/, note: 'Postfix 5.3.4, Sendmail 5.2.3, Exim, Gmail, NetEase' },

  // The mailbox: explicit wording.
  { class: 'bad-mailbox', text: /recipient address rejected: access denied/, note: 'Microsoft EOP directory-based edge blocking (5.4.1): recipient unknown' },
  { class: 'bad-mailbox', text: /user unknown|unknown user|no such (user|mailbox|recipient|address|account)|user (not found|does not exist|doesn't exist)|(recipient|mailbox|address|account) (not found|does not exist|doesn't exist|unknown|unavailable or not found)|recip(ient)?notfound|does not exist|doesn't have an? .{0,20}account|invalid (recipient|mailbox|address|user)|not a valid (recipient|mailbox|user)|no mailbox here|mailbox not found|unknown (recipient|mailbox|address|local part)|user suspended|(account|mailbox|address|user) (is |has been )?(disabled|deactivated|inactive|suspended|closed|expired|no longer (active|available))|not listed in (our|the|public) (directory|address book)|用户不存在|不存在/, note: 'Postfix, Sendmail, Gmail 5.1.1, MS 5.1.10, Yahoo dd, QQ, NetEase, Zoho, iCloud' },

  // Policy: blocklists, reputation, IP, authentication. Before spam: "spamhaus",
  // "unsolicited mail originating from your IP" are about the sender, not the content.
  { class: 'spam', text: /uribl|surbl|dbl\.spamhaus|blocked url|url (is )?(blocked|blacklisted|listed)/, note: 'URI blocklists judge the links in the content, not the sender' },
  { class: 'policy', text: /blocked using|listed (at|in|on|by)|in an rbl|\brbl\b|dnsbl|block ?list|black ?list|spamhaus|spamcop|barracuda|sorbs|uceprotect|(reputation)|ipcheck\.proofpoint|\(s3150\)|\[bl\d+\]|banned sending ip|traffic not accepted from this ip|from your ip|your ip (address )?(has been|is|was)|ip (address )?(is |has been )?(blocked|banned|blacklisted|not allowed|rejected)|client host (\S+ )?(rejected|blocked)|connections will not be accepted|ip netblock|发送方ip/, note: 'Spamhaus, Barracuda, Proofpoint, Outlook S3150/5.7.606/5.7.708, Yahoo BL, Gmail IP reputation' },
  { class: 'policy', text: /\bspf\b|\bdkim\b|\bdmarc\b|sender policy framework|unauthenticated|not authenticated|authentication (required|failed)|authrequired|sendernotauthenticated|ptr record|reverse (dns|hostname)|\brdns\b|anti-?spoofing|\bmi:(spf|dmc|spb)\b/, note: 'SPF/DKIM/DMARC (Gmail 5.7.26, MS 5.7.509, Yahoo 5.7.9), PTR (Gmail 5.7.25)' },

  // Content judged to be spam (or malware — content refused as harmful).
  { class: 'spam', text: /spam|unsolicited|junk ?mail|bulk mail|content (denied|rejected|blocked|filter)|message content|(content|message) (was |has been )?(identified|detected|classified|considered|determined|flagged) as|potential security issue|virus|malware|infected|phishing|\bdt:spm\b|垃圾邮件/, note: 'Gmail 5.7.1 unsolicited, QQ content denied, NetEase DT:SPM, cPanel SpamAssassin' },

  // Generic policy words.
  { class: 'policy', text: /polic(y|ies)|not authori[sz]ed|access denied|administrative prohibition|prohibited|not allowed|not permitted|blocked|banned|rejected by recipient|refused to talk|no permission|\bforwarding\b/, note: 'generic policy wording (Postfix, Exim, Mimecast, Yahoo 5.7.9, QQ)' },

  // Generic mailbox wording, weakest of all.
  { class: 'bad-mailbox', text: /mailbox unavailable|unrouteable address|recipient (address )?rejected|address rejected|invalid (e-?mail|destination)/, note: 'RFC 5321 550 default text, Exim unrouteable' },
];

// Fallback on the enhanced code when no wording matched. Exact details first.
export const CODE_RULES: readonly CodeRule[] = [
  { class: 'bad-mailbox', enhanced: /^5\.1\.(1|3|6|10)$/, note: 'bad mailbox, syntax, moved, MS RecipientNotFound' },
  { class: 'bad-mailbox', enhanced: /^5\.2\.1$/, note: 'mailbox disabled' },
  { class: 'bad-mailbox', enhanced: /^5\.7\.13$/, note: 'RFC 7372 user account disabled' },
  { class: 'bad-domain', enhanced: /^5\.1\.2$|^5\.4\.4$|^5\.4\.310$/, note: 'bad destination system, unable to route, MS DNS domain does not exist' },
  { class: 'mailbox-full', enhanced: /^5\.2\.2$/, note: 'mailbox full' },
  { class: 'message-too-large', enhanced: /^5\.2\.3$|^5\.3\.4$/, note: 'message length exceeds limit' },
  { class: 'policy', enhanced: /^5\.1\.[78]$/, note: 'bad sender address / sender system' },
  { class: 'policy', enhanced: /^5\.7\.\d+$/, note: 'security or policy status' },
];

/** 5xx: a permanent failure (RFC 5321 §4.2.1). 4xx is a deferral, never a bounce. */
export function isPermanent(code: number): boolean {
  return code >= 500 && code <= 599;
}

/** The first three-digit reply code of a reply, or undefined. */
export function replyCode(reply: string): number | undefined {
  const m = /^\s*([2-5]\d\d)(?=[ -]|$)/.exec(reply);
  return m ? Number(m[1]) : undefined;
}

/** The first RFC 3463 enhanced code that follows a reply code on any line. */
export function enhancedCode(reply: string): string | undefined {
  const m = /(?:^|\n)\s*[2-5]\d\d[ -]+([245]\.\d{1,3}\.\d{1,3})\b/.exec(reply);
  if (m) return m[1];
  // Some servers put the enhanced code at the end: qmail `(#5.7.1)`, Yahoo `(554.30)` is not one.
  const tail = /\(#([245]\.\d{1,3}\.\d{1,3})\)/.exec(reply);
  return tail ? tail[1] : undefined;
}

/**
 * One lowercase line of text: reply codes and enhanced codes removed from every line of a
 * multi-line reply, and e-mail addresses removed — an address such as
 * `<mailbox-full@x>` or `spam@x` must not decide the class.
 */
export function normaliseReplyText(reply: string): string {
  return reply
    .split(/\r?\n/)
    .map((line) => line.replace(/^\s*[2-5]\d\d(?:[ -]|$)/, '').replace(/^\s*[245]\.\d{1,3}\.\d{1,3}\b/, ''))
    .join(' ')
    .replace(/<[^<>]*@[^<>]*>/g, ' ')
    .replace(/(?:"[^"]*"|[^\s<>()[\]"]+)@[a-z0-9.-]+/gi, ' ')
    .replace(/\s+/g, ' ')
    .trim()
    .toLowerCase();
}

/** Classify a permanent (5xx) remote reply, judged from the whole reply. */
export function classifyBounce(reply: string): BounceClass {
  const text = normaliseReplyText(reply);
  const enhanced = enhancedCode(reply);
  for (const rule of TEXT_RULES) {
    if (!rule.text.test(text)) continue;
    if (rule.enhanced && !(enhanced && rule.enhanced.test(enhanced))) continue;
    return rule.class;
  }
  if (enhanced) {
    for (const rule of CODE_RULES) if (rule.enhanced.test(enhanced)) return rule.class;
  }
  return 'other';
}
