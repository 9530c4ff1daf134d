// A real DNS server on loopback (dns2, UDP and TCP on the same port) for tests.
// Node's resolver retries over TCP when a reply exceeds 512 bytes (DKIM TXT
// records do), so both transports must answer on one port.
import { Resolver } from 'node:dns/promises';
import dns2 from 'dns2';

const { Packet } = dns2;

export type Rr =
  | { type: 'A'; address: string }
  | { type: 'AAAA'; address: string }
  | { type: 'MX'; exchange: string; priority: number }
  | { type: 'TXT'; data: string | string[] }
  | { type: 'CNAME'; domain: string };

export type Behaviour = 'answer' | 'servfail' | 'timeout' | 'nxdomain';

export interface TestDns {
  /** `127.0.0.1:PORT`, ready for `dns.servers`. */
  server: string;
  port: number;
  /** Replace every record of `name` (any type) with `rrs`. */
  set(name: string, rrs: Rr[]): void;
  add(name: string, rr: Rr): void;
  remove(name: string): void;
  /** Force a failure mode for a name (all types). */
  behave(name: string, behaviour: Behaviour): void;
  /** Names queried so far, as `TYPE name`. */
  queries: string[];
  close(): Promise<void>;
}

const TYPE_NAMES: Record<number, string> = {};
for (const [k, v] of Object.entries(Packet.TYPE as Record<string, number>)) TYPE_NAMES[v] = k;

/** Split a TXT value into ≤255-byte character-strings, as DNS requires. */
export function txtChunks(value: string): string[] {
  const out: string[] = [];
  for (let i = 0; i < value.length; i += 255) out.push(value.slice(i, i + 255));
  return out.length ? out : [''];
}

export async function startTestDns(): Promise<TestDns> {
  const zone = new Map<string, Rr[]>();
  const modes = new Map<string, Behaviour>();
  const queries: string[] = [];
  const norm = (n: string) => n.toLowerCase().replace(/\.$/, '');

  const create = () =>
    dns2.createServer({
      udp: true,
      tcp: true,
      handle(request: any, send: (r: any) => void) {
        const response = Packet.createResponseFromRequest(request);
        const [q] = request.questions;
        const name = norm(q.name);
        const typeName = TYPE_NAMES[q.type] ?? String(q.type);
        queries.push(`${typeName} ${name}`);
        const mode = modes.get(name) ?? 'answer';
        if (mode === 'timeout') return;
        if (mode === 'servfail') {
          response.header.rcode = 2;
          send(response);
          return;
        }
        const rrs = zone.get(name);
        if (mode === 'nxdomain' || !rrs) {
          response.header.rcode = 3;
          send(response);
          return;
        }
        const push = (rr: Rr, owner: string) => {
          const base = { name: owner, class: Packet.CLASS.IN, ttl: 60 };
          if (rr.type === 'TXT') {
            const data = Array.isArray(rr.data) ? rr.data : txtChunks(rr.data);
            response.answers.push({ ...base, type: Packet.TYPE.TXT, data } as any);
          } else {
            response.answers.push({ ...base, ...rr, type: (Packet.TYPE as any)[rr.type] } as any);
          }
        };
        const cname = rrs.find((r) => r.type === 'CNAME') as Extract<Rr, { type: 'CNAME' }> | undefined;
        if (cname && typeName !== 'CNAME') {
          push(cname, q.name);
          for (const rr of zone.get(norm(cname.domain)) ?? []) {
            if (rr.type === typeName) push(rr, cname.domain);
          }
        } else {
          for (const rr of rrs) if (rr.type === typeName) push(rr, q.name);
        }
        send(response);
      },
    });

  // Bind UDP on an ephemeral port, then TCP on the same number; that number can already be
  // taken for TCP (EADDRINUSE), so try again on another one. dns2 re-emits a listen error on
  // the DNSServer before our own listener runs: without an 'error' listener there the error
  // was thrown out of the event (process crash, or a before() hook waiting forever under
  // node:test), so one is attached.
  let udpOnly: any;
  let tcp: any;
  let port = 0;
  for (let attempt = 1; ; attempt++) {
    const server = create();
    server.on('error', () => undefined); // reported through the bind/listen promises below
    const servers = (server as any).servers;
    udpOnly = servers.udp;
    tcp = servers.tcp;
    await new Promise<void>((resolve, reject) => {
      udpOnly.once('error', reject);
      udpOnly.bind(0, '127.0.0.1', () => resolve());
    });
    port = udpOnly.address().port;
    try {
      await new Promise<void>((resolve, reject) => {
        tcp.once('error', reject);
        tcp.listen(port, '127.0.0.1', () => resolve());
      });
      break;
    } catch (e) {
      await new Promise<void>((r) => udpOnly.close(() => r()));
      if ((e as NodeJS.ErrnoException).code !== 'EADDRINUSE' || attempt >= 20) throw e;
    }
  }

  return {
    server: `127.0.0.1:${port}`,
    port,
    queries,
    set(name, rrs) {
      zone.set(norm(name), rrs);
    },
    add(name, rr) {
      const list = zone.get(norm(name)) ?? [];
      list.push(rr);
      zone.set(norm(name), list);
    },
    remove(name) {
      zone.delete(norm(name));
    },
    behave(name, behaviour) {
      modes.set(norm(name), behaviour);
    },
    async close() {
      await Promise.allSettled([
        new Promise<void>((r) => udpOnly.close(() => r())),
        new Promise<void>((r) => tcp.close(() => r())),
      ]);
    },
  };
}

/**
 * A lookup function for a DKIM/SPF verifier (mailauth's `resolver` option) that asks
 * only the test DNS server at `server`. 5 s and one retry per lookup: a loaded machine
 * must not turn a slow answer into a verification failure.
 */
export function verifierResolver(server: string): (name: string, type: string) => Promise<unknown> {
  const r = new Resolver({ timeout: 5000, tries: 2 });
  r.setServers([server]);
  return (name, type) => r.resolve(name, type as 'TXT');
}
