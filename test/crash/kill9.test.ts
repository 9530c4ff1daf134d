// Crash safety as a user would see it: the gateway runs as a child process and
// is killed with SIGKILL; every message that got a 250 must still arrive.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { runCli, startChild, writeConfig, type GatewayChild } from '../helpers/child.js';
import { startTestDns, type TestDns } from '../helpers/dns-server.js';
import { freePort, startMxSink, submitMail, tempDir, until, type MxSink } from '../helpers/gateway.js';

let dir: string;
let dns: TestDns;
let mxPort: number;
let env: Record<string, string>;
let cred: { username: string; password: string };
const children: GatewayChild[] = [];

before(async () => {
  dir = tempDir('relaygate-crash-');
  dns = await startTestDns();
  mxPort = await freePort('127.0.0.7');
  dns.set('dest.test', [{ type: 'MX', exchange: 'mx.dest.test', priority: 10 }]);
  dns.set('mx.dest.test', [{ type: 'A', address: '127.0.0.7' }]);
  env = {
    RELAYGATE_CONFIG: writeConfig(dir, {
      dataDir: path.join(dir, 'data'),
      certsDir: path.join(dir, 'certs'),
      hostname: 'relay.test',
      smtp: { host: '127.0.0.1', port: 0 },
      http: { host: '127.0.0.1', port: 0 },
      dns: { servers: [dns.server] },
      delivery: { mxPort, retrySchedule: ['200ms', '500ms'], pollInterval: '200ms' },
      log: { level: 'info' },
    }),
  };
  assert.equal((await runCli(['domain', 'add', 'example.test'], env)).code, 0);
  cred = JSON.parse((await runCli(['credential', 'add', 'example.test', '--name', 'app', '--json'], env)).stdout);
});

after(async () => {
  for (const c of children) if (c.proc.exitCode === null) c.proc.kill('SIGKILL');
  await dns.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

async function start(): Promise<GatewayChild> {
  const c = await startChild(env);
  children.push(c);
  return c;
}

/** A clean stop between tests: the last delivery's state is written, so the next test's restart does not send it again. */
async function stopGracefully(c: GatewayChild): Promise<void> {
  if (c.proc.exitCode !== null || c.proc.signalCode !== null) return;
  c.proc.kill('SIGTERM');
  await c.exited;
}

async function kill9(c: GatewayChild): Promise<void> {
  c.proc.kill('SIGKILL');
  await c.exited;
}

const seqOf = (body: Buffer) => /^X-Test-Seq: (\S+)/m.exec(body.toString())?.[1];

test('messages acknowledged with 250 and killed with SIGKILL an instant later are delivered once after restart', async () => {
  // No MX yet: nothing can be delivered before the kill.
  const gw = await start();
  const acked: string[] = [];
  for (let i = 0; i < 20; i++) {
    const r = await submitMail({ port: gw.smtpPort, auth: { user: cred.username, pass: cred.password }, to: 'rcpt@dest.test', headers: { 'X-Test-Seq': `a${i}` } });
    assert.match(r.response, /^250 2\.0\.0 Ok: queued as /);
    acked.push(`a${i}`);
  }
  await kill9(gw);

  const mx = await startMxSink('127.0.0.7', mxPort);
  try {
    await start();
    await mx.waitFor(acked.length, 30_000);
    await new Promise((r) => setTimeout(r, 1000)); // would-be duplicates have time to show
    const seqs = mx.received.map((m) => seqOf(m.body));
    assert.deepEqual([...seqs].sort(), [...acked].sort(), 'each acknowledged message exactly once');
  } finally {
    await stopGracefully(children[children.length - 1]);
    await mx.close();
  }
});

/**
 * An MX that, while `stall` is on, takes the whole DATA and never answers it (the gateway
 * is then mid-transaction), and behaves normally once `release()` is called.
 */
async function stallingMx(): Promise<{ mx: MxSink; dataSeen: Promise<void>; release(): void }> {
  let stall = true;
  let sawData!: () => void;
  const seen = new Promise<void>((r) => (sawData = r));
  const mx: MxSink = await startMxSink('127.0.0.7', mxPort, {
    onData(stream, session, cb) {
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('end', () => {
        if (stall) {
          sawData();
          return;
        }
        mx.received.push({ from: session.envelope.mailFrom ? session.envelope.mailFrom.address : '', to: session.envelope.rcptTo.map((r) => r.address), body: Buffer.concat(chunks), at: Date.now() });
        cb();
      });
    },
  });
  const dataSeen = Promise.race([seen, new Promise<void>((_, rej) => setTimeout(() => rej(new Error('MX never saw DATA')), 15_000).unref())]);
  dataSeen.catch(() => undefined);
  return { mx, dataSeen, release: () => (stall = false) };
}

test('a kill while the MX is receiving loses nothing: the delivery is retried after restart', async () => {
  const { mx, dataSeen, release } = await stallingMx();
  try {
    const gw = await start();
    await submitMail({ port: gw.smtpPort, auth: { user: cred.username, pass: cred.password }, to: 'rcpt@dest.test', headers: { 'X-Test-Seq': 'b1' } });
    await dataSeen;
    await kill9(gw);
    release();
    await start();
    const got = await mx.waitFor(1, 30_000);
    assert.equal(seqOf(got[0].body), 'b1');
  } finally {
    await stopGracefully(children[children.length - 1]);
    await mx.close();
  }
});

test('SIGTERM during a delivery exits 0 within 10 s and loses nothing', async () => {
  const { mx, dataSeen, release } = await stallingMx();
  try {
    const gw = await start();
    await submitMail({ port: gw.smtpPort, auth: { user: cred.username, pass: cred.password }, to: 'rcpt@dest.test', headers: { 'X-Test-Seq': 'c1' } });
    await dataSeen;
    const t0 = Date.now();
    gw.proc.kill('SIGTERM');
    assert.equal(await gw.exited, 0);
    assert.ok(Date.now() - t0 < 10_000, `exited after ${Date.now() - t0} ms`);
    release();
    await start();
    await until(() => mx.received.some((m) => seqOf(m.body) === 'c1'), 'c1 delivered after restart', 30_000);
  } finally {
    await stopGracefully(children[children.length - 1]);
    await mx.close();
  }
});
