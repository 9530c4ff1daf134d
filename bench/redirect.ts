// Part 2: tracking redirects. Real tokens come from a message sent through
// the gateway to 50 recipients (one tracked copy each) and read back from what
// the MX sink received. The same load (same paths, same connections) then hits
// a bare node:http server answering 302 and the gateway's GET /t/c/{token},
// which looks the token up, classifies the hit and queues it for the batched
// durable write. Afterwards the click counters in the store are compared with
// the number of redirects served.
import http from 'node:http';
import { simpleParser } from 'mailparser';
import { openStore } from '../src/store/index.js';
import { startBenchDns } from './dns.js';
import { MX_IP, RCPT_DOMAIN, SENDER_DOMAIN, prepareTenant, startGatewayChild } from './gateway.js';
import { httpLoad, wrkAvailable, type HttpLoadResult } from './http-load.js';
import { fixtureCrlf, heading, line, mb, ms, num, poll, ratio, tempDir, type SummaryRow } from './lib.js';
import { startServerChild } from './servers.js';
import { smtpLoad } from './smtp-client.js';

export interface RedirectOptions {
  connections: number;
  durationMs: number;
  warmupMs: number;
  recipients: number;
}

const TOKEN_RE = /\/t\/c\/([A-Za-z0-9_-]{22})/g;

export async function tokensFrom(bodies: Buffer[]): Promise<string[]> {
  const out: string[] = [];
  for (const b of bodies) {
    const parsed = await simpleParser(b);
    const html = typeof parsed.html === 'string' ? parsed.html : '';
    for (const m of html.matchAll(TOKEN_RE)) out.push(m[1]);
  }
  return out;
}

function get(url: string): Promise<{ status: number; location: string }> {
  return new Promise((resolve, reject) => {
    http
      .get(url, (res) => {
        res.resume();
        resolve({ status: res.statusCode ?? 0, location: String(res.headers.location ?? '') });
      })
      .on('error', reject);
  });
}

function print(label: string, r: HttpLoadResult, cpu: number, seconds: number): void {
  console.log(`  ${label}`);
  const bad = r.bad || r.errors ? `; ${r.bad} non-2xx/3xx, ${r.errors} socket errors` : '';
  line('requests/s', `${num(r.rps)}  (${r.requests} requests${bad})`);
  line('latency p50 / p99', `${ms(r.lat.p50)} / ${ms(r.lat.p99)}`);
  const client = Number.isFinite(r.clientCpu) ? `, client ${num(r.clientCpu / seconds)}` : '';
  line('CPU (cores busy)', `server ${num(cpu / seconds)}${client}`);
}

export async function runRedirect(o: RedirectOptions, certsDir: string): Promise<SummaryRow[]> {
  const tool = wrkAvailable() ? 'wrk -t1' : 'built-in node keep-alive client';
  heading(`2. Tracking redirect: GET /t/c/{token}, ${o.connections} keep-alive connections, ${tool}`);
  const workDir = tempDir('redirect');
  const dns = await startBenchDns({
    [RCPT_DOMAIN]: [{ type: 'MX', exchange: `mx.${RCPT_DOMAIN}`, priority: 10 }],
    [`mx.${RCPT_DOMAIN}`]: [{ type: 'A', address: MX_IP }],
  });
  const mx = await startServerChild({ kind: 'smtp', host: MX_IP, port: 0, keep: o.recipients });
  const setup = { dataDir: workDir, certsDir, dnsServer: dns.server, mxPort: mx.port, dkim: true, tracking: true };
  const tenant = await prepareTenant(setup);
  const gw = await startGatewayChild(setup);
  let stopped = false;
  try {
    const recipients = Array.from({ length: o.recipients }, (_, i) => `reader${i}@${RCPT_DOMAIN}`);
    const sent = await smtpLoad({
      port: gw.smtpPort,
      sessions: 1,
      total: 1,
      auth: { user: tenant.user, pass: tenant.pass },
      mailFrom: `sender@${SENDER_DOMAIN}`,
      rcpt: () => recipients,
      body: fixtureCrlf(),
    });
    if (sent.accepted !== 1) throw new Error(`sending the token message failed: ${sent.firstError}`);
    const got = await poll(async () => ((await mx.stats()).count >= o.recipients ? true : undefined), 60_000);
    if (!got) throw new Error(`only ${(await mx.stats()).count} of ${o.recipients} tracked copies reached the MX sink`);
    const tokens = await tokensFrom(await mx.bodies());
    await mx.stop();
    if (!tokens.length) throw new Error('no /t/c/ tokens in the delivered copies');
    const paths = tokens.map((t) => `/t/c/${t}`);
    const probe = await get(`${gw.httpUrl}${paths[0]}`);
    line('tokens', `${tokens.length} click tokens from ${o.recipients} delivered copies; probe: ${probe.status} → ${probe.location.slice(0, 60)}`);

    const bare = await startServerChild({ kind: 'http', host: '127.0.0.1', port: 0, location: probe.location });
    let bareRes: HttpLoadResult;
    let bareCpu: number;
    try {
      const base = `http://127.0.0.1:${bare.port}`;
      await httpLoad({ base, paths, connections: o.connections, durationMs: o.warmupMs }, workDir);
      const c0 = bare.cpu();
      bareRes = await httpLoad({ base, paths, connections: o.connections, durationMs: o.durationMs }, workDir);
      bareCpu = bare.cpu() - c0;
      print('bare node:http 302 server (baseline)', bareRes, bareCpu, o.durationMs / 1000);
      line('server peak RSS', mb(bare.peakRss()));
    } finally {
      await bare.stop();
    }

    const warm = await httpLoad({ base: gw.httpUrl, paths, connections: o.connections, durationMs: o.warmupMs }, workDir);
    const c0 = gw.cpu();
    const gwRes = await httpLoad({ base: gw.httpUrl, paths, connections: o.connections, durationMs: o.durationMs }, workDir);
    const gwCpu = gw.cpu() - c0;
    print('gateway GET /t/c/{token}', gwRes, gwCpu, o.durationMs / 1000);
    line('gateway peak RSS', mb(gw.peakRss()));
    line('ratio gateway / bare', ratio(gwRes.rps, bareRes.rps));
    if (!wrkAvailable()) line('', 'NOTE: the node client tops out before a bare server does; with it the ratio is an upper bound');

    // The recorder commits every 100 ms and on shutdown; read the counters once the process is gone.
    const shutdownMs = await gw.stop();
    stopped = true;
    const store = openStore(workDir);
    const totals = store.stats.totals({ since: 0, until: Date.now() + 3_600_000 });
    store.close();
    const recorded = (totals.clicked ?? 0) + (totals.clicked_flagged ?? 0);
    const served = warm.requests - warm.bad + gwRes.requests - gwRes.bad + 1;
    line('clicks recorded in the store', `${recorded} of ${served} redirects served (${num((100 * recorded) / Math.max(1, served), 1)} %; ${totals.clicked_flagged ?? 0} flagged as bot/proxy)`);
    line('gateway shutdown after the run', ms(shutdownMs));

    return [
      { part: 'redirect', metric: 'GET /t/c/{token} req/s', value: num(gwRes.rps), baseline: `${num(bareRes.rps)} bare 302`, ratio: ratio(gwRes.rps, bareRes.rps), aim: '≥ 0.75×' },
      { part: 'redirect', metric: 'redirect latency p50 / p99', value: `${ms(gwRes.lat.p50)} / ${ms(gwRes.lat.p99)}`, baseline: `${ms(bareRes.lat.p50)} / ${ms(bareRes.lat.p99)}` },
      { part: 'redirect', metric: 'clicks recorded / redirects served', value: `${recorded} / ${served}` },
    ];
  } finally {
    if (!stopped) await gw.stop();
    await mx.stop().catch(() => undefined);
    await dns.close();
  }
}
