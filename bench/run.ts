// `npm run bench [-- PART…] [--flags]`: loopback benchmarks of relaygate
// against baselines measured in the same run. Parts: smtp, redirect, stats
// (all three by default). Figures and ratios are printed, never asserted: the
// exit code says only whether the bench itself ran.
//
// Diagnostics (environment, never set by default):
//   BENCH_GATEWAY_NODE_ARGS="--cpu-prof --cpu-prof-dir=/tmp/prof"  node flags for every gateway child
//   BENCH_EXTRA_SQL="CREATE INDEX …"  SQL run on each fresh data dir before its gateway starts (what-if experiments)
import { spawnSync } from 'node:child_process';
import os from 'node:os';
import { parseArgs } from 'node:util';
import { allowWrk, wrkAvailable } from './http-load.js';
import { ROOT, heading, keepTempDirs, removeTempDirs, table, tempDir, type SummaryRow } from './lib.js';
import { runRedirect } from './redirect.js';
import { VARIANTS, runSmtp } from './smtp-accept.js';
import { runStats } from './stats.js';

const PARTS = ['smtp', 'redirect', 'stats'] as const;
type Part = (typeof PARTS)[number];

const USAGE = `usage: npm run bench [-- [smtp] [redirect] [stats] [options]]
  --messages N        SMTP messages per run (default 3000)
  --sessions N        concurrent SMTP sessions (default 16)
  --max-seconds S     stop starting SMTP messages after S seconds per run (default 15)
  --variants a,b      gateway variants for the smtp part (default all: ${VARIANTS.map((v) => v.name).join(', ')})
  --connections N     keep-alive connections for the redirect part (default 64)
  --duration S        seconds per measured HTTP load run (default 10)
  --seed-messages N   messages seeded for the stats part (default 100000)
  --seed-events N     events seeded for the stats part (default 1000000)
  --send-clients N    concurrent POST /api/v1/messages clients (default 32)
  --no-wrk            use the built-in node keep-alive client even when wrk is installed
  --keep              keep the temporary data dirs (gateway logs, databases)`;

function options() {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: {
      messages: { type: 'string', default: '3000' },
      sessions: { type: 'string', default: '16' },
      'max-seconds': { type: 'string', default: '15' },
      variants: { type: 'string', default: '' },
      connections: { type: 'string', default: '64' },
      duration: { type: 'string', default: '10' },
      'seed-messages': { type: 'string', default: '100000' },
      'seed-events': { type: 'string', default: '1000000' },
      'send-clients': { type: 'string', default: '32' },
      keep: { type: 'boolean', default: false },
      'no-wrk': { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  const int = (name: keyof typeof values) => {
    const n = Number(values[name]);
    if (!Number.isFinite(n) || n <= 0) throw new Error(`--${name} must be a positive number`);
    return n;
  };
  const unknown = positionals.filter((p) => !PARTS.includes(p as Part));
  if (values.help || unknown.length) {
    console.log(unknown.length ? `unknown part(s): ${unknown.join(', ')}\n${USAGE}` : USAGE);
    process.exit(unknown.length ? 2 : 0);
  }
  const variants = String(values.variants).split(',').filter(Boolean);
  const bad = variants.filter((v) => !VARIANTS.some((x) => x.name === v));
  if (bad.length) throw new Error(`unknown variant(s) ${bad.join(', ')}; known: ${VARIANTS.map((v) => v.name).join(', ')}`);
  return {
    parts: (positionals.length ? [...new Set(positionals)] : [...PARTS]) as Part[],
    keep: Boolean(values.keep),
    wrk: !values['no-wrk'],
    smtp: { messages: int('messages'), sessions: int('sessions'), maxMs: int('max-seconds') * 1000, drainTimeoutMs: 60_000, variants },
    redirect: { connections: int('connections'), durationMs: int('duration') * 1000, warmupMs: 2000, recipients: 50 },
    stats: {
      seedMessages: int('seed-messages'),
      seedEvents: int('seed-events'),
      statsCalls: 50,
      clickCalls: 200,
      sendConnections: int('send-clients'),
      sendMs: int('duration') * 1000,
      warmupMs: 2000,
    },
  };
}

function describeMachine(): void {
  const cpus = os.cpus();
  const [l1, l5] = os.loadavg();
  console.log(`relaygate bench: node ${process.version}, ${cpus.length} × ${cpus[0]?.model.trim() ?? 'cpu'}, ${Math.round(os.totalmem() / 2 ** 30)} GB RAM`);
  console.log(`load average before the run: ${l1.toFixed(2)} (1 min), ${l5.toFixed(2)} (5 min)`);
  if (l1 > cpus.length * 0.5) console.log(`  NOTE: other processes are busy on this machine; absolute figures will be low and noisy, same-run ratios less so.`);
  // The bench runs the working tree: say which, so figures can be matched to code.
  const git = (...args: string[]) => spawnSync('git', args, { cwd: ROOT, encoding: 'utf8' }).stdout?.trim() ?? '';
  const dirty = git('status', '--porcelain', '--', 'src').split('\n').filter(Boolean).length;
  console.log(`code: ${git('rev-parse', '--short', 'HEAD') || 'unknown'}${dirty ? ` + ${dirty} uncommitted change(s) under src/` : ''}`);
  console.log(`HTTP load generator: ${wrkAvailable() ? 'wrk' : 'built-in node keep-alive client (install wrk for a lighter one)'}`);
}

async function main(): Promise<void> {
  const o = options();
  keepTempDirs(o.keep);
  allowWrk(o.wrk);
  describeMachine();
  const started = Date.now();
  const certsDir = tempDir('certs');
  const rows: SummaryRow[] = [];
  const failures: string[] = [];
  for (const part of o.parts) {
    try {
      if (part === 'smtp') rows.push(...(await runSmtp(o.smtp, certsDir)).rows);
      if (part === 'redirect') rows.push(...(await runRedirect(o.redirect, certsDir)));
      if (part === 'stats') rows.push(...(await runStats(o.stats, certsDir)));
    } catch (e) {
      failures.push(part);
      console.error(`\n  ${part} part failed: ${(e as Error).stack ?? String(e)}`);
    }
  }

  heading('Summary');
  table(
    ['part', 'metric', 'relaygate', 'baseline (same run)', 'ratio', 'aim (issues)'],
    rows.map((r) => [r.part, r.metric, r.value, r.baseline ?? '', r.ratio ?? '', r.aim ?? '']),
  );
  const [l1] = os.loadavg();
  console.log(`\nfinished in ${((Date.now() - started) / 1000).toFixed(0)} s; load average now ${l1.toFixed(2)}`);
  const kept = removeTempDirs();
  if (kept.length) console.log(`kept: ${kept.join(' ')}`);
  if (failures.length) {
    console.log(`failed parts: ${failures.join(', ')}`);
    process.exitCode = 1;
  }
}

await main();
