// The README's first steps, as a new user runs them: CLI in a child process,
// `relaygate start`, a first mail over STARTTLS + AUTH, then delivery, a click
// and the stats over the HTTP API.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import nodemailer from 'nodemailer';
import { runCli, startChild, writeConfig, type GatewayChild } from '../helpers/child.js';
import { startTestDns, type TestDns } from '../helpers/dns-server.js';
import { freePort, startMxSink, tempDir, until, type MxSink } from '../helpers/gateway.js';

let dir: string;
let dns: TestDns;
let mx: MxSink;
let gw: GatewayChild | null = null;
let env: Record<string, string>;

before(async () => {
  dir = tempDir('relaygate-readme-');
  dns = await startTestDns();
  const mxPort = await freePort('127.0.0.8');
  dns.set('your-mailbox.test', [{ type: 'MX', exchange: 'mx.your-mailbox.test', priority: 10 }]);
  dns.set('mx.your-mailbox.test', [{ type: 'A', address: '127.0.0.8' }]);
  mx = await startMxSink('127.0.0.8', mxPort);
  const httpPort = await freePort();
  env = {
    RELAYGATE_CONFIG: writeConfig(dir, { certsDir: path.join(dir, 'certs'), log: { level: 'info' } }),
    RELAYGATE_DATA_DIR: path.join(dir, 'data'),
    RELAYGATE_SMTP_HOST: '127.0.0.1',
    RELAYGATE_SMTP_PORT: '0',
    RELAYGATE_HTTP_HOST: '127.0.0.1',
    RELAYGATE_HTTP_PORT: String(httpPort),
    RELAYGATE_PUBLIC_URL: `http://127.0.0.1:${httpPort}`,
    RELAYGATE_DNS_SERVERS: dns.server,
    RELAYGATE_MX_PORT: String(mxPort),
    RELAYGATE_HOSTNAME: 'relay.test',
  };
});

after(async () => {
  if (gw && gw.proc.exitCode === null) {
    gw.proc.kill('SIGTERM');
    await gw.exited;
  }
  await mx.close();
  await dns.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

test('domain add, credential add, start, first mail over STARTTLS+AUTH, delivered, clicked, in the stats', async () => {
  const add = await runCli(['domain', 'add', 'example.com'], env);
  assert.equal(add.code, 0, add.stderr);
  assert.match(add.stdout, /rg1\._domainkey\.example\.com/);
  const cred = JSON.parse((await runCli(['credential', 'add', 'example.com', '--name', 'app', '--json'], env)).stdout);
  const key = JSON.parse((await runCli(['apikey', 'create', '--name', 'me', '--scopes', 'send,read,admin', '--json'], env)).stdout).key;

  gw = await startChild(env);
  const transport = nodemailer.createTransport({
    host: '127.0.0.1',
    port: gw.smtpPort,
    requireTLS: true,
    tls: { rejectUnauthorized: false },
    auth: { user: cred.username, pass: cred.password },
  });
  const info = await transport.sendMail({
    from: 'hello@example.com',
    to: 'you@your-mailbox.test',
    subject: 'first mail through relaygate',
    html: '<p>Hi! <a href="https://example.com/welcome">Open the welcome page</a></p>',
  });
  transport.close();
  const id = /^250 2\.0\.0 Ok: queued as (\S+)$/.exec(info.response)?.[1];
  assert.ok(id, info.response);

  const [mail] = await mx.waitFor(1);
  assert.equal(mail.from, 'hello@example.com');
  const raw = mail.body.toString();
  assert.match(raw, /^DKIM-Signature: .*d=example\.com/m);
  const token = /\/t\/c\/([A-Za-z0-9_-]{22})/.exec(raw.replace(/=\r\n/g, ''))?.[1];
  assert.ok(token, 'the link is tracked');

  const api = (p: string) => fetch(`${env.RELAYGATE_PUBLIC_URL}${p}`, { headers: { Authorization: `Bearer ${key}` } });
  const msg = await until(async () => {
    const m = (await (await api(`/api/v1/messages/${id}`)).json()) as any;
    return m.recipients?.[0]?.status === 'delivered' ? m : null;
  }, 'delivered status');
  assert.equal(msg.recipients[0].attempts, 1);

  const click = await fetch(`${env.RELAYGATE_PUBLIC_URL}/t/c/${token}`, {
    redirect: 'manual',
    headers: { 'User-Agent': 'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/121.0 Safari/537.36' },
  });
  assert.equal(click.status, 302);
  assert.equal(click.headers.get('location'), 'https://example.com/welcome');

  const stats = await until(async () => {
    const s = (await (await api('/api/v1/stats?interval=day')).json()) as any;
    return s.totals?.clicked >= 1 ? s : null;
  }, 'click in stats', 10_000);
  assert.equal(stats.totals.clicked_unique, 1);
  assert.equal(stats.totals.clicked_flagged, 0);
  assert.equal(stats.totals.accepted, 1);
  assert.equal(stats.totals.delivered, 1);
  assert.ok(Array.isArray(stats.series));
});
