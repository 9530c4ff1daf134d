// Flags tracking hits that are not a person reading or clicking (SPEC §7): link scanners of
// security gateways (is_bot) and mail-privacy image proxies (is_proxy). Flagged hits are still
// recorded and still redirect; they only drop out of the opened/clicked totals.
// Pure: the caller supplies the clock readings and the recipient's recent clicks.
import { isbot } from 'isbot';
import { UAParser } from 'ua-parser-js';

export interface HitInput {
  userAgent: string;
  ip: string;
  kind: 'open' | 'click';
  /** When the message was delivered to this recipient (ms). */
  deliveredAt?: number;
  /** When the hit arrived (ms). */
  at: number;
  linkIndex?: number;
  /** Link indexes of this recipient's clicks in the last few seconds (caller picks the window). */
  priorClickLinkIndexes?: number[];
}

export interface HitClass {
  isBot: boolean;
  isProxy: boolean;
  /** Why the hit was flagged, `; `-separated when several signals agree. */
  reason?: string;
  ua: { browser?: string; os?: string; device?: string };
}

/** Clicks on several links sooner than this after delivery are a gateway scanning the mail in transit. */
export const MIN_HUMAN_CLICK_DELAY_MS = 2000;
/** Distinct links one recipient hits within the caller's window before we call it a scanner. */
export const BURST_DISTINCT_LINKS = 3;

// Security gateways that announce themselves. Most scanners (SafeLinks detonation above all)
// send an ordinary browser UA from cloud ranges, so timing and bursts below catch the rest.
const SCANNER_TOKENS: [token: string, label: string][] = [
  ['barracuda', 'Barracuda'],
  ['mimecast', 'Mimecast'],
  ['proofpoint', 'Proofpoint'],
  ['symantec', 'Symantec'],
  ['messagelabs', 'Symantec'],
  ['trendmicro', 'Trend Micro'],
  ['trend micro', 'Trend Micro'],
  ['ironport', 'Cisco IronPort'],
  ['sophos', 'Sophos'],
  ['forcepoint', 'Forcepoint'],
  ['websense', 'Forcepoint'],
  ['safelinks', 'Microsoft SafeLinks'],
  ['microsoft-urlanalyzer', 'Microsoft Defender'],
  ['office existence discovery', 'Microsoft Office link probe'],
  ['office protocol discovery', 'Microsoft Office link probe'],
  ['fireeye', 'FireEye'],
  ['fortimail', 'Fortinet'],
  ['fortiguard', 'Fortinet'],
  ['cloudmark', 'Cloudmark'],
  ['vadesecure', 'Vade'],
];

// Apple Mail Privacy Protection fetches every remote image through Apple's relays as soon as the
// message reaches the device, whether or not it is read. Those fetches carry either the bare
// `Mozilla/5.0` UA or Mail.app's WebKit UA, which — unlike Safari — has no `Version/` or
// `Safari/` token. Mail.app without MPP sends the same UA, and without Apple's egress IP list we
// cannot tell them apart, so every such open counts as proxied (the common industry heuristic).
const APPLE_MAIL_UA =
  /^Mozilla\/5\.0 \(Macintosh; [^)]*Mac OS X[^)]*\) AppleWebKit\/[\d.]+ \(KHTML, like Gecko\)$/;

function proxyOf(ua: string, kind: HitInput['kind']): string | undefined {
  // Gmail fetches images through its proxy on open: a real open, hidden IP and UA.
  if (ua.includes('GoogleImageProxy') || ua.includes('ggpht.com')) return 'gmail-image-proxy';
  if (ua.includes('YahooMailProxy')) return 'yahoo-mail-proxy';
  if (kind === 'open' && (ua === 'Mozilla/5.0' || APPLE_MAIL_UA.test(ua))) {
    return 'apple-mail-privacy-protection';
  }
  // Outlook.com's image proxy sends ordinary browser UAs; it cannot be told apart by UA alone.
  return undefined;
}

function scannerOf(ua: string): string | undefined {
  const lower = ua.toLowerCase();
  return SCANNER_TOKENS.find(([token]) => lower.includes(token))?.[1];
}

function parseUa(ua: string): HitClass['ua'] {
  if (!ua) return {};
  const r = new UAParser(ua).getResult();
  const withVersion = (name?: string, version?: string): string | undefined =>
    name ? (version ? `${name} ${version}` : name) : undefined;
  // Desktop mail clients are reported as the client, not as the engine ua-parser sees.
  const thunderbird = /Thunderbird\/(\d+)/.exec(ua);
  const outlook = /Microsoft Outlook (\d+)/.exec(ua);
  let browser: string | undefined;
  if (thunderbird) browser = `Thunderbird ${thunderbird[1]}`;
  else if (outlook) browser = `Outlook ${outlook[1]}`;
  else if (APPLE_MAIL_UA.test(ua)) browser = 'Apple Mail';
  else browser = withVersion(r.browser.name, r.browser.major);
  const os = withVersion(r.os.name, r.os.version);
  let device: string | undefined = r.device.type;
  if (device === 'wearable') device = 'mobile';
  if (!device && (browser || os)) device = 'desktop';
  return { browser, os, device };
}

export function classifyHit(input: HitInput): HitClass {
  const ua = input.userAgent.trim();
  const reasons: string[] = [];
  let isBot = false;
  let isProxy = false;

  const proxy = ua ? proxyOf(ua, input.kind) : undefined;
  if (!ua) {
    isBot = true;
    reasons.push('empty-user-agent');
  } else if (proxy) {
    // isbot() also matches these proxies and the bare `Mozilla/5.0`; a proxy fetch is not a bot.
    isProxy = true;
    reasons.push(proxy);
  } else {
    const scanner = scannerOf(ua);
    if (scanner) {
      isBot = true;
      reasons.push(`scanner:${scanner}`);
    } else if (isbot(ua)) {
      isBot = true;
      reasons.push('bot-user-agent');
    }
  }

  if (input.kind === 'click') {
    const sinceDelivery = input.deliveredAt === undefined ? Infinity : input.at - input.deliveredAt;
    const distinct = new Set([...(input.priorClickLinkIndexes ?? []), ...(input.linkIndex === undefined ? [] : [input.linkIndex])]);
    // A scanner opens every link as the mail arrives. One quick click alone is a reader who
    // had the mail open (or a test): flagging it would hide real clicks, so the timing signal
    // needs a second link in the same seconds, or a proxy/scanner UA, to count.
    if (sinceDelivery < MIN_HUMAN_CLICK_DELAY_MS && (distinct.size >= 2 || isBot || isProxy)) {
      isBot = true;
      reasons.push('click-too-soon-after-delivery');
    }
    if (distinct.size >= BURST_DISTINCT_LINKS) {
      isBot = true;
      reasons.push('multi-link-burst');
    }
  }

  return {
    isBot,
    isProxy,
    ...(reasons.length > 0 ? { reason: reasons.join('; ') } : {}),
    ua: parseUa(ua),
  };
}
