// `npm run test:crash`: the full crash suite — 10,000 messages, 10 SIGKILLs.
// RELAYGATE_CRASH_SEED replays a run; RELAYGATE_CRASH_MESSAGES / _KILLS resize it;
// RELAYGATE_CRASH_RATE paces the load (messages per second; default: full speed).
// Exits 1 if an acknowledged message or its webhook event was lost.
import { formatReport, runCrash } from './driver.js';

const int = (name: string, dflt: number) => {
  const v = process.env[name];
  return v === undefined || v === '' ? dflt : Number.parseInt(v, 10);
};

const seed = int('RELAYGATE_CRASH_SEED', Math.floor(Math.random() * 2 ** 31));
const messages = int('RELAYGATE_CRASH_MESSAGES', 10_000);
const kills = int('RELAYGATE_CRASH_KILLS', 10);
const rate = int('RELAYGATE_CRASH_RATE', 0);
console.log(`crash suite: ${messages} messages, ${kills} kills, seed ${seed} (RELAYGATE_CRASH_SEED=${seed} replays it)${rate ? `, paced at ${rate} msg/s` : ''}`);

const stamp = () => new Date().toISOString().slice(11, 19);
const report = await runCrash({ messages, kills, seed, rate, log: (l) => console.log(`[${stamp()}] ${l}`) });
console.log(formatReport(report));
const failed = report.lost > 0 || report.webhook.missing > 0;
if (failed) console.log('FAILED: acknowledged mail or webhook events were lost');
process.exit(failed ? 1 : 0);
