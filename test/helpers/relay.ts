// Shared set-up for the relay integration tests (test/relay/): a gateway with
// one sending domain and one password credential, plus store look-ups the
// assertions need.
import fs from 'node:fs';
import path from 'node:path';
import { addCredential } from '../../src/auth/credentials.js';
import type { Config, ConfigInput } from '../../src/config/schema.js';
import { createDomainService } from '../../src/domains/service.js';
import type { RecipientRow } from '../../src/store/queue.js';
import { startTestGateway, until, type TestGateway } from './gateway.js';
import { rawSmtp, type RawSmtp } from './raw-smtp.js';

export const DOMAIN = 'example.test';

export interface RelayFixture {
  t: TestGateway;
  cred: { id: string; username: string; password: string };
  auth: { user: string; pass: string };
  /** How many messages the store holds. */
  count(): number;
  recipients(id: string): RecipientRow[];
  events(id: string): { type: string; recipient: string | null; data: Record<string, unknown> }[];
  /** A raw SMTP session past EHLO and AUTH PLAIN with the fixture's credential; closed by stop(). */
  session(): Promise<RawSmtp>;
  /** Waits until every recipient of `id` is in a final state (or `status`), bounded. */
  settled(id: string, timeoutMs?: number): Promise<RecipientRow[]>;
  stop(): Promise<void>;
}

type DeepPartial<T> = { [K in keyof T]?: T[K] extends object | undefined ? DeepPartial<NonNullable<T[K]>> | T[K] : T[K] };

/** `extra` is config input (durations as '300ms'), parsed like gateway.config.ts. */
export async function startRelay(extra: DeepPartial<ConfigInput> = {}, opts: Parameters<typeof startTestGateway>[1] = {}): Promise<RelayFixture> {
  const t = await startTestGateway(extra as Parameters<typeof startTestGateway>[0], opts);
  createDomainService({ config: t.config, store: t.gw.store }).add(DOMAIN);
  const cred = (await addCredential(t.gw.store, DOMAIN, {})) as { id: string; username: string; password: string };
  const store = t.gw.store;
  const FINAL = new Set(['delivered', 'bounced', 'expired', 'suppressed']);
  const sessions: RawSmtp[] = [];
  return {
    t,
    cred,
    auth: { user: cred.username, pass: cred.password },
    count: () => store.queue.listMessages({ limit: 1, offset: 0 }).total,
    recipients: (id) => store.queue.recipientsOf(id),
    events: (id) =>
      store.events.forMessage(id).map((e: any) => ({
        type: e.type,
        recipient: e.recipient ?? null,
        data: typeof e.data === 'string' ? JSON.parse(e.data) : (e.data ?? {}),
      })),
    settled: (id, timeoutMs = 15_000) =>
      until(
        () => {
          const rows = store.queue.recipientsOf(id);
          return rows.length > 0 && rows.every((r) => FINAL.has(r.status)) ? rows : null;
        },
        `final states of ${id}`,
        timeoutMs,
      ),
    async session() {
      const c = await rawSmtp({ port: t.smtpPort });
      sessions.push(c);
      await c.cmd('EHLO client.test');
      const auth = await c.authPlain(cred.username, cred.password);
      if (!auth.startsWith('235 ')) throw new Error(`AUTH failed: ${auth}`);
      return c;
    },
    async stop() {
      await Promise.all(sessions.map((c) => c.close()));
      await t.stop();
    },
  };
}

/** Publishes MX records for `domain` ([priority, host, ip] each) and the hosts' A records. */
export function mxFor(f: RelayFixture, domain: string, hosts: [number, string, string][]): void {
  f.t.dns.set(domain, hosts.map(([priority, host]) => ({ type: 'MX' as const, exchange: host, priority })));
  for (const [, host, ip] of hosts) f.t.dns.set(host, [{ type: 'A', address: ip }]);
}

/** Files left in the spool directory (DATA is spooled there while it arrives). */
export function spoolFiles(config: Config): string[] {
  const dir = path.join(config.dataDir, 'spool');
  return fs.existsSync(dir) ? fs.readdirSync(dir) : [];
}

/** A minimal RFC 5322 message with CRLF line endings. */
export function eml(headers: Record<string, string>, body = 'hello\r\n'): string {
  const h = { From: `app@${DOMAIN}`, To: 'bob@dest.test', Subject: 'test', ...headers };
  return `${Object.entries(h)
    .map(([k, v]) => `${k}: ${v}`)
    .join('\r\n')}\r\n\r\n${body}`;
}
