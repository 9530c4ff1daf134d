// HTTP load generators: wrk when it is on PATH (C, epoll, negligible cost
// per request), else a keep-alive node:http client. Both spread requests
// over a list of paths with a fixed number of open connections.
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { nowMs, selfCpuSeconds, summarize, type Summary } from './lib.js';

export interface HttpLoadOptions {
  /** `http://127.0.0.1:PORT` */
  base: string;
  paths: string[];
  connections: number;
  durationMs: number;
  method?: 'GET' | 'POST';
  headers?: Record<string, string>;
  body?: string;
}

export interface HttpLoadResult {
  tool: string;
  requests: number;
  rps: number;
  /** Responses that were not 2xx/3xx, and connection errors. */
  bad: number;
  errors: number;
  /** Status code → count, when the tool reports it. */
  statuses: Record<string, number>;
  lat: Pick<Summary, 'p50' | 'p99'> & Partial<Summary>;
  /** CPU seconds the generator used (this process for node; n/a for wrk). */
  clientCpu: number;
}

let wrkAllowed = true;
/** `--no-wrk`: use the node client even where wrk is installed. */
export function allowWrk(allowed: boolean): void {
  wrkAllowed = allowed;
}

export function wrkAvailable(): boolean {
  return wrkAllowed && spawnSync('wrk', ['--version'], { stdio: 'ignore' }).error === undefined;
}

const UNIT: Record<string, number> = { us: 0.001, ms: 1, s: 1000, m: 60_000 };
const toMs = (v: string, unit: string) => Number(v) * (UNIT[unit] ?? NaN);

/** wrk with a Lua script that cycles through `paths`; one thread, so the server keeps a core. */
export async function wrkLoad(o: HttpLoadOptions, workDir: string): Promise<HttpLoadResult> {
  const script = path.join(workDir, `wrk-${process.pid}-${Date.now()}.lua`);
  const lua = [
    `local paths = { ${o.paths.map((p) => JSON.stringify(p)).join(', ')} }`,
    'local i = 0',
    `wrk.method = ${JSON.stringify(o.method ?? 'GET')}`,
    ...(o.body !== undefined ? [`wrk.body = ${JSON.stringify(o.body)}`] : []),
    ...Object.entries(o.headers ?? {}).map(([k, v]) => `wrk.headers[${JSON.stringify(k)}] = ${JSON.stringify(v)}`),
    'request = function()',
    '  i = i % #paths + 1',
    '  return wrk.format(nil, paths[i])',
    'end',
  ].join('\n');
  fs.writeFileSync(script, lua);
  // A slow server must show up as latency, not as wrk's default 2 s timeouts.
  const args = ['-t1', `-c${o.connections}`, '--timeout', '30s', `-d${Math.max(1, Math.round(o.durationMs / 1000))}s`, '--latency', '-s', script, o.base];
  const out = await new Promise<string>((resolve, reject) => {
    const p = spawn('wrk', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let s = '';
    p.stdout.on('data', (d) => (s += d));
    p.stderr.on('data', (d) => (s += d));
    p.on('error', reject);
    p.on('close', () => resolve(s));
  });
  fs.rmSync(script, { force: true });
  const m = (re: RegExp) => re.exec(out);
  const requests = Number(m(/(\d+) requests in/)?.[1] ?? NaN);
  const rps = Number(m(/Requests\/sec:\s+([\d.]+)/)?.[1] ?? NaN);
  const pct = (q: string) => {
    const r = m(new RegExp(`^\\s+${q}%\\s+([\\d.]+)(us|ms|s|m)\\s*$`, 'm'));
    return r ? toMs(r[1], r[2]) : NaN;
  };
  const bad = Number(m(/Non-2xx or 3xx responses: (\d+)/)?.[1] ?? 0);
  const sock = m(/Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/);
  const errors = sock ? sock.slice(1).reduce((a, b) => a + Number(b), 0) : 0;
  if (!Number.isFinite(rps)) throw new Error(`could not read wrk output:\n${out}`);
  return { tool: 'wrk -t1', requests, rps, bad, errors, statuses: {}, lat: { p50: pct('50'), p90: pct('90'), p99: pct('99') }, clientCpu: NaN };
}

/** Keep-alive node:http client: `connections` request loops sharing one Agent. */
export async function nodeLoad(o: HttpLoadOptions): Promise<HttpLoadResult> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: o.connections });
  const url = new URL(o.base);
  const latencies: number[] = [];
  const statuses: Record<string, number> = {};
  let errors = 0;
  let next = 0;
  const body = o.body !== undefined ? Buffer.from(o.body) : undefined;
  const headers = { ...(o.headers ?? {}), ...(body ? { 'Content-Length': String(body.length) } : {}) };
  const one = (p: string) =>
    new Promise<number>((resolve, reject) => {
      const req = http.request({ host: url.hostname, port: url.port, path: p, method: o.method ?? 'GET', agent, headers }, (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
        res.on('error', reject);
      });
      req.on('error', reject);
      req.end(body);
    });
  const cpu0 = selfCpuSeconds();
  const t0 = nowMs();
  const end = t0 + o.durationMs;
  await Promise.all(
    Array.from({ length: o.connections }, async () => {
      while (nowMs() < end) {
        const p = o.paths[next++ % o.paths.length];
        const s = nowMs();
        try {
          const code = await one(p);
          latencies.push(nowMs() - s);
          statuses[code] = (statuses[code] ?? 0) + 1;
        } catch {
          errors++;
        }
      }
    }),
  );
  const elapsed = nowMs() - t0;
  agent.destroy();
  const bad = Object.entries(statuses)
    .filter(([c]) => !/^[23]/.test(c))
    .reduce((a, [, n]) => a + n, 0);
  return {
    tool: 'node keep-alive client',
    requests: latencies.length,
    rps: (latencies.length * 1000) / elapsed,
    bad,
    errors,
    statuses,
    lat: summarize(latencies),
    clientCpu: selfCpuSeconds() - cpu0,
  };
}

/** wrk for plain GETs when available; the node client otherwise (and always when statuses must be counted). */
export function httpLoad(o: HttpLoadOptions, workDir: string, prefer: 'wrk' | 'node' = 'wrk'): Promise<HttpLoadResult> {
  return prefer === 'wrk' && wrkAvailable() ? wrkLoad(o, workDir) : nodeLoad(o);
}
