// A small SMTP fuzzer (issue 6, part 3). Valid sessions and messages are mutated
// at random — byte flips, truncation, duplicated or dropped lines, inserted CR,
// LF, NUL and dots — and played against a gateway running as its own process,
// so that a crash shows as an exit instead of taking the test runner down.
// After each case: every reply line is well-formed and the server closes the
// session within a bound after QUIT, and the process is alive. At the end a
// valid message is still accepted and delivered, and every delivered copy was
// acknowledged with a 250, arrived once per recipient and holds no bare CR/LF.
//
// Fixed seed (printed; FUZZ_SEED=n to replay), bounded by FUZZ_MS (default 35 s).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { addCredential } from '../../src/auth/credentials.js';
import { createApiKey } from '../../src/auth/api-keys.js';
import { parseConfig } from '../../src/config/load.js';
import { createDomainService } from '../../src/domains/service.js';
import { openStore } from '../../src/store/index.js';
import { startChild, writeConfig, type GatewayChild } from '../helpers/child.js';
import { startTestDns, type TestDns } from '../helpers/dns-server.js';
import { freePort, startMxSink, submitMail, tempDir, testConfigInput, until, type MxSink } from '../helpers/gateway.js';
import { prng } from '../helpers/prng.js';
import { bareLineBreaks } from './tally.js';

const SEED = Number(process.env.FUZZ_SEED ?? 0x5eed2026);
const BUDGET_MS = Number(process.env.FUZZ_MS ?? 35_000);
const WORKERS = 4;
const CLOSE_BOUND_MS = 8_000;
const DOMAIN = 'example.test';

let dns: TestDns;
let mx: MxSink;
let child: GatewayChild;
let env: Record<string, string>;
let cred: { username: string; password: string };
let readKey = '';
let dataDir = '';

const stats = { cases: 0, crashes: 0, hangs: 0, garbled: 0, acknowledged: 0, restarts: 0 };
const acknowledged = new Set<string>();
const problems: string[] = [];

// ---- the valid material that gets mutated

const CRLF = '\r\n';
function messages(n: number): string[] {
  const head = (extra = '') => `From: App <app@${DOMAIN}>${CRLF}To: bob@dest.test${CRLF}Subject: fuzz-${n}${CRLF}MIME-Version: 1.0${CRLF}${extra}`;
  const html = '<html><body><p>Hi <a href="https://shop.test/offer?a=1&amp;b=2">offer</a> and <a href="http://x.test/">x</a></p></body></html>';
  return [
    `${head('Content-Type: text/plain; charset=utf-8')}${CRLF}${CRLF}plain line one${CRLF}..a dot-stuffed line${CRLF}last line`,
    `${head('Content-Type: text/html; charset=utf-8')}${CRLF}${CRLF}${html}`,
    `${head('Content-Type: multipart/alternative; boundary="alt"')}${CRLF}${CRLF}--alt${CRLF}Content-Type: text/plain${CRLF}Content-Transfer-Encoding: quoted-printable${CRLF}${CRLF}caf=C3=A9 soft=${CRLF}break${CRLF}--alt${CRLF}Content-Type: text/html${CRLF}Content-Transfer-Encoding: quoted-printable${CRLF}${CRLF}<a href=3D"http://x.test/q">q</a></body>${CRLF}--alt--`,
    `${head('Content-Type: multipart/mixed; boundary="mix"')}${CRLF}${CRLF}--mix${CRLF}Content-Type: text/html${CRLF}Content-Transfer-Encoding: base64${CRLF}${CRLF}${Buffer.from(html).toString('base64')}${CRLF}--mix${CRLF}Content-Type: application/pdf; name=a.pdf${CRLF}Content-Disposition: attachment; filename=a.pdf${CRLF}Content-Transfer-Encoding: base64${CRLF}${CRLF}JVBERi0xLjQK${CRLF}--mix--`,
    `${head(`X-Relaygate-Tag: fuzz, t2${CRLF}X-Relaygate-Meta: {"n":${n}}${CRLF}X-Relaygate-Track: opens,clicks${CRLF}Content-Type: text/html`)}${CRLF}${CRLF}${html}`,
  ];
}

/** One valid session, as lines (without CRLF). */
function session(n: number, rnd: () => number): string[] {
  const auth = Buffer.from(`\0${cred.username}\0${cred.password}`).toString('base64');
  const rcpts = rnd() < 0.3 ? ['bob@dest.test', 'carol@dest.test'] : ['bob@dest.test'];
  const list = messages(n);
  const body = list[Math.floor(rnd() * list.length)].split(CRLF);
  return ['EHLO fuzz.test', `AUTH PLAIN ${auth}`, `MAIL FROM:<app@${DOMAIN}>`, ...rcpts.map((r) => `RCPT TO:<${r}>`), 'DATA', ...body, '.', 'QUIT'];
}

// ---- mutations

const INSERTS = ['\r', '\n', '\0', '.', '\r\n', '\r\n.\r\n', '\n.\n', '\r.\r', '\r\n.\r', '\n.\r\n', '..', '\r\n\r\n', '\xff\xfe', '='];
const LINES = ['.', 'RSET', 'DATA', 'NOOP', `MAIL FROM:<app@${DOMAIN}>`, 'RCPT TO:<eve@victim.test>', 'AUTH LOGIN', '*', 'STARTTLS', ''];

function mutate(lines: string[], rnd: () => number): { bytes: Buffer; ops: string[] } {
  const pick = <T>(a: T[]): T => a[Math.floor(rnd() * a.length)];
  const ops: string[] = [];
  let ls = lines.slice();
  let tail = '';
  const count = 1 + Math.floor(rnd() * 3);
  for (let k = 0; k < count; k++) {
    const i = Math.floor(rnd() * ls.length);
    switch (Math.floor(rnd() * 7)) {
      case 0: // duplicate a line
        ls.splice(i, 0, ls[i]);
        ops.push(`dup ${i}`);
        break;
      case 1: // drop a line
        ls.splice(i, 1);
        ops.push(`drop ${i}`);
        break;
      case 2: // swap with the next one
        if (i + 1 < ls.length) [ls[i], ls[i + 1]] = [ls[i + 1], ls[i]];
        ops.push(`swap ${i}`);
        break;
      case 3: // insert a line
        ls.splice(i, 0, pick(LINES));
        ops.push(`line ${i}`);
        break;
      case 4: {
        // insert CR / LF / NUL / dots inside a line
        const s = ls[i] ?? '';
        const at = Math.floor(rnd() * (s.length + 1));
        const what = pick(INSERTS);
        ls[i] = s.slice(0, at) + what + s.slice(at);
        ops.push(`insert ${JSON.stringify(what)} ${i}:${at}`);
        break;
      }
      case 5: {
        // repeat a line many times (a small flood)
        const times = 2 + Math.floor(rnd() * 200);
        ls.splice(i, 0, ...Array(times).fill(ls[i] ?? ''));
        ops.push(`repeat ${i}x${times}`);
        break;
      }
      default:
        tail = 'bytes'; // byte-level mutation after joining
    }
  }
  let bytes = Buffer.from(ls.join(CRLF) + CRLF, 'latin1');
  if (tail) {
    const flips = 1 + Math.floor(rnd() * 4);
    bytes = Buffer.from(bytes);
    for (let k = 0; k < flips; k++) {
      const at = Math.floor(rnd() * bytes.length);
      if (rnd() < 0.5) bytes[at] ^= 1 << Math.floor(rnd() * 8);
      else bytes[at] = Math.floor(rnd() * 256);
      ops.push(`byte ${at}`);
    }
  }
  if (rnd() < 0.15) {
    const cut = Math.floor(rnd() * bytes.length);
    bytes = bytes.subarray(0, cut);
    ops.push(`truncate ${cut}`);
  }
  return { bytes, ops };
}

// ---- playing one case

interface Outcome {
  replies: string[];
  closed: boolean;
}

/** Sends `bytes` in a few chunks, then ends any DATA and QUITs; waits for the server to close. */
function play(port: number, bytes: Buffer, rnd: () => number): Promise<Outcome> {
  const cuts = [0, ...Array.from({ length: Math.floor(rnd() * 4) }, () => Math.floor(rnd() * bytes.length)).sort((a, b) => a - b), bytes.length];
  return new Promise((resolve) => {
    const socket = net.connect({ host: '127.0.0.1', port });
    let buf = '';
    const replies: string[] = [];
    let finished = false;
    const finish = (closed: boolean) => {
      if (finished) return;
      finished = true;
      clearTimeout(timer);
      socket.destroy();
      if (buf) replies.push(buf); // a partial line: reported as garbled
      resolve({ replies, closed });
    };
    const timer = setTimeout(() => finish(false), CLOSE_BOUND_MS + 200 * cuts.length);
    socket.on('data', (d) => {
      buf += d.toString('latin1');
      let i: number;
      while ((i = buf.indexOf('\r\n')) >= 0) {
        const line = buf.slice(0, i);
        replies.push(line);
        buf = buf.slice(i + 2);
        // STARTTLS went through: the server now waits for a TLS handshake and has dropped the
        // plaintext sent meanwhile (RFC 3207 §4). Plaintext now must fail the handshake and close.
        if (/^220 [\d.]+ Ready to start TLS/.test(line)) setTimeout(() => socket.write('QUIT\r\n'), 50);
      }
    });
    socket.on('error', () => undefined);
    socket.on('close', () => finish(true));
    socket.once('connect', async () => {
      // Wait for the greeting: early talkers are refused (421), which would test nothing else.
      const end = Date.now() + 3_000;
      while (!replies.length && !finished && Date.now() < end) await new Promise((r) => setTimeout(r, 5));
      for (let k = 0; k + 1 < cuts.length; k++) {
        if (finished) return;
        socket.write(bytes.subarray(cuts[k], cuts[k + 1]));
        if (rnd() < 0.5) await new Promise((r) => setTimeout(r, Math.floor(rnd() * 5)));
      }
      if (!finished) socket.write('\r\n.\r\nQUIT\r\n');
    });
  });
}

async function ensureAlive(): Promise<void> {
  if (child.proc.exitCode === null && child.proc.signalCode === null) return;
  stats.crashes++;
  problems.push(`gateway exited (${child.proc.exitCode ?? child.proc.signalCode}); last log: ${child.log.slice(-5).join(' | ')}`);
  stats.restarts++;
  child = await startChild(env);
}

async function worker(w: number, deadline: number): Promise<void> {
  const rnd = prng(SEED + w * 7919);
  while (Date.now() < deadline) {
    const n = stats.cases++;
    const { bytes, ops } = mutate(session(n, rnd), rnd);
    const out = await play(child.smtpPort, bytes, rnd);
    for (const line of out.replies) {
      if (!/^\d{3}([ -].*)?$/.test(line)) {
        stats.garbled++;
        problems.push(`case ${n} (${ops.join(', ')}): garbled reply ${JSON.stringify(line.slice(0, 80))}`);
      }
      const m = /^250 2\.0\.0 Ok: queued as (\S+)$/.exec(line);
      if (m) {
        acknowledged.add(m[1]);
        stats.acknowledged++;
      }
    }
    if (!out.closed) {
      stats.hangs++;
      problems.push(`case ${n} (${ops.join(', ')}): not closed within ${CLOSE_BOUND_MS} ms after QUIT; replies: ${out.replies.slice(-3).join(' | ')}`);
    }
    await ensureAlive();
  }
}

before(async () => {
  dns = await startTestDns();
  dns.set('dest.test', [{ type: 'MX', exchange: 'mx.dest.test', priority: 10 }]);
  dns.set('mx.dest.test', [{ type: 'A', address: '127.0.0.71' }]);
  const mxPort = await freePort('127.0.0.71');
  mx = await startMxSink('127.0.0.71', mxPort);
  dataDir = tempDir('relaygate-fuzz-');
  // The cases make AUTH mistakes on purpose; the lock-out is the security suite's subject.
  const input = testConfigInput(dns.server, mxPort, dataDir, { smtp: { authFailureLimit: 1_000_000 }, log: { level: 'info' } }) as Record<string, unknown>;
  const config = parseConfig(input, 'fuzz config');
  const store = openStore(config.dataDir);
  try {
    await createDomainService({ config, store }).add(DOMAIN, { algorithm: 'ed25519' });
    cred = (await addCredential(store, DOMAIN, {})) as { username: string; password: string };
    readKey = createApiKey(store, 'fuzz', ['read']).key;
  } finally {
    store.close();
  }
  env = { RELAYGATE_CONFIG: writeConfig(dataDir, input) };
  child = await startChild(env);
}, { timeout: 90_000 }); // bounded: a set-up that hangs must fail, not stall npm test

after(async () => {
  if (child && child.proc.exitCode === null) {
    child.proc.kill('SIGTERM');
    await Promise.race([child.exited, new Promise((r) => setTimeout(r, 10_000))]);
    if (child.proc.exitCode === null) child.proc.kill('SIGKILL');
  }
  await mx?.close();
  await dns?.close();
}, { timeout: 30_000 });

test(`fuzzing SMTP sessions and messages (seed ${SEED}, ${BUDGET_MS / 1000} s)`, { timeout: BUDGET_MS + 120_000 }, async () => {
  const started = Date.now();
  console.log(`[fuzz] seed ${SEED} (FUZZ_SEED=${SEED} to replay), budget ${BUDGET_MS} ms, ${WORKERS} parallel sessions`);
  await Promise.all(Array.from({ length: WORKERS }, (_, w) => worker(w, started + BUDGET_MS)));

  // The gateway still accepts and delivers a valid message.
  const last = await submitMail({ port: child.smtpPort, auth: { user: cred.username, pass: cred.password }, from: `app@${DOMAIN}`, to: 'final@dest.test', subject: 'after the fuzz' });
  assert.match(last.response, /^250 2\.0\.0 Ok: queued as \S+$/);
  acknowledged.add(last.id);
  await until(() => mx.received.some((m) => m.to.includes('final@dest.test')), 'delivery of the final valid message', 20_000);

  // Let every acknowledged message reach a final state, then audit what the MX received.
  const api = (q: string) =>
    fetch(`http://127.0.0.1:${child.httpPort}/api/v1/messages?${q}&per_page=1`, { headers: { authorization: `Bearer ${readKey}` }, signal: AbortSignal.timeout(5_000) }).then(
      (r) => r.json() as Promise<{ pagination: { total: number } }>,
    );
  await until(async () => (await api('status=queued')).pagination.total + (await api('status=deferred')).pagination.total === 0, 'an empty queue', 30_000, 250);

  const seen = new Map<string, number>();
  let unattributed = 0;
  let bare = 0;
  for (const m of mx.received) {
    if (bareLineBreaks(m.body).length) bare++;
    if (m.to.includes('final@dest.test')) continue; // nodemailer wrote its own Message-ID
    const id = /^Message-ID: <([0-9a-z]{26})@relay\.test>\r$/im.exec(m.body.toString('latin1'))?.[1];
    if (!id) {
      unattributed++;
      problems.push(`a copy without our Message-ID: ${JSON.stringify(m.body.toString('latin1').slice(0, 1200))}`);
      continue;
    }
    if (!acknowledged.has(id)) problems.push(`delivered ${id}, which was never acknowledged with a 250`);
    for (const to of m.to) seen.set(`${id} ${to}`, (seen.get(`${id} ${to}`) ?? 0) + 1);
  }
  const duplicates = [...seen.values()].filter((c) => c > 1).length;
  console.log(
    `[fuzz] cases tried: ${stats.cases}, crashes: ${stats.crashes}, hangs: ${stats.hangs}, garbled replies: ${stats.garbled}, ` +
      `acknowledged: ${stats.acknowledged}, delivered copies: ${mx.received.length}, duplicated: ${duplicates}, ` +
      `with bare CR/LF: ${bare}, unattributed: ${unattributed}, ${((Date.now() - started) / 1000).toFixed(1)} s`,
  );
  for (const p of problems.slice(0, 20)) console.log(`[fuzz] ${p}`);
  assert.equal(stats.crashes, 0, 'gateway crashes');
  assert.equal(stats.hangs, 0, 'sessions not closed in time');
  assert.equal(stats.garbled, 0, 'garbled replies');
  assert.equal(duplicates, 0, 'copies delivered twice');
  assert.equal(bare, 0, 'copies with a bare CR or LF');
  assert.equal(unattributed, 0, 'copies without our Message-ID');
  assert.deepEqual(problems, []);
  assert.ok(stats.cases >= Math.min(100, BUDGET_MS / 200), `only ${stats.cases} cases ran`);
});
