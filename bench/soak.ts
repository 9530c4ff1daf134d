// `npm run bench:soak`: a long run at a steady rate — SMTP submissions, tracking
// clicks and opens, API reads — printing the gateway's RSS, event-loop delay
// and submission p99 every minute. A leak shows as RSS or p99 climbing from
// one minute to the next while the load stays flat.
//
//   npm run bench:soak -- [--minutes 20] [--rate 125] [--clicks 40] [--api 4]
//
// --rate is SMTP messages per second. The default, 125, is about half of what
// `npm run bench` measured as the maximum for DKIM+tracking while delivering
// on a 2-core machine (256 msg/s in December 2026, with delivery in its own
// thread); on other hardware, run the bench and pass half its figure. --clicks and --api are tracking hits and
// API reads per second.
import http from 'node:http';
import { startBenchDns } from './dns.js';
import { MX_IP, RCPT_DOMAIN, SENDER_DOMAIN, prepareTenant, startGatewayChild } from './gateway.js';
import { fixtureCrlf, mb, ms, num, removeTempDirs, rss, sleep, summarize, tempDir } from './lib.js';
import { tokensFrom } from './redirect.js';
import { startServerChild } from './servers.js';
import { smtpLoad } from './smtp-client.js';

function flag(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  const v = i >= 0 ? Number(process.argv[i + 1]) : fallback;
  if (!Number.isFinite(v) || v <= 0) throw new Error(`--${name} must be a positive number`);
  return v;
}

const agent = new http.Agent({ keepAlive: true, maxSockets: 16 });
function get(url: string, headers: Record<string, string> = {}): Promise<number> {
  return new Promise((resolve) => {
    http
      .get(url, { agent, headers }, (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      })
      .on('error', () => resolve(0));
  });
}

async function metric(base: string, name: string): Promise<number> {
  const body = await new Promise<string>((resolve) => {
    http
      .get(`${base}/metrics`, { agent }, (res) => {
        let s = '';
        res.on('data', (d) => (s += d));
        res.on('end', () => resolve(s));
      })
      .on('error', () => resolve(''));
  });
  const m = new RegExp(`^${name}(?:\\{[^}]*\\})? ([0-9.e+-]+)$`, 'm').exec(body);
  return m ? Number(m[1]) : NaN;
}

async function main(): Promise<void> {
  const minutes = flag('minutes', 20);
  const rate = flag('rate', 125);
  const clicksPerSec = flag('clicks', 40);
  const apiPerSec = flag('api', 4);
  console.log(`relaygate soak: ${minutes} min at ${rate} msg/s SMTP, ${clicksPerSec} tracking hits/s, ${apiPerSec} API reads/s`);

  const workDir = tempDir('soak');
  const dns = await startBenchDns({
    [RCPT_DOMAIN]: [{ type: 'MX', exchange: `mx.${RCPT_DOMAIN}`, priority: 10 }],
    [`mx.${RCPT_DOMAIN}`]: [{ type: 'A', address: MX_IP }],
  });
  const mx = await startServerChild({ kind: 'smtp', host: MX_IP, port: 0, keep: 20 });
  const setup = { dataDir: workDir, certsDir: tempDir('soak-certs'), dnsServer: dns.server, mxPort: mx.port, dkim: true, tracking: true };
  const tenant = await prepareTenant(setup);
  const gw = await startGatewayChild(setup);
  const auth = { user: tenant.user, pass: tenant.pass };
  try {
    const readers = Array.from({ length: 20 }, (_, i) => `reader${i}@${RCPT_DOMAIN}`);
    const first = await smtpLoad({ port: gw.smtpPort, sessions: 1, total: 1, auth, mailFrom: `sender@${SENDER_DOMAIN}`, rcpt: () => readers, body: fixtureCrlf() });
    if (first.accepted !== 1) throw new Error(`could not send the token message: ${first.firstError}`);
    for (let i = 0; i < 600 && (await mx.stats()).count < readers.length; i++) await sleep(100);
    const paths = (await tokensFrom(await mx.bodies())).map((t) => `/t/c/${t}`);
    if (!paths.length) throw new Error('no tracking tokens reached the MX sink');
    const ua = { 'User-Agent': 'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/121.0 Safari/537.36' };
    const apiHeaders = { Authorization: `Bearer ${tenant.apiKey}` };

    const body = fixtureCrlf();
    const startRss = rss(gw.pid);
    const rows: string[][] = [];
    let total = 0;
    let failed = 0;
    let hits = 0;
    let hitErrors = 0;
    const endAt = Date.now() + minutes * 60_000;
    for (let minute = 1; Date.now() < endAt; minute++) {
      const lat: number[] = [];
      const minuteEnd = Math.min(endAt, Date.now() + 60_000);
      while (Date.now() < minuteEnd) {
        const tick = Date.now();
        const smtp = smtpLoad({ port: gw.smtpPort, sessions: Math.min(4, Math.ceil(rate)), total: Math.ceil(rate), auth, mailFrom: `sender@${SENDER_DOMAIN}`, rcpt: (i) => `soak${i % 50}@${RCPT_DOMAIN}`, body, maxMs: 950 });
        const clicks = Array.from({ length: Math.ceil(clicksPerSec) }, (_, i) => get(`${gw.httpUrl}${paths[(tick + i) % paths.length]}`, ua));
        const reads = Array.from({ length: Math.ceil(apiPerSec) }, (_, i) => get(`${gw.httpUrl}${i % 2 ? '/api/v1/stats' : '/api/v1/messages?per_page=20'}`, apiHeaders));
        const [r, codes, apiCodes] = await Promise.all([smtp, Promise.all(clicks), Promise.all(reads)]);
        total += r.accepted;
        failed += r.failed;
        for (const v of r.latencies.subarray(0, r.accepted)) lat.push(v);
        hits += codes.length;
        hitErrors += codes.filter((c) => c !== 302).length + apiCodes.filter((c) => c !== 200).length;
        const rest = 1000 - (Date.now() - tick);
        if (rest > 0) await sleep(rest);
      }
      const s = summarize(lat);
      const loopP99 = await metric(gw.httpUrl, 'nodejs_eventloop_lag_p99_seconds');
      const queue = await metric(gw.httpUrl, 'relaygate_queue_depth');
      rows.push([String(minute), num(lat.length / 60, 1), ms(s.p50), ms(s.p99), mb(rss(gw.pid)), ms(loopP99 * 1000), Number.isFinite(queue) ? String(queue) : '-']);
      console.log(`  min ${String(minute).padStart(2)}  ${num(lat.length / 60, 1).padStart(5)} msg/s  p50 ${ms(s.p50).padStart(9)}  p99 ${ms(s.p99).padStart(9)}  RSS ${mb(rss(gw.pid)).padStart(7)}  loop p99 ${ms(loopP99 * 1000).padStart(8)}  queue ${rows.at(-1)![6]}`);
    }
    console.log('\n== soak summary');
    console.log(`  messages accepted / refused              ${total} / ${failed}`);
    console.log(`  tracking hits sent / non-2xx-3xx answers ${hits} / ${hitErrors}`);
    console.log(`  gateway RSS start → end                  ${mb(startRss)} → ${mb(rss(gw.pid))} (peak ${mb(gw.peakRss())})`);
    if (rows.length >= 2) console.log(`  submission p99 first → last minute        ${rows[0][3]} → ${rows.at(-1)![3]}`);
    console.log(`  event-loop p99 first → last minute        ${rows[0]?.[5]} → ${rows.at(-1)?.[5]}`);
  } finally {
    await gw.stop();
    await mx.stop();
    await dns.close();
    agent.destroy();
    removeTempDirs();
  }
}

await main();
