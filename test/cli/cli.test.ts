import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import nodemailer from 'nodemailer';
import { runCli, startChild, writeConfig } from '../helpers/child.js';
import { tempDir } from '../helpers/gateway.js';

let dir: string;
let env: Record<string, string>;

before(() => {
  dir = tempDir('relaygate-cli-');
  const config = writeConfig(dir, {
    dataDir: path.join(dir, 'data'),
    certsDir: path.join(dir, 'certs'),
    hostname: 'relay.test',
    smtp: { host: '127.0.0.1', port: 0 },
    http: { host: '127.0.0.1', port: 0 },
    dns: { servers: ['127.0.0.1:9'], publicIps: ['192.0.2.10'] },
  });
  env = { RELAYGATE_CONFIG: config };
});
after(() => fs.rmSync(dir, { recursive: true, force: true }));

const json = (s: string) => JSON.parse(s) as any;

test('domain add --json prints the records to publish as one JSON document', async () => {
  const r = await runCli(['domain', 'add', 'Example.COM', '--json'], env);
  assert.equal(r.code, 0, r.stderr);
  const doc = json(r.stdout);
  assert.equal(doc.domain, 'example.com');
  const dkim = doc.records.find((x: any) => x.name === 'rg1._domainkey.example.com');
  assert.equal(dkim.type, 'TXT');
  assert.match(dkim.value, /^v=DKIM1; k=rsa; p=[A-Za-z0-9+/=]{300,}$/);
  const spf = doc.records.find((x: any) => x.name === 'example.com' && x.type === 'TXT');
  assert.match(spf.value, /^v=spf1 .*ip4:192\.0\.2\.10.* ~all$/);
  for (const rec of doc.records) assert.ok(!rec.name.endsWith('.'), `${rec.name} has no trailing dot`);
});

test('a second add of the same domain fails with one line and exit 1, changing nothing', async () => {
  const r = await runCli(['domain', 'add', 'example.com'], env);
  assert.equal(r.code, 1);
  assert.equal(r.stderr.trim().split('\n').length, 1);
  assert.match(r.stderr, /already exists/);
  const list = json((await runCli(['domain', 'list', '--json'], env)).stdout);
  assert.equal(list.data.length, 1);
});

test('credential add prints the password once; list never shows it', async () => {
  const r = await runCli(['credential', 'add', 'example.com', '--name', 'app', '--json'], env);
  assert.equal(r.code, 0, r.stderr);
  const c = json(r.stdout);
  assert.equal(c.username, 'app@example.com');
  assert.ok(c.password.length >= 16);
  const list = await runCli(['credential', 'list', '--json'], env);
  assert.ok(!list.stdout.includes(c.password));
  assert.equal(json(list.stdout).data[0].username, 'app@example.com');
  const db = fs.readFileSync(path.join(dir, 'data', 'relaygate.db'));
  assert.ok(!db.includes(Buffer.from(c.password)), 'the password is not stored in clear');
});

test('bad CLI input is refused with a clear line', async () => {
  const cases: [string[], RegExp][] = [
    [['credential', 'add', 'nope.example'], /not configured/],
    [['credential', 'add', 'example.com', '--ip', '10.0.0.0/99'], /not an IP address or CIDR/],
    [['credential', 'add', 'example.com', '--rate', '-3'], /positive whole number/],
    [['apikey', 'create', '--name', 'x', '--scopes', 'root'], /unknown scope/],
    [['domain', 'add', 'bad_domain!'], /not a valid domain/],
    [['credential', 'rm', 'cred_nope'], /no credential/],
  ];
  for (const [args, re] of cases) {
    const r = await runCli(args, env);
    assert.equal(r.code, 1, args.join(' '));
    assert.match(r.stderr, re, args.join(' '));
  }
});

test('apikey create shows the key once, list shows only a prefix, revoke works', async () => {
  const k = json((await runCli(['apikey', 'create', '--name', 'ci', '--scopes', 'send,read', '--json'], env)).stdout);
  assert.match(k.key, /^rg_/);
  const list = await runCli(['apikey', 'list', '--json'], env);
  assert.ok(!list.stdout.includes(k.key));
  assert.deepEqual(json(list.stdout).data[0].scopes, ['send', 'read']);
  const rv = await runCli(['apikey', 'revoke', k.id, '--json'], env);
  assert.equal(json(rv.stdout).revoked, true);
});

test('a bad config value stops with one line naming the key; print-config redacts secrets', async () => {
  const bad = await runCli(['print-config'], { ...env, RELAYGATE_SMTP_PORT: '70000' });
  assert.equal(bad.code, 1);
  assert.equal(bad.stderr.trim().split('\n').length, 1);
  assert.match(bad.stderr, /smtp\.port/);
  const ok = await runCli(['print-config'], { ...env, RELAYGATE_SECRET: 'do-not-print-me-0123456789' });
  assert.equal(ok.code, 0, ok.stderr);
  assert.ok(!ok.stdout.includes('do-not-print-me'));
  assert.equal(json(ok.stdout).tracking.secret, '[redacted]');
});

test('the running gateway sees a credential the CLI adds, without restart; SIGTERM exits 0 quickly', async () => {
  const gw = await startChild(env);
  try {
    assert.ok(fs.existsSync(path.join(dir, 'certs', 'cert.pem')), 'a self-signed certificate was generated');
    const health = await (await fetch(`http://127.0.0.1:${gw.httpPort}/healthz`)).json();
    assert.equal((health as any).status, 'ok');
    const c = json((await runCli(['credential', 'add', 'example.com', '--name', 'late', '--json'], env)).stdout);
    const transport = nodemailer.createTransport({
      host: '127.0.0.1',
      port: gw.smtpPort,
      requireTLS: true,
      tls: { rejectUnauthorized: false },
      auth: { user: c.username, pass: c.password },
    });
    await transport.verify();
    transport.close();
  } finally {
    const t0 = Date.now();
    gw.proc.kill('SIGTERM');
    const code = await gw.exited;
    assert.equal(code, 0);
    assert.ok(Date.now() - t0 < 10_000);
  }
});
