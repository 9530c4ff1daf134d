// Part 3: the HTTP API on a loaded database. A fresh data dir is seeded with
// 100k messages and 1M events through the storage module (bench/seed.ts),
// then a `relaygate start` child serves it:
//   GET /api/v1/stats for the last 30 days (day and hour series), one request
//     at a time over keep-alive, p50/p99 — the figure SPEC/issue 5 bounds;
//   GET /t/c/{token} one at a time on the same database (a click by a
//     recipient with no recent clicks, the everyday case);
//   POST /api/v1/messages with the reference message's HTML and text at 32
//     concurrent clients: accepted msg/s and latency, each message queued and
//     delivered into a loopback MX sink as usual.
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { simpleParser } from 'mailparser';
import { DB_FILE } from '../src/store/db.js';
import { startBenchDns } from './dns.js';
import { MX_IP, RCPT_DOMAIN, SENDER_DOMAIN, prepareTenant, startGatewayChild } from './gateway.js';
import { httpLoad, wrkAvailable } from './http-load.js';
import { fixtureCrlf, heading, line, mb, ms, nowMs, num, summarize, tempDir, type SummaryRow } from './lib.js';
import { seedStore } from './seed.js';
import { startServerChild } from './servers.js';

export interface StatsOptions {
  seedMessages: number;
  seedEvents: number;
  statsCalls: number;
  clickCalls: number;
  sendConnections: number;
  sendMs: number;
  warmupMs: number;
}

interface Reply {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
  ms: number;
}

function request(agent: http.Agent, url: string, opts: { method?: string; headers?: Record<string, string>; body?: string } = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const t0 = nowMs();
    const req = http.request(url, { agent, method: opts.method ?? 'GET', headers: opts.headers }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body, ms: nowMs() - t0 }));
    });
    req.on('error', reject);
    req.end(opts.body);
  });
}

async function timeCalls(agent: http.Agent, url: string, headers: Record<string, string>, n: number, warmup = 5) {
  for (let i = 0; i < warmup; i++) await request(agent, url, { headers });
  const samples: number[] = [];
  let last: Reply | undefined;
  for (let i = 0; i < n; i++) {
    last = await request(agent, url, { headers });
    samples.push(last.ms);
  }
  return { lat: summarize(samples), last: last! };
}

export async function runStats(o: StatsOptions, certsDir: string): Promise<SummaryRow[]> {
  heading(`3. HTTP API on a loaded database: ${num(o.seedMessages, 0)} messages, ${num(o.seedEvents, 0)} events`);
  const rows: SummaryRow[] = [];
  const workDir = tempDir('stats');
  const dns = await startBenchDns({
    [RCPT_DOMAIN]: [{ type: 'MX', exchange: `mx.${RCPT_DOMAIN}`, priority: 10 }],
    [`mx.${RCPT_DOMAIN}`]: [{ type: 'A', address: MX_IP }],
  });
  const mx = await startServerChild({ kind: 'smtp', host: MX_IP, port: 0 });
  const setup = { dataDir: workDir, certsDir, dnsServer: dns.server, mxPort: mx.port, dkim: true, tracking: true };
  const tenant = await prepareTenant(setup);

  let lastPct = -1;
  const seed = seedStore(workDir, {
    messages: o.seedMessages,
    events: o.seedEvents,
    days: 30,
    clickTokens: o.clickCalls,
    onProgress: (done, total) => {
      const pct = Math.floor((10 * done) / total);
      if (pct !== lastPct && process.stdout.isTTY) process.stdout.write(`\r  seeding… ${pct * 10} %`);
      lastPct = pct;
    },
  });
  if (process.stdout.isTTY) process.stdout.write('\r');
  const dbSize = fs.statSync(path.join(workDir, DB_FILE)).size;
  line('seeded through src/store', `${num(seed.messages, 0)} messages, ${num(seed.recipients, 0)} recipients, ${num(seed.events, 0)} events`);
  line('', `${num(seed.rollupRows, 0)} stats_hourly rows, ${mb(dbSize)} database, in ${num(seed.ms / 1000, 1)} s`);

  const gw = await startGatewayChild(setup);
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const auth = { Authorization: `Bearer ${tenant.apiKey}` };
  try {
    const since = new Date(Date.now() - 30 * 86_400_000).toISOString();
    const probe = await request(agent, `${gw.httpUrl}/api/v1/stats?since=${encodeURIComponent(since)}`, { headers: auth });
    const apiUp = probe.status === 200;
    if (!apiUp) {
      line('GET /api/v1/stats', `not available yet (HTTP ${probe.status}: ${probe.body.slice(0, 80)}); API parts skipped`);
    } else {
      const day = await timeCalls(agent, `${gw.httpUrl}/api/v1/stats?since=${encodeURIComponent(since)}`, auth, o.statsCalls);
      const hour = await timeCalls(agent, `${gw.httpUrl}/api/v1/stats?since=${encodeURIComponent(since)}&interval=hour`, auth, Math.ceil(o.statsCalls / 2));
      const totals = (JSON.parse(day.last.body) as { totals: Record<string, number> }).totals;
      line('GET /api/v1/stats 30 days, interval=day', `p50 ${ms(day.lat.p50)}, p99 ${ms(day.lat.p99)}, max ${ms(day.lat.max)} (${day.lat.n} calls, ${num(day.last.body.length / 1024, 0)} KB)`);
      line('GET /api/v1/stats 30 days, interval=hour', `p50 ${ms(hour.lat.p50)}, p99 ${ms(hour.lat.p99)}, max ${ms(hour.lat.max)} (${hour.lat.n} calls, ${num(hour.last.body.length / 1024, 0)} KB)`);
      line('totals returned', `accepted ${totals.accepted}, delivered ${totals.delivered}, opened ${totals.opened}, clicked ${totals.clicked}, open_rate ${num(totals.open_rate * 100, 1)} %`);
      rows.push(
        { part: 'stats', metric: 'GET /api/v1/stats 30 d p50 / p99', value: `${ms(day.lat.p50)} / ${ms(day.lat.p99)}`, aim: '≤ 50 ms' },
        { part: 'stats', metric: 'same, interval=hour p50 / p99', value: `${ms(hour.lat.p50)} / ${ms(hour.lat.p99)}` },
      );
    }

    // One click at a time by recipients that have not clicked before: the everyday redirect.
    const clicks: number[] = [];
    const codes = new Map<number, number>();
    // Bounded in time too: on an unindexed event log each of these can take a good part of a second.
    const clickDeadline = nowMs() + 10_000;
    for (const t of seed.tokens.slice(0, o.clickCalls)) {
      if (clicks.length >= 20 && nowMs() > clickDeadline) break;
      const r = await request(agent, `${gw.httpUrl}/t/c/${t}`);
      clicks.push(r.ms);
      codes.set(r.status, (codes.get(r.status) ?? 0) + 1);
    }
    const click = summarize(clicks);
    const codeText = [...codes].map(([c, n]) => `${n}× ${c}`).join(', ');
    line(`GET /t/c/{token} one at a time (${num(seed.events, 0)} events)`, `p50 ${ms(click.p50)}, p99 ${ms(click.p99)}, max ${ms(click.max)} (${click.n} new clickers: ${codeText})`);
    rows.push({ part: 'stats', metric: `GET /t/c/{token}, ${num(seed.events / 1e6, 1)}M events, p50 / p99`, value: `${ms(click.p50)} / ${ms(click.p99)}`, baseline: 'one at a time' });

    if (apiUp) rows.push(...(await sendThroughput(o, gw.httpUrl, auth, workDir, mx)));
  } finally {
    agent.destroy();
    await gw.stop();
    await mx.stop();
    await dns.close();
  }
  return rows;
}

async function sendThroughput(
  o: StatsOptions,
  base: string,
  auth: Record<string, string>,
  workDir: string,
  mx: Awaited<ReturnType<typeof startServerChild>>,
): Promise<SummaryRow[]> {
  const parsed = await simpleParser(fixtureCrlf());
  const body = JSON.stringify({
    from: `Northwind Outfitters <sender@${SENDER_DOMAIN}>`,
    to: [`rcpt@${RCPT_DOMAIN}`],
    subject: parsed.subject,
    html: typeof parsed.html === 'string' ? parsed.html : undefined,
    text: parsed.text,
    tags: ['bench'],
  });
  const headers = { ...auth, 'Content-Type': 'application/json' };
  const agent = new http.Agent({ keepAlive: false });
  const one = await request(agent, `${base}/api/v1/messages`, { method: 'POST', headers, body });
  agent.destroy();
  if (one.status !== 202) {
    line('POST /api/v1/messages', `answered ${one.status}: ${one.body.slice(0, 160)}; throughput skipped`);
    return [];
  }
  const load = { base, paths: ['/api/v1/messages'], connections: o.sendConnections, method: 'POST' as const, headers, body };
  const delivered0 = (await mx.stats()).count;
  await httpLoad({ ...load, durationMs: o.warmupMs }, workDir);
  const r = await httpLoad({ ...load, durationMs: o.sendMs }, workDir);
  const bad = r.bad || r.errors ? `; ${r.bad} non-2xx, ${r.errors} socket errors` : '';
  const tool = wrkAvailable() ? 'wrk -t1' : 'node client';
  line(`POST /api/v1/messages, ${o.sendConnections} clients (${tool})`, `${num(r.rps)} msg/s  (${r.requests} in ${num(o.sendMs / 1000, 0)} s, ${num(body.length / 1024, 0)} KB JSON each${bad})`);
  line('latency p50 / p99', `${ms(r.lat.p50)} / ${ms(r.lat.p99)}`);
  line("delivered into MX sink (warm-up + run)", `${(await mx.stats()).count - delivered0} messages`);
  return [
    { part: 'stats', metric: `POST /api/v1/messages msg/s (${o.sendConnections} clients)`, value: num(r.rps) },
    { part: 'stats', metric: 'POST /api/v1/messages p50 / p99', value: `${ms(r.lat.p50)} / ${ms(r.lat.p99)}` },
  ];
}
