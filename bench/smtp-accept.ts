// Part 1: SMTP accept. The same thin client (bench/smtp-client.ts) drives a
// bare smtp-server sink (the baseline: read DATA, answer 250) and then the
// gateway in several configurations, each a fresh `relaygate start` child
// with its own data dir delivering into a loopback MX sink:
//   dkim+tracking   the realistic case (signing key present, opens+clicks on)
//   no-dkim         the sending domain has no DKIM key: mail goes out unsigned
//   no-tracking     tracking.opens/clicks off: no HTML rewrite
// and two diagnostic runs with delivery idle — each message carries
// `X-Relaygate-Send-At: <tomorrow>`, so it is accepted exactly as usual but
// the delivery worker finds nothing due — to separate what the accept path
// costs from what the delivery worker running beside it costs:
//   dkim+tracking, delivery idle
//   no dkim/tracking, delivery idle   (spool, parse, group commit: the floor)
import { simpleParser } from 'mailparser';
import { MX_IP, RCPT_DOMAIN, SENDER_DOMAIN, prepareTenant, startGatewayChild, type GatewaySetup } from './gateway.js';
import { startBenchDns, type BenchDns } from './dns.js';
import { fixtureCrlf, heading, line, mb, ms, num, poll, ratio, summarize, tempDir, type Summary, type SummaryRow } from './lib.js';
import { runMicro, type MicroResult } from './micro.js';
import { startServerChild } from './servers.js';
import { smtpLoad, type SmtpLoadOptions, type SmtpLoadResult } from './smtp-client.js';

export interface SmtpOptions {
  messages: number;
  sessions: number;
  /** Per run: stop starting new messages after this long. */
  maxMs: number;
  /** How long to wait for the queue to drain into the MX sink after the last 250. */
  drainTimeoutMs: number;
  /** Run only these gateway variants (names as in VARIANTS); all when empty. */
  variants?: string[];
}

interface Variant {
  name: string;
  dkim: boolean;
  tracking: boolean;
  /** Schedule every message a day ahead: accepted as usual, nothing for the worker to deliver. */
  deliveryIdle?: boolean;
}

export const VARIANTS: Variant[] = [
  { name: 'dkim+tracking', dkim: true, tracking: true },
  { name: 'no-dkim', dkim: false, tracking: true },
  { name: 'no-tracking', dkim: true, tracking: false },
  { name: 'idle:dkim+tracking', dkim: true, tracking: true, deliveryIdle: true },
  { name: 'idle:bare', dkim: false, tracking: false, deliveryIdle: true },
];

export interface AcceptFigures {
  name: string;
  load: SmtpLoadResult;
  rate: number;
  lat: Summary;
  /** Server process CPU seconds during the accept phase, and peak RSS. */
  serverCpu: number;
  peakRss: number;
  /** Gateway only: resident set right after start-up, before any load. */
  startRss?: number;
  /** Gateway only: delivery into the MX sink. */
  delivered?: number;
  deliveredRate?: number;
  drainMs?: number;
  cpuPerMsgMs?: number;
  sample?: { dkim: boolean; trackedLinks: number };
}

const rcpt = (i: number) => `rcpt+${i}@${RCPT_DOMAIN}`;

function figures(name: string, load: SmtpLoadResult, serverCpu: number, peakRss: number): AcceptFigures {
  return { name, load, rate: (load.accepted * 1000) / load.elapsedMs, lat: summarize(load.latencies), serverCpu, peakRss };
}

function loadOptions(o: SmtpOptions, port: number, auth: { user: string; pass: string }, body: Buffer): SmtpLoadOptions {
  return { port, sessions: o.sessions, total: o.messages, maxMs: o.maxMs, auth, mailFrom: `sender@${SENDER_DOMAIN}`, rcpt, body };
}

async function baseline(o: SmtpOptions, body: Buffer): Promise<AcceptFigures> {
  const sink = await startServerChild({ kind: 'smtp', host: '127.0.0.1', port: 0 });
  try {
    const cpu0 = sink.cpu();
    const load = await smtpLoad(loadOptions(o, sink.port, { user: 'bench', pass: 'bench' }, body));
    return figures('bare smtp-server sink (baseline)', load, sink.cpu() - cpu0, sink.peakRss());
  } finally {
    await sink.stop();
  }
}

async function gatewayRun(o: SmtpOptions, fixture: Buffer, v: Variant, dns: BenchDns, certsDir: string): Promise<AcceptFigures> {
  const mx = await startServerChild({ kind: 'smtp', host: MX_IP, port: 0, keep: 1 });
  const setup: GatewaySetup = {
    dataDir: tempDir(`smtp-${v.name.replace(/\W+/g, '-')}`),
    certsDir,
    dnsServer: dns.server,
    mxPort: mx.port,
    dkim: v.dkim,
    tracking: v.tracking,
  };
  const tenant = await prepareTenant(setup);
  const gw = await startGatewayChild(setup);
  const body = v.deliveryIdle
    ? Buffer.concat([Buffer.from(`X-Relaygate-Send-At: ${new Date(Date.now() + 86_400_000).toISOString()}\r\n`), fixture])
    : fixture;
  try {
    const cpu0 = gw.cpu();
    const load = await smtpLoad(loadOptions(o, gw.smtpPort, { user: tenant.user, pass: tenant.pass }, body));
    const f = figures(`gateway ${v.name}`, load, gw.cpu() - cpu0, NaN);
    f.startRss = gw.startRss;
    if (!v.deliveryIdle) {
      const lastReplyAt = load.startedAt + load.elapsedMs;
      const drained = await poll(async () => {
        const s = await mx.stats();
        return s.count >= load.accepted ? s : undefined;
      }, o.drainTimeoutMs);
      const s = drained ?? (await mx.stats());
      f.delivered = s.count;
      f.deliveredRate = s.count ? (s.count * 1000) / Math.max(1, s.lastAt - load.startedAt) : 0;
      f.drainMs = drained ? s.lastAt - lastReplyAt : NaN;
      f.cpuPerMsgMs = ((gw.cpu() - cpu0) * 1000) / Math.max(1, s.count);
      const [first] = await mx.bodies();
      if (first) {
        const parsed = await simpleParser(first);
        const html = typeof parsed.html === 'string' ? parsed.html : '';
        f.sample = { dkim: first.includes('DKIM-Signature:'), trackedLinks: html.match(/\/t\/c\/[A-Za-z0-9_-]{22}/g)?.length ?? 0 };
      }
    } else {
      f.cpuPerMsgMs = (f.serverCpu * 1000) / Math.max(1, load.accepted);
    }
    f.peakRss = gw.peakRss();
    return f;
  } finally {
    await gw.stop();
    await mx.stop();
  }
}

function print(f: AcceptFigures, o: SmtpOptions): void {
  console.log(`  ${f.name}`);
  const notes = [
    f.load.failed ? `${f.load.failed} failed, first: ${f.load.firstError}` : '',
    f.load.skipped ? `time cap reached, ${f.load.skipped} not sent` : '',
  ].filter(Boolean);
  line('accepted', `${num(f.rate)} msg/s  (${f.load.accepted} in ${ms(f.load.elapsedMs)}${notes.length ? `; ${notes.join('; ')}` : ''})`);
  line('final 250 latency p50 / p99 / max', `${ms(f.lat.p50)} / ${ms(f.lat.p99)} / ${ms(f.lat.max)}`);
  const secs = f.load.elapsedMs / 1000;
  line('CPU while accepting (cores busy)', `server ${num(f.serverCpu / secs)}, client ${num(f.load.clientCpu / secs)}`);
  line('server peak RSS', `${mb(f.peakRss)}${f.startRss ? ` (${mb(f.startRss)} right after start-up)` : ''}`);
  if (f.delivered !== undefined) {
    const drained = !Number.isFinite(f.drainMs)
      ? `queue NOT drained within ${num(o.drainTimeoutMs / 1000, 0)} s`
      : f.drainMs! <= 0
        ? 'delivery kept pace with accept'
        : `queue drained ${ms(f.drainMs!)} after the last 250`;
    line('delivered into MX sink', `${num(f.deliveredRate!)} msg/s end to end (${f.delivered}/${f.load.accepted}; ${drained})`);
    line('gateway CPU per message (accept+deliver)', ms(f.cpuPerMsgMs!));
    if (f.sample) line('sample delivered copy', `DKIM-Signature ${f.sample.dkim ? 'yes' : 'no'}, ${f.sample.trackedLinks} tracked links`);
  } else if (f.cpuPerMsgMs !== undefined) {
    line('gateway CPU per message (accept only)', ms(f.cpuPerMsgMs));
  }
}

export interface SmtpResult {
  base: AcceptFigures;
  runs: Map<string, AcceptFigures>;
  micro: MicroResult;
}

export async function runSmtp(o: SmtpOptions, certsDir: string): Promise<{ result: SmtpResult; rows: SummaryRow[] }> {
  heading(`1. SMTP accept: ${o.messages} × 20 KB message, ${o.sessions} sessions, AUTH PLAIN, no pipelining`);
  console.log(`  Gateway = \`relaygate start\` child (log level info, synchronous=FULL group commit), fresh data dir per run.`);
  console.log(`  Baseline and MX sink = bare smtp-server, each in its own child process. Each run stops`);
  console.log(`  starting messages after ${num(o.maxMs / 1000, 0)} s; rates are over what was sent.\n`);
  const fixture = fixtureCrlf();
  const base = await baseline(o, fixture);
  print(base, o);
  const dns = await startBenchDns({
    [RCPT_DOMAIN]: [{ type: 'MX', exchange: `mx.${RCPT_DOMAIN}`, priority: 10 }],
    [`mx.${RCPT_DOMAIN}`]: [{ type: 'A', address: MX_IP }],
  });
  const runs = new Map<string, AcceptFigures>();
  try {
    for (const v of VARIANTS.filter((x) => !o.variants?.length || o.variants.includes(x.name))) {
      const f = await gatewayRun(o, fixture, v, dns, certsDir);
      runs.set(v.name, f);
      print(f, o);
      line('ratio to bare sink (accepted msg/s)', ratio(f.rate, base.rate));
    }
  } finally {
    await dns.close();
  }

  console.log('\n  Per-message CPU on the accept path (in this process, reference message, median of 5 slices):');
  const micro = await runMicro();
  line('tracking rewrite per message (1 recipient)', `${num(micro.rewriteUs, 0)} µs`);
  line('  = prepareTracking (once per message)', `${num(micro.prepareUs, 0)} µs  (${micro.links} links rewritten)`);
  line('  + render (per recipient copy)', `${num(micro.renderUs, 0)} µs  (${micro.tokens} tokens)`);
  line('DKIM RSA-2048 sign (src/dkim dkimSignMessage)', `${num(micro.dkimUs, 0)} µs per message; for scale, measured alone:`);
  line('  crypto.createPrivateKey(PEM)', `${num(micro.keyParseUs, 0)} µs  (mailauth repeats it for every signature)`);
  line('  one RSA-2048 signature, parsed key', `${num(micro.rsaSignUs, 0)} µs`);
  line('DKIM sign with the signing worker\'s key cache', `${num(micro.dkimCachedUs, 0)} µs per message (src/dkim/key-cache.ts; the gateway signs this way)`);

  const get = (n: string) => runs.get(n);
  const main = get('dkim+tracking');
  const noDkim = get('no-dkim');
  const noTrack = get('no-tracking');
  const idle = get('idle:dkim+tracking');
  const floor = get('idle:bare');
  console.log('');
  if (main && noDkim) line('DKIM on / off (accepted msg/s)', `${ratio(main.rate, noDkim.rate)}  (${num(main.rate)} vs ${num(noDkim.rate)})`);
  if (main && noTrack) line('tracking on / off (accepted msg/s)', `${ratio(main.rate, noTrack.rate)}  (${num(main.rate)} vs ${num(noTrack.rate)})`);
  if (main && idle) line('delivery running / idle (accepted msg/s)', `${ratio(main.rate, idle.rate)}  (${num(main.rate)} vs ${num(idle.rate)})`);
  if (main) line('gateway (dkim+tracking) / bare sink', ratio(main.rate, base.rate));

  const rows: SummaryRow[] = [];
  if (main) {
    rows.push(
      { part: 'smtp', metric: 'accepted msg/s (DKIM+tracking, delivering)', value: num(main.rate), baseline: `${num(base.rate)} bare sink`, ratio: ratio(main.rate, base.rate), aim: '≥ 800' },
      { part: 'smtp', metric: 'final 250 p50 / p99', value: `${ms(main.lat.p50)} / ${ms(main.lat.p99)}`, baseline: `${ms(base.lat.p50)} / ${ms(base.lat.p99)}`, aim: 'p99 ≤ 25 ms' },
      { part: 'smtp', metric: 'delivered msg/s into MX sink', value: num(main.deliveredRate!) },
      { part: 'smtp', metric: 'gateway peak RSS', value: mb(main.peakRss), baseline: `${mb(base.peakRss)} bare sink` },
    );
  }
  if (main && noDkim) rows.push({ part: 'smtp', metric: 'accepted msg/s, DKIM off', value: num(noDkim.rate), ratio: `on/off ${ratio(main.rate, noDkim.rate)}`, aim: 'on/off ≥ 0.8×' });
  if (main && noTrack) rows.push({ part: 'smtp', metric: 'accepted msg/s, tracking off', value: num(noTrack.rate), ratio: `on/off ${ratio(main.rate, noTrack.rate)}` });
  if (idle) rows.push({ part: 'smtp', metric: 'accepted msg/s, delivery idle', value: num(idle.rate), baseline: `p99 ${ms(idle.lat.p99)}`, ratio: `vs sink ${ratio(idle.rate, base.rate)}` });
  if (floor) rows.push({ part: 'smtp', metric: 'accepted msg/s, idle, no DKIM/tracking', value: num(floor.rate), baseline: `p99 ${ms(floor.lat.p99)}`, ratio: `vs sink ${ratio(floor.rate, base.rate)}` });
  // CPU per message moves far less than msg/s when other processes share the cores.
  const cpu = (n: string) => (runs.get(n)?.cpuPerMsgMs !== undefined ? ms(runs.get(n)!.cpuPerMsgMs!) : 'n/a');
  if (main && noDkim && noTrack) {
    rows.push({ part: 'smtp', metric: 'gateway CPU/msg: both / no DKIM / no tracking', value: `${cpu('dkim+tracking')} / ${cpu('no-dkim')} / ${cpu('no-tracking')}`, baseline: 'accept + deliver' });
  }
  if (idle && floor) rows.push({ part: 'smtp', metric: 'gateway CPU/msg, delivery idle: both / neither', value: `${cpu('idle:dkim+tracking')} / ${cpu('idle:bare')}`, baseline: 'accept only' });
  rows.push(
    { part: 'smtp', metric: 'tracking rewrite per 20 KB message', value: `${num(micro.rewriteUs, 0)} µs` },
    { part: 'smtp', metric: 'DKIM sign per message (mailauth)', value: `${num(micro.dkimUs, 0)} µs; ${num(micro.dkimCachedUs, 0)} µs key cached`, baseline: `${num(micro.rsaSignUs, 0)} µs bare RSA op`, ratio: ratio(micro.dkimCachedUs, micro.rsaSignUs), aim: '~900 µs (issue 3)' },
  );
  return { result: { base, runs, micro }, rows };
}
