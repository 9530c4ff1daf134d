// Fault suite, delivery.tls 'required' (Postfix's `encrypt` level): a TLS handshake that
// fails, or a host that does not offer STARTTLS, defers — never a plaintext retry, never
// a byte of the message in clear — and the mail goes out encrypted once the host's TLS
// works. The opportunistic counterpart is in mx-faults.test.ts (d).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { until } from '../helpers/gateway.js';
import { startFaultMx, type Fault, type FaultMx } from './fault-mx.js';
import { bystanderNotSlowed, deliveredAfterRetries, firstDeferral, mxFor, send, startFaultRelay, type FaultHarness } from './harness.js';

let h: FaultHarness;
const closers: FaultMx[] = [];

async function faultMx(ip: string, faults: Fault[], tls: boolean): Promise<FaultMx> {
  const mx = await startFaultMx(ip, h.f.t.mxPort, faults, { tls: tls ? h.tls : undefined });
  closers.push(mx);
  return mx;
}

before(async () => {
  // The bystander offers STARTTLS: with TLS required nothing else could be delivered.
  h = await startFaultRelay('127.0.2.1', { delivery: { tls: 'required' } }, { bystanderTls: true });
});
after(async () => {
  await h?.stop();
  await Promise.all(closers.map((c) => c.close()));
});

describe("(d) delivery.tls 'required'", { concurrency: true }, () => {
  test('a TLS handshake that fails after STARTTLS defers (no plaintext retry); delivered over TLS once it works', async () => {
    const mx = await faultMx('127.0.2.10', [{ tls: 'garbage' }, { tls: 'garbage' }], true);
    mxFor(h.f, 'tlsreq.test', [[10, 'mx.tlsreq.test', '127.0.2.10']]);
    const { id } = await send(h.f, 'bob@tlsreq.test');
    const reply = /^421 4\.7\.0 TLS negotiation failed with mx\.tlsreq\.test \[127\.0\.2\.10\] \(.+\)$/;
    await firstDeferral(h.f, id, reply);
    await bystanderNotSlowed(h, () => mx.connections.length >= 2, 'TLS handshake failing');
    await deliveredAfterRetries(h.f, id, { failures: 2, reply, attemptStarts: () => mx.connections.map((c) => c.at) });
    assert.equal(mx.connections.length, 3, 'one connection per attempt: no plaintext retry');
    assert.ok(!mx.commands.some((c) => /^plain (MAIL|RCPT|DATA)$/.test(c)), mx.commands.join(', '));
    assert.equal(mx.received.length, 1);
    assert.equal(mx.received[0].secure, true);
  });

  test('a TLS handshake that never completes defers as timed out; delivered over TLS once it works', async () => {
    const mx = await faultMx('127.0.2.12', [{ tls: 'stall' }], true);
    mxFor(h.f, 'tlsstall.test', [[10, 'mx.tlsstall.test', '127.0.2.12']]);
    const { id } = await send(h.f, 'bob@tlsstall.test');
    const reply = /^421 4\.7\.0 TLS negotiation failed with mx\.tlsstall\.test \[127\.0\.2\.12\] \(timed out\)$/;
    await firstDeferral(h.f, id, reply);
    await deliveredAfterRetries(h.f, id, { failures: 1, reply, attemptStarts: () => mx.connections.map((c) => c.at) });
    assert.equal(mx.connections.length, 2, 'no plaintext retry');
    assert.equal(mx.received[0].secure, true);
  });

  test('a host that stops offering STARTTLS defers, nothing sent in clear; delivered over TLS once it offers it again', async () => {
    const mx = await faultMx('127.0.2.11', [], false);
    mxFor(h.f, 'notls.test', [[10, 'mx.notls.test', '127.0.2.11']]);
    const { id } = await send(h.f, 'bob@notls.test');
    const reply = /^451 4\.7\.5 TLS required but STARTTLS not offered by mx\.notls\.test \[127\.0\.2\.11\]$/;
    await firstDeferral(h.f, id, reply);
    await until(() => h.f.recipients(id)[0].attempts >= 2, 'second deferral', 5000, 10);
    mx.tls = h.tls;
    await deliveredAfterRetries(h.f, id, { failures: 2, reply, attemptStarts: () => mx.connections.map((c) => c.at) });
    assert.ok(!mx.commands.some((c) => /^plain (MAIL|RCPT|DATA)$/.test(c)), mx.commands.join(', '));
    assert.equal(mx.received.length, 1);
    assert.equal(mx.received[0].secure, true);
  });
});
