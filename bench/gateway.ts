// The gateway under test, run the way a user runs it: `node bin/relaygate.mjs
// start` in its own process with RELAYGATE_CONFIG pointing at a JSON file, so
// the CPU and peak RSS we read from /proc are the gateway's alone. Its log
// (level info, as shipped) goes to a file in the data dir, never through a
// pipe the bench would have to drain.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { createApiKey } from '../src/auth/api-keys.js';
import { addCredential } from '../src/auth/credentials.js';
import { parseConfig } from '../src/config/load.js';
import { createDomainService } from '../src/domains/service.js';
import { openStore } from '../src/store/index.js';
import { ROOT, cpuSeconds, peakRss, poll, rss } from './lib.js';

/** The reference message is From sender@sender.test To rcpt@rcpt.test. */
export const SENDER_DOMAIN = 'sender.test';
export const RCPT_DOMAIN = 'rcpt.test';
/** The loopback address the MX sink listens on (rcpt.test's MX points here). */
export const MX_IP = '127.0.0.2';

export interface GatewaySetup {
  dataDir: string;
  certsDir: string;
  dnsServer: string;
  mxPort: number;
  dkim: boolean;
  tracking: boolean;
}

export interface Tenant {
  user: string;
  pass: string;
  apiKey: string;
}

export function configInput(s: GatewaySetup): Record<string, unknown> {
  return {
    dataDir: s.dataDir,
    certsDir: s.certsDir,
    hostname: 'relay.bench.test',
    smtp: { host: '127.0.0.1', port: 0 },
    // The rate limit is the product's per-key guard (default 50/s); the bench measures capacity.
    http: { host: '127.0.0.1', port: 0, publicUrl: 'http://track.bench.test', rateLimit: 1_000_000 },
    dns: { servers: [s.dnsServer], timeout: '2s' },
    delivery: { mxPort: s.mxPort },
    tracking: { opens: s.tracking, clicks: s.tracking },
    log: { level: 'info' },
  };
}

/**
 * The sending domain (with a fresh RSA-2048 DKIM key, or without any key so
 * mail goes out unsigned), one SMTP credential and one API key, written
 * through the same modules the CLI uses before the gateway starts.
 */
export async function prepareTenant(s: GatewaySetup): Promise<Tenant> {
  const config = parseConfig(configInput(s), 'bench config');
  const store = openStore(s.dataDir);
  try {
    if (!store.tenants.domain(SENDER_DOMAIN)) {
      if (s.dkim) createDomainService({ config, store }).add(SENDER_DOMAIN);
      else store.tenants.addDomain(SENDER_DOMAIN, null, []);
    }
    const cred = (await addCredential(store, SENDER_DOMAIN, { name: `bench-${Date.now().toString(36)}` })) as { username: string; password: string };
    const key = createApiKey(store, 'bench', ['send', 'read']);
    // Diagnostics only: a what-if on the schema (e.g. an index) before the gateway starts.
    if (process.env.BENCH_EXTRA_SQL) store.db.exec(process.env.BENCH_EXTRA_SQL);
    return { user: cred.username, pass: cred.password, apiKey: key.key };
  } finally {
    store.close();
  }
}

export interface GatewayChild {
  pid: number;
  smtpPort: number;
  httpPort: number;
  httpUrl: string;
  logFile: string;
  /** Resident set size once the gateway said it was ready (bytes). */
  startRss: number;
  cpu(): number;
  peakRss(): number;
  /** SIGTERM and wait; resolves with how long the shutdown took (ms). */
  stop(): Promise<number>;
}

export async function startGatewayChild(s: GatewaySetup): Promise<GatewayChild> {
  const configFile = path.join(s.dataDir, 'bench-config.json');
  fs.writeFileSync(configFile, JSON.stringify(configInput(s)));
  const logFile = path.join(s.dataDir, 'gateway.log');
  const out = fs.openSync(logFile, 'a');
  // Diagnostics only, e.g. BENCH_GATEWAY_NODE_ARGS="--cpu-prof --cpu-prof-dir=/tmp/prof".
  const nodeArgs = (process.env.BENCH_GATEWAY_NODE_ARGS ?? '').split(' ').filter(Boolean);
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('RELAYGATE_') && v !== undefined) env[k] = v;
  env.RELAYGATE_CONFIG = configFile;
  const proc = spawn(process.execPath, [...nodeArgs, path.join(ROOT, 'bin', 'relaygate.mjs'), 'start'], { cwd: ROOT, env, stdio: ['ignore', out, out] });
  fs.closeSync(out);
  let exitCode: number | null | undefined;
  const exited = new Promise<void>((r) =>
    proc.once('exit', (code) => {
      exitCode = code;
      r();
    }),
  );
  const tail = () => fs.readFileSync(logFile, 'utf8').split('\n').slice(-15).join('\n');
  const ready = await poll<{ smtpPort: number; httpPort: number } | null>(
    () => {
      if (exitCode !== undefined) return null;
      for (const l of fs.readFileSync(logFile, 'utf8').split('\n')) {
        if (!l.includes('relaygate ready')) continue;
        const j = JSON.parse(l) as { smtpPort: number; httpPort: number };
        return { smtpPort: j.smtpPort, httpPort: j.httpPort };
      }
      return undefined;
    },
    60_000,
  );
  if (!ready) {
    proc.kill('SIGKILL');
    throw new Error(`gateway did not start (exit ${String(exitCode)}); log tail:\n${tail()}`);
  }
  return {
    pid: proc.pid!,
    ...ready,
    httpUrl: `http://127.0.0.1:${ready.httpPort}`,
    logFile,
    startRss: rss(proc.pid!),
    cpu: () => cpuSeconds(proc.pid!),
    peakRss: () => peakRss(proc.pid!),
    async stop() {
      const t0 = Date.now();
      if (exitCode === undefined) proc.kill('SIGTERM');
      const force = setTimeout(() => proc.kill('SIGKILL'), 15_000);
      await exited;
      clearTimeout(force);
      return Date.now() - t0;
    },
  };
}
