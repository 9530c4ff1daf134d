// Shared bench plumbing: the reference message, latency summaries, number
// formatting, per-process CPU and peak RSS from /proc, temp dirs and ports.
// Nothing here asserts a timing: the bench reports, people judge.
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const BENCH_DIR = path.dirname(fileURLToPath(import.meta.url));
export const ROOT = path.resolve(BENCH_DIR, '..');
export const FIXTURE = path.join(BENCH_DIR, 'fixtures', 'msg-20k.eml');

/** The reference message with CRLF line endings, as it travels over SMTP (the file has LF). */
export function fixtureCrlf(): Buffer {
  return Buffer.from(fs.readFileSync(FIXTURE, 'latin1').replace(/\r?\n/g, '\r\n'), 'latin1');
}

/** Latency samples in milliseconds. */
export interface Summary {
  n: number;
  mean: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
}

export function summarize(samples: ArrayLike<number>): Summary {
  const s = Float64Array.from(samples).sort();
  const at = (q: number) => (s.length ? s[Math.min(s.length - 1, Math.ceil(q * s.length) - 1)] : NaN);
  let sum = 0;
  for (const v of s) sum += v;
  return { n: s.length, mean: s.length ? sum / s.length : NaN, p50: at(0.5), p90: at(0.9), p99: at(0.99), max: s.length ? s[s.length - 1] : NaN };
}

export const nowMs = (): number => performance.now();

/** 1234.5 → "1,235"; small numbers keep a decimal or two. */
export function num(v: number, digits?: number): string {
  if (!Number.isFinite(v)) return 'n/a';
  const d = digits ?? (Math.abs(v) >= 100 ? 0 : Math.abs(v) >= 10 ? 1 : 2);
  return v.toLocaleString('en-US', { minimumFractionDigits: d, maximumFractionDigits: d });
}

export const ms = (v: number): string => (Number.isFinite(v) ? `${num(v, v < 10 ? 2 : 1)} ms` : 'n/a');
export const ratio = (a: number, b: number): string => (Number.isFinite(a) && Number.isFinite(b) && b > 0 ? `${(a / b).toFixed(2)}×` : 'n/a');
export const mb = (bytes: number): string => (Number.isFinite(bytes) ? `${num(bytes / 1048576, 0)} MB` : 'n/a');

// ---------------------------------------------------------------------------
// Processes

const CLK_TCK = 100; // Linux USER_HZ; getconf CLK_TCK is 100 on every mainstream kernel.

/** User+system CPU seconds a process has used so far (all its threads), NaN when unreadable. */
export function cpuSeconds(pid: number): number {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name may hold spaces; fields after it start past the last ')'.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / CLK_TCK; // utime, stime (fields 14, 15)
  } catch {
    return NaN;
  }
}

function statusKb(pid: number, field: string): number {
  try {
    const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : NaN;
  } catch {
    return NaN;
  }
}

/** Peak resident set size (VmHWM) of a process, in bytes. */
export const peakRss = (pid: number): number => statusKb(pid, 'VmHWM');

/** Current resident set size (VmRSS) of a process, in bytes. */
export const rss = (pid: number): number => statusKb(pid, 'VmRSS');

/** This process's CPU seconds (user+system), for "was the client the bottleneck?". */
export const selfCpuSeconds = (): number => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
};

// ---------------------------------------------------------------------------
// Files and ports

const tempDirs: string[] = [];
let keepTemp = false;

export function keepTempDirs(keep: boolean): void {
  keepTemp = keep;
}

export function tempDir(prefix: string): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `relaygate-bench-${prefix}-`));
  tempDirs.push(dir);
  return dir;
}

export function removeTempDirs(): string[] {
  if (keepTemp) return tempDirs.slice();
  for (const d of tempDirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
  return [];
}

export async function freePort(host = '127.0.0.1'): Promise<number> {
  const srv = net.createServer();
  await new Promise<void>((r) => srv.listen(0, host, r));
  const { port } = srv.address() as net.AddressInfo;
  await new Promise<void>((r) => srv.close(() => r()));
  return port;
}

export const sleep = (msDelay: number) => new Promise<void>((r) => setTimeout(r, msDelay));

/** Polls `fn` until it returns a value other than undefined, or gives up with `undefined`. */
export async function poll<T>(fn: () => T | undefined | Promise<T | undefined>, timeoutMs: number, everyMs = 50): Promise<T | undefined> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > end) return undefined;
    await sleep(everyMs);
  }
}

// ---------------------------------------------------------------------------
// Output

export function heading(title: string): void {
  console.log(`\n== ${title} ${'='.repeat(Math.max(0, 74 - title.length))}`);
}

export const line = (label: string, value: string): void => console.log(`  ${label.padEnd(44)} ${value}`);

export function table(header: string[], rows: string[][]): void {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const fmt = (cells: string[]) => cells.map((c, i) => (c ?? '').padEnd(widths[i])).join('  ').trimEnd();
  console.log(fmt(header));
  console.log(widths.map((w) => '-'.repeat(w)).join('  '));
  for (const r of rows) console.log(fmt(r));
}

/** One row of the closing summary: what, relaygate's figure, the baseline, their ratio, the aim. */
export interface SummaryRow {
  part: string;
  metric: string;
  value: string;
  baseline?: string;
  ratio?: string;
  aim?: string;
}
