// Fault suite, DNS (SPEC §6): the MX lookup, or the A lookup of the MX host, times out
// or answers SERVFAIL. Each is a temporary failure: deferred with a 451 4.4.3 reply that
// names the lookup, retried on the schedule, delivered once DNS answers — and a lookup
// hanging for one domain does not hold up delivery to another.
//
// test/relay/delivery.test.ts covers SERVFAIL on the MX lookup (deferred, then delivered);
// here it is one row of the table, for the schedule and bystander checks it lacks.
// NXDOMAIN and null MX bounce at once: test/relay/delivery.test.ts.
import { after, before, describe, test } from 'node:test';
import { startMxSink, until, type MxSink } from '../helpers/gateway.js';
import { bystanderNotSlowed, deliveredAfterRetries, firstDeferral, mxFor, send, startFaultRelay, type FaultHarness } from './harness.js';

let h: FaultHarness;
const sinks: MxSink[] = [];

before(async () => {
  // dns.timeout 500ms, 2 tries: a lookup that never answers fails within ~1.5 s.
  h = await startFaultRelay('127.0.3.1');
});
after(async () => {
  await h?.stop();
  await Promise.all(sinks.map((s) => s.close()));
});

type Mode = 'timeout' | 'servfail';
const cases: { name: string; lookup: 'MX' | 'A'; mode: Mode; reply: (domain: string) => RegExp }[] = [
  { name: 'MX lookup times out', lookup: 'MX', mode: 'timeout', reply: (d) => new RegExp(`^451 4\\.4\\.3 DNS lookup failed temporarily: MX ${d} \\(ETIMEOUT\\)$`) },
  { name: 'MX lookup answers SERVFAIL', lookup: 'MX', mode: 'servfail', reply: (d) => new RegExp(`^451 4\\.4\\.3 DNS lookup failed temporarily: MX ${d} \\(ESERVFAIL\\)$`) },
  { name: "MX host's A lookup times out", lookup: 'A', mode: 'timeout', reply: (d) => new RegExp(`^451 4\\.4\\.3 DNS lookup failed temporarily: A/AAAA mx\\.${d} \\(ETIMEOUT\\)$`) },
  { name: "MX host's A lookup answers SERVFAIL", lookup: 'A', mode: 'servfail', reply: (d) => new RegExp(`^451 4\\.4\\.3 DNS lookup failed temporarily: A/AAAA mx\\.${d} \\(ESERVFAIL\\)$`) },
];

describe('DNS faults', { concurrency: true }, () => {
  cases.forEach((c, i) => {
    test(`${c.name}: deferred, retried, delivered once DNS answers`, async () => {
      const domain = `dns-${c.lookup.toLowerCase()}-${c.mode}.test`;
      const ip = `127.0.3.${10 + i}`;
      const mx = await startMxSink(ip, h.f.t.mxPort);
      sinks.push(mx);
      mxFor(h.f, domain, [[10, `mx.${domain}`, ip]]);
      const failing = c.lookup === 'MX' ? domain : `mx.${domain}`;
      h.f.t.dns.behave(failing, c.mode);
      const asked = () => h.f.t.dns.queries.filter((q) => q.endsWith(` ${failing}`)).length;

      const { id } = await send(h.f, `bob@${domain}`);
      const reply = c.reply(domain.replace(/\./g, '\\.'));
      // While the lookup hangs (or right after it failed), another domain still goes out at once.
      await Promise.all([bystanderNotSlowed(h, () => asked() >= 1, c.name), firstDeferral(h.f, id, reply)]);
      await until(() => h.f.recipients(id)[0].attempts >= 2, 'second deferral', 8000, 10);
      h.f.t.dns.behave(failing, 'answer');
      await deliveredAfterRetries(h.f, id, { failures: 2, reply });
      await mx.waitFor(1, 1000);
    });
  });
});
