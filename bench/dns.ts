// A static DNS zone on loopback (UDP; every answer here fits in 512 bytes) so
// the gateway's delivery worker resolves the bench's MX sink through its
// normal `dns.servers` path. Unknown names get NXDOMAIN.
import dns2 from 'dns2';

const { Packet } = dns2;

export type BenchRr = { type: 'A'; address: string } | { type: 'MX'; exchange: string; priority: number };

export interface BenchDns {
  /** `127.0.0.1:PORT`, for `dns.servers`. */
  server: string;
  close(): Promise<void>;
}

export async function startBenchDns(zone: Record<string, BenchRr[]>): Promise<BenchDns> {
  const records = new Map(Object.entries(zone).map(([k, v]) => [k.toLowerCase(), v]));
  const server = dns2.createUDPServer((request, send) => {
    const response = Packet.createResponseFromRequest(request);
    const [q] = request.questions;
    const rrs = records.get(q.name.toLowerCase().replace(/\.$/, ''));
    if (!rrs) response.header.rcode = 3; // NXDOMAIN
    for (const rr of rrs ?? []) {
      const type = Packet.TYPE[rr.type];
      if (type !== q.type) continue;
      const { type: _rrType, ...data } = rr;
      response.answers.push(Packet.createResourceFromQuestion(q, { ...data, type, class: Packet.CLASS.IN, ttl: 300 }));
    }
    void send(response);
  });
  await server.listen(0, '127.0.0.1');
  const { port } = server.address();
  return {
    server: `127.0.0.1:${port}`,
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}
