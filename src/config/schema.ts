// The whole configuration surface (SPEC §2) as one zod schema: defaults live
// here, so `defineConfig({})` is a working gateway. Every key says why it exists.
import os from 'node:os';
import { z } from 'zod';
import { parseDuration } from './duration.js';

const duration = z.union([z.string(), z.number()]).transform((v, ctx) => {
  try {
    return parseDuration(v);
  } catch (e) {
    ctx.addIssue({ code: 'custom', message: (e as Error).message });
    return z.NEVER;
  }
});

const port = z.coerce.number().int().min(0).max(65535);
const hostPort = z
  .string()
  .regex(/^(\[[0-9a-fA-F:.]+\]|[^\s:]+)(:\d{1,5})?$/, 'expected "host" or "host:port"');

export const configSchema = z
  .strictObject({
    smtp: z
      .strictObject({
        host: z.string().default('0.0.0.0'),
        port: port.default(2525),
        // Implicit TLS (RFC 8314) for clients that cannot STARTTLS; off by default.
        securePort: port.nullable().default(null),
        maxMessageSize: z.coerce.number().int().positive().default(25 * 1024 * 1024),
        maxRecipients: z.coerce.number().int().positive().default(100),
        // Passwords never cross the network in clear; loopback clients are exempt
        // because nobody can sniff them there.
        authRequiresTls: z.boolean().default(true),
        // Refuse mail from domains whose SPF/DKIM do not verify yet (550 5.7.1).
        requireVerifiedDomain: z.boolean().default(false),
        // AUTH brute-force brake: this many failures per IP within the window lock that IP out.
        authFailureLimit: z.coerce.number().int().positive().default(5),
        authFailureWindow: duration.prefault('10m'),
        // smtp-server waits this long for clients on shutdown; must fit in the 10 s stop budget.
        closeTimeout: duration.prefault('5s'),
        // Idle client connections are dropped after this long.
        socketTimeout: duration.prefault('5m'),
      })
      .prefault({}),
    http: z
      .strictObject({
        host: z.string().default('0.0.0.0'),
        port: port.default(8080),
        publicUrl: z.url().default('http://localhost:8080'),
        // Requests per second per API key (SPEC §8).
        rateLimit: z.coerce.number().int().positive().default(50),
        // X-Forwarded-For is trusted only from these proxies (CIDR list).
        trustedProxies: z.array(z.string()).default([]),
        maxBodySize: z.coerce.number().int().positive().default(30 * 1024 * 1024),
      })
      .prefault({}),
    dataDir: z.string().min(1).default('data'),
    certsDir: z.string().min(1).default('certs'),
    hostname: z.string().min(1).default(os.hostname()),
    dns: z
      .strictObject({
        servers: z.array(hostPort).default([]),
        timeout: duration.prefault('5s'),
        // Our sending IPs, published in the SPF record that `domain add` prints.
        publicIps: z.array(z.string()).default([]),
        // Alternatively an SPF include host (e.g. when sending through a smarthost).
        spfInclude: z.string().nullable().default(null),
        // Domains are re-verified on this interval; a status change is logged and recorded.
        reverifyInterval: duration.prefault('1h'),
      })
      .prefault({}),
    delivery: z
      .strictObject({
        mxPort: port.default(25),
        retrySchedule: z
          .array(duration)
          .min(1)
          .prefault(['1m', '5m', '15m', '30m', '1h', '2h', '4h', '8h']),
        maxAge: duration.prefault('4d'),
        concurrency: z.coerce.number().int().positive().default(50),
        perDomainConcurrency: z.coerce.number().int().positive().default(5),
        tls: z.enum(['opportunistic', 'required']).default('opportunistic'),
        // A smarthost instead of direct MX: "host:port" or { host, port, auth }.
        relayHost: z
          .preprocess(
            (v) => {
              if (typeof v !== 'string') return v;
              const m = /^(\[[^\]]+\]|[^:]+)(?::(\d+))?$/.exec(v.trim());
              return m ? { host: m[1].replace(/^\[|\]$/g, ''), ...(m[2] ? { port: m[2] } : {}) } : v;
            },
            z.strictObject({
            host: z.string().min(1),
            port: port.default(25),
              auth: z.strictObject({ user: z.string(), pass: z.string() }).optional(),
            }),
          )
          .nullable()
          .default(null),
        connectTimeout: duration.prefault('15s'),
        greetingTimeout: duration.prefault('30s'),
        socketTimeout: duration.prefault('2m'),
        // How often the worker looks for due deliveries when nothing woke it.
        pollInterval: duration.prefault('500ms'),
      })
      .prefault({}),
    tracking: z
      .strictObject({
        opens: z.boolean().default(true),
        clicks: z.boolean().default(true),
        unsubscribe: z.boolean().default(false),
        // Also rewrite bare URLs in text/plain parts. Off: the reader sees the tracking URL there.
        textLinks: z.boolean().default(false),
        secret: z.string().min(16).nullable().default(null),
        unsubscribeMailto: z.string().nullable().default(null),
      })
      .prefault({}),
    webhooks: z
      .strictObject({
        // Destinations on these networks are refused (SSRF into link-local / cloud metadata).
        allowLinkLocal: z.boolean().default(false),
        timeout: duration.prefault('10s'),
      })
      .prefault({}),
    log: z
      .strictObject({
        level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
      })
      .prefault({}),
  })
  .strict();

export type ConfigInput = z.input<typeof configSchema>;
export type Config = z.output<typeof configSchema>;
