// What a crash run found, and how `npm run test:crash` and the bounded test print it.

export type KillKind = 'random' | 'group-commit' | 'after-remote-250' | 'webhook-dispatch';

export interface KillRecord {
  n: number;
  kind: KillKind;
  /** The aimed-at moment came; false: the fallback timer fired and it was a plain random kill. */
  aimed: boolean;
  ackedBefore: number;
  atMs: number;
  /** SIGKILL → the restarted gateway logged ready. */
  downMs: number;
  /** Messages the MX had already taken that the restarted gateway delivered again. */
  redelivered: number;
}

export interface CrashReport {
  seed: number;
  messages: number;
  /** Paced load in messages per second; 0 = as fast as the gateway answers. */
  rate: number;
  sessions: number;
  httpEvery: number;
  acknowledged: number;
  ackedSmtp: number;
  ackedHttp: number;
  unacknowledged: number;
  refused: { seq: number; reply: string }[];
  ambiguousAttempts: number;
  tempFailures: number;
  delivered: number;
  lost: number;
  lostSeqs: number[];
  duplicated: number;
  duplicatedAfterLostReply: number;
  /** Of those, resent through the HTTP API (with an Idempotency-Key: should be 0). */
  duplicatedAfterLostReplyHttp: number;
  duplicatedByGateway: number;
  /** For each redelivery by the gateway: ms between the MX taking the message and the SIGKILL. */
  redeliveryAgesMs: number[];
  mxReceptions: number;
  /** seq → epochs of its receptions, for each seq received more than once (first 20). */
  duplicateEpochs: { seq: number; epochs: number[]; resentAfterLostReply: number }[];
  mxUnreadable: number;
  unackedArrived: number;
  kills: KillRecord[];
  unexpectedExits: string[];
  webhook: { expected: number; received: number; missing: number; missingSeqs: number[]; duplicated: number; total: number };
  /** ms from the MX taking a message to the outcome the gateway recorded (its updated_at). */
  recordLag: { n: number; p50: number; p90: number; p99: number; max: number };
  timings: { setupMs: number; loadMs: number; drainMs: number; webhookMs: number; wallMs: number };
  dataDir: string;
}

const pct = (n: number, of: number) => (of ? `${((100 * n) / of).toFixed(3)}%` : '-');

function ages(ms: number[]): string {
  if (!ms.length) return '-';
  const band = (lo: number, hi: number) => ms.filter((a) => a > lo && a <= hi).length;
  return `≤ 1 ms (negative: taken after the kill): ${band(-Infinity, 1)}, 1–5 ms: ${band(1, 5)}, 5–20 ms: ${band(5, 20)}, > 20 ms: ${band(20, Infinity)} (${ms.join(', ')})`;
}

export function formatReport(r: CrashReport): string {
  const lines = [
    `relaygate crash suite — seed ${r.seed}`,
    `  messages            ${r.messages} over ${r.sessions} SMTP sessions, 1 in ${r.httpEvery} through the HTTP API, ${r.rate ? `paced at ${r.rate} msg/s` : 'as fast as the gateway answers'}`,
    `  acknowledged        ${r.acknowledged} (SMTP 250: ${r.ackedSmtp}, HTTP 202: ${r.ackedHttp}); unacknowledged at the end: ${r.unacknowledged}; refused: ${r.refused.length}`,
    `  sent without reply  ${r.ambiguousAttempts} attempts (resent later); temporary refusals retried: ${r.tempFailures}`,
    `  delivered           ${r.delivered} of ${r.acknowledged} acknowledged (MX receptions ${r.mxReceptions})`,
    `  LOST                ${r.lost}${r.lost ? `  seqs: ${r.lostSeqs.join(', ')}` : ''}`,
    `  duplicated          ${r.duplicated} (${pct(r.duplicated, r.acknowledged)}): ${r.duplicatedByGateway} redelivered by the gateway after a kill past the remote 250, ${r.duplicatedAfterLostReply} resent by a client whose reply was lost (${r.duplicatedAfterLostReplyHttp} of them via HTTP with an Idempotency-Key)`,
    `  redelivered, age    how long the MX had had each one when the gateway was killed: ${ages(r.redeliveryAgesMs)}`,
    `  kills               ${r.kills.length}: ${r.kills.map((k) => `${k.kind}${k.aimed ? '' : '(timeout)'} → ${k.redelivered} again`).join(', ')}`,
    `  record lag          MX 250 → outcome recorded: p50 ${r.recordLag.p50} ms, p90 ${r.recordLag.p90} ms, p99 ${r.recordLag.p99} ms, max ${r.recordLag.max} ms (${r.recordLag.n} deliveries sent once; the re-sent are the duplicates)`,
    `  restart time        ${r.kills.length ? `${Math.min(...r.kills.map((k) => k.downMs))}-${Math.max(...r.kills.map((k) => k.downMs))} ms` : '-'}`,
    `  unexpected exits    ${r.unexpectedExits.length}`,
    `  webhook events      expected ${r.webhook.expected}, received ${r.webhook.received}, missing ${r.webhook.missing}, duplicated ${r.webhook.duplicated} (${pct(r.webhook.duplicated, r.webhook.total)} of ${r.webhook.total} POSTs)`,
    `  wall time           ${(r.timings.wallMs / 1000).toFixed(1)} s (setup ${(r.timings.setupMs / 1000).toFixed(1)} s, load ${(r.timings.loadMs / 1000).toFixed(1)} s, drain ${(r.timings.drainMs / 1000).toFixed(1)} s, webhooks ${(r.timings.webhookMs / 1000).toFixed(1)} s)`,
  ];
  if (r.duplicateEpochs.length) {
    lines.push(`  duplicates (seq: epochs of its receptions, 0 = first gateway process): ${r.duplicateEpochs.map((d) => `${d.seq}: ${d.epochs.join('/')}${d.resentAfterLostReply ? ' (resent)' : ''}`).join(', ')}`);
  }
  if (r.webhook.missing) lines.push(`  missing webhook seqs: ${r.webhook.missingSeqs.join(', ')}`);
  for (const e of r.unexpectedExits) lines.push(`  unexpected exit: ${e}`);
  for (const f of r.refused.slice(0, 10)) lines.push(`  refused seq ${f.seq}: ${f.reply}`);
  if (r.mxUnreadable || r.unackedArrived) lines.push(`  MX: ${r.mxUnreadable} without X-Crash-Seq, ${r.unackedArrived} seqs arrived but never acknowledged`);
  return lines.join('\n');
}
