// A whole gateway in-process for integration tests: temp dataDir and certsDir,
// ephemeral ports, a real DNS server on loopback, and real SMTP servers acting
// as the destination MX hosts on 127.0.0.x (all on one port, as delivery.mxPort
// is global).
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { SMTPServer, type SMTPServerOptions } from 'smtp-server';
import nodemailer from 'nodemailer';
import pino, { type Logger } from 'pino';
import { parseConfig } from '../../src/config/load.js';
import type { Config, ConfigInput } from '../../src/config/schema.js';
import { startGateway, type Gateway } from '../../src/gateway.js';
import { startTestDns, type TestDns } from './dns-server.js';

export interface TestGateway {
  gw: Gateway;
  config: Config;
  dns: TestDns;
  dataDir: string;
  mxPort: number;
  smtpPort: number;
  httpUrl: string;
  stop(): Promise<void>;
}

type DeepPartial<T> = { [K in keyof T]?: T[K] extends object ? DeepPartial<T[K]> | T[K] : T[K] };

/** A TCP port that was free a moment ago. */
export async function freePort(host = '127.0.0.1'): Promise<number> {
  const srv = net.createServer();
  await new Promise<void>((r) => srv.listen(0, host, r));
  const { port } = srv.address() as net.AddressInfo;
  await new Promise<void>((r) => srv.close(() => r()));
  return port;
}

export function tempDir(prefix = 'relaygate-test-'): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

function merge(base: any, over: any): any {
  const out = { ...base };
  for (const [k, v] of Object.entries(over ?? {})) {
    out[k] = v && typeof v === 'object' && !Array.isArray(v) && base?.[k] && typeof base[k] === 'object' ? merge(base[k], v) : v;
  }
  return out;
}

/** The config a test gateway runs with: loopback only, fast retries, test DNS. */
export function testConfigInput(dnsServer: string, mxPort: number, dataDir: string, extra: DeepPartial<ConfigInput> = {}): unknown {
  return merge(
    {
      dataDir,
      certsDir: path.join(dataDir, 'certs'),
      hostname: 'relay.test',
      smtp: { host: '127.0.0.1', port: 0 },
      http: { host: '127.0.0.1', port: 0, publicUrl: 'http://127.0.0.1:1' },
      dns: { servers: [dnsServer], timeout: '2s' },
      delivery: {
        mxPort,
        retrySchedule: ['300ms', '600ms', '1s'],
        connectTimeout: '2s',
        greetingTimeout: '2s',
        socketTimeout: '3s',
        pollInterval: '200ms',
      },
      log: { level: 'silent' },
    },
    extra,
  );
}

export async function startTestGateway(
  extra: DeepPartial<ConfigInput> = {},
  /** `logger`: e.g. createLogger('trace', destination) to capture what the gateway logs. */
  opts: { dns?: TestDns; dataDir?: string; mxPort?: number; logger?: Logger } = {},
): Promise<TestGateway> {
  const dns = opts.dns ?? (await startTestDns());
  const dataDir = opts.dataDir ?? tempDir();
  const mxPort = opts.mxPort ?? (await freePort());
  let config = parseConfig(testConfigInput(dns.server, mxPort, dataDir, extra), 'test config');
  const logger = opts.logger ?? pino({ level: config.log.level });
  const gw = await startGateway(config, { logger });
  // publicUrl must point at the port we just got
  if ((extra as any)?.http?.publicUrl === undefined) config.http.publicUrl = `http://127.0.0.1:${gw.httpPort}`;
  config = gw.config;
  return {
    gw,
    config,
    dns,
    dataDir,
    mxPort,
    smtpPort: gw.smtpPort,
    httpUrl: `http://127.0.0.1:${gw.httpPort}`,
    async stop() {
      await gw.stop();
      if (!opts.dns) await dns.close();
    },
  };
}

export interface ReceivedMail {
  from: string;
  to: string[];
  body: Buffer;
  at: number;
}

export interface MxSink {
  ip: string;
  received: ReceivedMail[];
  /** Decide the reply per RCPT: return an Error with responseCode to refuse. */
  rcpt?: (address: string) => Error | null;
  data?: (body: Buffer) => Error | null;
  close(): Promise<void>;
  waitFor(n: number, timeoutMs?: number): Promise<ReceivedMail[]>;
}

export const smtpError = (code: number, message: string) => Object.assign(new Error(message), { responseCode: code });

/** A destination MX: a real smtp-server on ip:port that keeps what it receives. */
export async function startMxSink(ip: string, port: number, hooks: Partial<SMTPServerOptions> = {}): Promise<MxSink> {
  const sink: MxSink = {
    ip,
    received: [],
    close: async () => undefined,
    async waitFor(n, timeoutMs = 15_000) {
      const until = Date.now() + timeoutMs;
      while (sink.received.length < n) {
        if (Date.now() > until) throw new Error(`MX ${ip}: waited ${timeoutMs} ms for ${n} messages, got ${sink.received.length}`);
        await new Promise((r) => setTimeout(r, 25));
      }
      return sink.received;
    },
  };
  const server = new SMTPServer({
    authOptional: true,
    disabledCommands: ['STARTTLS', 'AUTH'],
    logger: false,
    size: 50 * 1024 * 1024,
    onRcptTo(address, _session, cb) {
      const err = sink.rcpt?.(address.address) ?? null;
      cb(err ?? undefined);
    },
    onData(stream, session, cb) {
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('end', () => {
        const body = Buffer.concat(chunks);
        const err = sink.data?.(body) ?? null;
        if (err) return cb(err);
        sink.received.push({
          from: session.envelope.mailFrom ? session.envelope.mailFrom.address : '',
          to: session.envelope.rcptTo.map((r) => r.address),
          body,
          at: Date.now(),
        });
        cb();
      });
    },
    ...hooks,
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, ip, () => resolve());
  });
  sink.close = () => new Promise<void>((r) => server.close(() => r()));
  return sink;
}

export interface SendOptions {
  port: number;
  auth?: { user: string; pass: string } | null;
  from?: string;
  to: string | string[];
  raw?: string | Buffer;
  subject?: string;
  html?: string;
  text?: string;
  headers?: Record<string, string>;
}

/** Submit with nodemailer, as an app would. Resolves with the server's final reply. */
export async function submitMail(o: SendOptions): Promise<{ response: string; id: string }> {
  const transport = nodemailer.createTransport({
    host: '127.0.0.1',
    port: o.port,
    secure: false,
    ignoreTLS: true,
    auth: o.auth ?? undefined,
    connectionTimeout: 5000,
    greetingTimeout: 5000,
    socketTimeout: 10_000,
  } as any);
  try {
    const to = Array.isArray(o.to) ? o.to : [o.to];
    const info = await transport.sendMail(
      o.raw
        ? { envelope: { from: o.from ?? 'app@example.test', to }, raw: o.raw }
        : {
            from: o.from ?? 'app@example.test',
            to,
            subject: o.subject ?? 'hello',
            html: o.html,
            text: o.text ?? (o.html ? undefined : 'hello'),
            headers: o.headers,
          },
    );
    const m = /queued as (\S+)/.exec(info.response);
    return { response: info.response, id: m ? m[1] : '' };
  } finally {
    transport.close();
  }
}

/** Poll `fn` until it returns a truthy value or time runs out. */
type Truthy<T> = Exclude<T, false | null | undefined | 0 | ''>;

export async function until<T>(fn: () => T | Promise<T>, what: string, timeoutMs = 15_000, everyMs = 25): Promise<Truthy<T>> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v as Truthy<T>;
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}
