// Time limits of delivery (SPEC §6): a tarpit MX (accepts TCP, never greets)
// costs its own recipients a deferral and then expiry at delivery.maxAge, and
// never slows delivery to other domains. Scheduled messages wait for their
// time and are not expired for having waited.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { startMxSink, submitMail, type MxSink } from '../helpers/gateway.js';
import { DOMAIN, startRelay, type RelayFixture } from '../helpers/relay.js';

const MAX_AGE_MS = 3000;
let f: RelayFixture;
let fast: MxSink;
let tarpit: net.Server;
const held = new Set<net.Socket>();
let tarpitConnections = 0;

before(async () => {
  f = await startRelay({
    delivery: { retrySchedule: ['300ms', '600ms'], maxAge: '3s', greetingTimeout: '2s', connectTimeout: '1s', socketTimeout: '2s' },
  });
  const { dns, mxPort } = f.t;
  dns.set('tarpit.test', [{ type: 'MX', exchange: 'mx.tarpit.test', priority: 10 }]);
  dns.set('mx.tarpit.test', [{ type: 'A', address: '127.0.0.71' }]);
  dns.set('fast.test', [{ type: 'MX', exchange: 'mx.fast.test', priority: 10 }]);
  dns.set('mx.fast.test', [{ type: 'A', address: '127.0.0.72' }]);
  tarpit = net.createServer((s) => {
    tarpitConnections++;
    held.add(s);
    s.on('error', () => undefined);
    s.on('close', () => held.delete(s));
  });
  await new Promise<void>((r) => tarpit.listen(mxPort, '127.0.0.71', r));
  fast = await startMxSink('127.0.0.72', mxPort);
});
after(async () => {
  await f?.stop();
  for (const s of held) s.destroy();
  await new Promise<void>((r) => tarpit?.close(() => r()));
  await fast?.close();
});

const send = async (to: string, headers?: Record<string, string>) => {
  const r = await submitMail({ port: f.t.smtpPort, auth: f.auth, from: `app@${DOMAIN}`, to, text: 'hi', headers });
  return { id: r.id, acceptedAt: Date.now() };
};

test('a tarpit MX: deferred, then expired after maxAge, while another domain is delivered at once', async () => {
  const slow = await send('bob@tarpit.test');
  // Sent just after: must not wait behind the tarpit.
  const quick = await send('amy@fast.test');
  const [m] = await fast.waitFor(1, 3000);
  assert.ok(m.at - quick.acceptedAt < 1000, `other domain delivered ${m.at - quick.acceptedAt} ms after its 250`);

  const [r] = await f.settled(slow.id, MAX_AGE_MS + 8000);
  assert.equal(r.status, 'expired');
  // From acceptance as the store recorded it, which maxAge counts from: the client's clock
  // after the 250 reads later, and on a loaded machine made this look up to ~1.3 s early.
  const elapsed = r.updated_at - f.t.gw.store.queue.message(slow.id)!.created_at;
  assert.ok(elapsed >= MAX_AGE_MS - 100, `expired after ${elapsed} ms, not before maxAge`);
  assert.ok(elapsed < MAX_AGE_MS + 3000, `expired ${elapsed} ms after acceptance: a tarpit must not hold it much past maxAge`);
  const events = f.events(slow.id);
  const types = events.map((e) => e.type);
  assert.equal(types[0], 'queued');
  assert.equal(types.at(-1), 'expired');
  assert.ok(types.includes('deferred'), `deferred first: ${types.join(',')}`);
  for (const e of events.filter((x) => x.type === 'deferred')) assert.match(String(e.data.reply), /^4\d\d 4\.\d\.\d+ .*(timed out|greeting)/);
  assert.match(r.last_reply!, /^4\d\d /);
  assert.ok(tarpitConnections >= 1);
});

test('a message scheduled past maxAge is still delivered: maxAge runs from when it is due', async () => {
  const sendAt = Date.now() + MAX_AGE_MS + 1000;
  const { id } = await send('late@fast.test', { 'X-Relaygate-Send-At': new Date(sendAt).toISOString() });
  assert.equal(f.recipients(id)[0].status, 'scheduled');
  const [r] = await f.settled(id, MAX_AGE_MS + 6000);
  assert.equal(r.status, 'delivered', `got ${r.status}: ${r.last_reply}`);
  assert.ok(r.updated_at >= sendAt - 50);
});
