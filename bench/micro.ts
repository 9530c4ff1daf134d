// Per-message CPU costs on the accept path, measured in this process over the
// reference message: the tracking rewrite (prepareTracking parses and rewrites
// the HTML part once per message; render() fills one recipient's tokens) and
// RSA-2048 DKIM signing as mailauth does it on whatever thread calls it.
import type { TrackFlag } from '../src/pipeline/control-headers.js';
import { prepareTracking } from '../src/pipeline/tracking-plan.js';
import { createPrivateKey, sign } from 'node:crypto';
import { generateDkimKey } from '../src/dkim/keys.js';
import { installPrivateKeyCache } from '../src/dkim/key-cache.js';
import { dkimSignMessage } from '../src/dkim/sign.js';
import { fixtureCrlf, nowMs, summarize } from './lib.js';

export interface MicroResult {
  /** µs per message: prepareTracking (parse + rewrite the HTML once). */
  prepareUs: number;
  /** µs per recipient copy: render (tokens substituted, MIME part re-encoded). */
  renderUs: number;
  /** µs per message with one recipient: prepare + render. */
  rewriteUs: number;
  links: number;
  tokens: number;
  /** µs per RSA-2048 signature over the rewritten message with the product's options (PEM key), on the calling thread. */
  dkimUs: number;
  /** The same with the signing worker's parsed-key cache installed (src/dkim/key-cache.ts). */
  dkimCachedUs: number;
  /** Of which: crypto.createPrivateKey(PEM), which mailauth 4.13.3 repeats for every signature. */
  keyParseUs: number;
  /** Of which: the RSA-2048 private-key operation alone (crypto.sign over a digest-sized input, parsed key). */
  rsaSignUs: number;
}

/**
 * Runs `fn` repeatedly for about `budgetMs` after a warm-up and returns CPU µs
 * per call (the median of 5 slices). CPU time rather than wall time, so other
 * processes competing for the cores inflate the figure as little as possible.
 */
async function timeIt(fn: () => unknown, budgetMs: number): Promise<number> {
  for (let i = 0; i < 20; i++) await fn();
  const slices: number[] = [];
  for (let s = 0; s < 5; s++) {
    let n = 0;
    const t0 = nowMs();
    const c0 = process.cpuUsage();
    while (nowMs() - t0 < budgetMs / 5) {
      await fn();
      n++;
    }
    const c = process.cpuUsage(c0);
    slices.push((c.user + c.system) / n);
  }
  return summarize(slices).p50;
}

export async function runMicro(budgetMs = 1500): Promise<MicroResult> {
  const message = fixtureCrlf();
  const flags = new Set<TrackFlag>(['opens', 'clicks']);
  const opts = { baseUrl: 'http://track.bench.test' };

  const sample = prepareTracking(message, flags, opts).render('rcpt@rcpt.test');
  const links = sample.tokens.filter((t) => t.kind === 'c').length;

  const prepareUs = await timeIt(() => prepareTracking(message, flags, opts), budgetMs);
  const plan = prepareTracking(message, flags, opts);
  const renderUs = await timeIt(() => plan.render('rcpt@rcpt.test'), budgetMs);
  const rewriteUs = await timeIt(() => prepareTracking(message, flags, opts).render('rcpt@rcpt.test'), budgetMs);

  const key = generateDkimKey('rsa');
  const keys = [{ domain: 'sender.test', selector: 'rg1', algorithm: 'rsa' as const, privateKeyPem: key.privateKeyPem }];
  const dkimUs = await timeIt(() => dkimSignMessage(sample.message, keys), budgetMs);
  // mailauth takes the key only as PEM (or raw Ed25519) and parses it per signature.
  const keyParseUs = await timeIt(() => createPrivateKey(key.privateKeyPem), budgetMs / 2);
  const parsed = createPrivateKey(key.privateKeyPem);
  const digestSized = Buffer.alloc(64, 1);
  const rsaSignUs = await timeIt(() => sign('sha256', digestSized, parsed), budgetMs / 2);
  // Last: it patches node:crypto in this process, as the signing worker does in its thread.
  installPrivateKeyCache();
  const dkimCachedUs = await timeIt(() => dkimSignMessage(sample.message, keys), budgetMs);

  return { prepareUs, renderUs, rewriteUs, links, tokens: sample.tokens.length, dkimUs, dkimCachedUs, keyParseUs, rsaSignUs };
}
