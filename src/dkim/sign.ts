// DKIM signing of the final message bytes (SPEC §5), in-thread or on a small
// worker pool. RSA signing plus body hashing costs about a millisecond per
// 20 KB message; on the main thread that stalls the SMTP listener under load.
import { dkimSign, type DKIMSignOptions } from 'mailauth';
import type { Worker } from 'node:worker_threads';
import { GatewayError } from '../errors.js';
import { startWorkerThread } from '../util/worker-thread.js';
import type { DkimAlgorithm } from './keys.js';

export interface SigningKey {
  domain: string;
  selector: string;
  algorithm: DkimAlgorithm;
  privateKeyPem: string;
}

/** SPEC §5. Only the ones present in a message end up in h=. */
export const SIGNED_HEADERS: readonly string[] = [
  'From',
  'To',
  'Cc',
  'Subject',
  'Date',
  'Message-ID',
  'MIME-Version',
  'Content-Type',
  'List-Unsubscribe',
  'List-Unsubscribe-Post',
];

const SIGN_ALGORITHM: Record<DkimAlgorithm, string> = {
  rsa: 'rsa-sha256',
  ed25519: 'ed25519-sha256', // RFC 8463
};

const signFailed = (message: string, cause?: unknown) =>
  // Temporary: a broken key is an operator problem that a fix or a key rotation
  // cures, and the message must not leave unsigned in the meantime.
  new GatewayError('dkim_sign_failed', message, { smtp: 451, enhanced: '4.7.0', http: 500, cause });

const SIGNED_LOWER = new Set(SIGNED_HEADERS.map((h) => h.toLowerCase()));
// mailauth 4.13.3's relaxed header canonicalization reads header bytes as
// latin1 and collapses JS `\s`, which besides SP/HTAB also matches 0x0B,
// 0x0C and 0xA0. RFC 6376 §3.4.2 only folds SP and HTAB, so any other
// verifier (dkimpy, OpenDKIM, Gmail) rejects such a signature. 0xA0 is common
// in raw UTF-8 headers (SMTPUTF8): "à" is C3 A0, many CJK characters hold it.
const MISREAD_AS_SPACE = /[\x0b\x0c\xa0]/;

/** True when a signed header holds a byte mailauth's relaxed header canonicalization mangles. */
export function needsSimpleHeaderCanon(message: Buffer): boolean {
  const end = message.indexOf('\r\n\r\n');
  const header = message.subarray(0, end < 0 ? message.length : end).toString('latin1');
  if (!MISREAD_AS_SPACE.test(header)) return false;
  for (const field of header.split(/\r\n(?![ \t])/)) {
    const colon = field.indexOf(':');
    if (colon < 0) continue;
    if (SIGNED_LOWER.has(field.slice(0, colon).trim().toLowerCase()) && MISREAD_AS_SPACE.test(field.slice(colon + 1))) {
      return true;
    }
  }
  return false;
}

/**
 * The DKIM-Signature header block (CRLF-terminated) for `message`, one header
 * per key. Throws rather than returning fewer signatures than keys.
 */
export async function dkimSignatures(message: Buffer, keys: readonly SigningKey[]): Promise<string> {
  if (keys.length === 0) return '';
  for (const k of keys) {
    if (!SIGN_ALGORITHM[k.algorithm]) throw signFailed(`unsupported DKIM algorithm ${String(k.algorithm)}`);
  }
  // The per-entry form is the one mailauth 4.13.3 honours: its top-level
  // signingDomain/selector/privateKey are ignored and yield no signature and no
  // error (VERIFIED-STACK §2). headerList must be a ':'-joined string: an array
  // is silently replaced by mailauth's much longer default list.
  // simple/relaxed for those rare messages: simple header canonicalization is
  // byte-exact in mailauth, and a signature that survives no refolding is
  // still better than one no receiver can verify.
  const canonicalization = needsSimpleHeaderCanon(message) ? 'simple/relaxed' : 'relaxed/relaxed';
  const options = {
    canonicalization,
    // Without a signTime, mailauth 4.13.3 reads the clock twice per signature:
    // once for the t= tag it signs and again for the t= tag it writes out, each
    // rounded to the second. When a second boundary falls between the two
    // (the signing itself takes a millisecond or more, far longer on a loaded
    // machine), the header says one time and the signature covers another,
    // and every verifier reports `fail`. One fixed time makes both the same.
    signTime: new Date(),
    headerList: SIGNED_HEADERS.join(':'),
    signatureData: keys.map((k) => ({
      signingDomain: k.domain,
      selector: k.selector,
      privateKey: k.privateKeyPem,
      algorithm: SIGN_ALGORITHM[k.algorithm],
      canonicalization,
    })),
  } as unknown as DKIMSignOptions;

  let res;
  try {
    res = await dkimSign(message, options);
  } catch (err) {
    throw signFailed(`DKIM signing failed: ${(err as Error).message}`, err);
  }
  const errors = (res.errors ?? []) as unknown as { selector?: string; signingDomain?: string; err?: Error }[];
  if (errors.length) {
    const what = errors
      .map((e) => `${e.selector ?? '?'}._domainkey.${e.signingDomain ?? '?'}: ${e.err?.message ?? String(e)}`)
      .join('; ');
    throw signFailed(`DKIM signing failed: ${what}`, errors[0]?.err);
  }
  const count = (res.signatures.match(/^DKIM-Signature:/gim) ?? []).length;
  if (count !== keys.length) {
    throw signFailed(`DKIM signing produced ${count} signature(s) for ${keys.length} key(s)`);
  }
  return res.signatures;
}

/** `signatures + message`. No keys → the message unchanged (caller's choice to send unsigned). */
export async function dkimSignMessage(message: Buffer, keys: readonly SigningKey[]): Promise<Buffer> {
  if (keys.length === 0) return message;
  const signatures = await dkimSignatures(message, keys);
  return Buffer.concat([Buffer.from(signatures, 'latin1'), message]);
}

// ---------------------------------------------------------------------------
// Worker pool

export interface Signer {
  sign(message: Buffer, keys: readonly SigningKey[]): Promise<Buffer>;
  close(): Promise<void>;
}

export interface SignerOptions {
  /** Worker threads; 0 signs on the calling thread. Default 1. */
  workers?: number;
  /** A job that takes longer is failed and its worker replaced. Default 30 s. */
  jobTimeoutMs?: number;
}

/** Parent → worker. */
export interface SignJob {
  id: number;
  message: Uint8Array;
  keys: readonly SigningKey[];
}

/** Worker → parent. */
export type SignReply =
  | { id: number; ok: true; signatures: string }
  | { id: number; ok: false; code: string; error: string };

interface Pending {
  message: Buffer;
  resolve: (b: Buffer) => void;
  reject: (e: Error) => void;
  timer: NodeJS.Timeout;
}

interface Slot {
  worker: Worker;
  pending: Map<number, Pending>;
  dead: boolean;
}

function spawnWorker(): Worker {
  return startWorkerThread(import.meta.url, 'sign-worker');
}

export function createSigner(opts: SignerOptions = {}): Signer {
  const size = Math.max(0, Math.floor(opts.workers ?? 1));
  const jobTimeoutMs = opts.jobTimeoutMs ?? 30_000;
  if (size === 0) {
    let closed = false;
    return {
      async sign(message, keys) {
        if (closed) throw signFailed('signer is closed');
        return dkimSignMessage(message, keys);
      },
      async close() {
        closed = true;
      },
    };
  }

  let nextId = 1;
  let closed = false;
  const slots: Slot[] = [];
  let idle: (() => void) | null = null;

  const inFlight = () => slots.reduce((n, s) => n + s.pending.size, 0);
  const settle = (slot: Slot) => {
    // An idle pool must not keep the process alive if the owner forgets close().
    if (slot.pending.size === 0) slot.worker.unref();
    if (idle && inFlight() === 0) idle();
  };

  const failAll = (slot: Slot, err: Error) => {
    slot.dead = true;
    for (const [id, p] of slot.pending) {
      clearTimeout(p.timer);
      slot.pending.delete(id);
      p.reject(err);
    }
    settle(slot);
  };

  const startSlot = (): Slot => {
    const slot: Slot = { worker: spawnWorker(), pending: new Map(), dead: false };
    slot.worker.unref();
    slot.worker.on('message', (reply: SignReply) => {
      const p = slot.pending.get(reply.id);
      if (!p) return;
      slot.pending.delete(reply.id);
      clearTimeout(p.timer);
      if (reply.ok) {
        p.resolve(reply.signatures ? Buffer.concat([Buffer.from(reply.signatures, 'latin1'), p.message]) : p.message);
      } else {
        p.reject(new GatewayError(reply.code, reply.error, { smtp: 451, enhanced: '4.7.0', http: 500 }));
      }
      settle(slot);
    });
    slot.worker.on('error', (err) => failAll(slot, signFailed(`DKIM signing worker failed: ${err.message}`, err)));
    slot.worker.on('exit', (code) => {
      if (slot.pending.size) failAll(slot, signFailed(`DKIM signing worker exited (code ${code})`));
      slot.dead = true;
    });
    return slot;
  };

  for (let i = 0; i < size; i++) slots.push(startSlot());

  const pick = (): Slot => {
    for (let i = 0; i < slots.length; i++) if (slots[i].dead) slots[i] = startSlot();
    return slots.reduce((best, s) => (s.pending.size < best.pending.size ? s : best));
  };

  return {
    sign(message, keys) {
      if (closed) return Promise.reject(signFailed('signer is closed'));
      if (keys.length === 0) return Promise.resolve(message);
      const slot = pick();
      const id = nextId++;
      // Copy into a buffer of our own before transferring: a small Buffer is
      // usually a view into Node's shared 8 KiB pool, and transferring that
      // ArrayBuffer would detach unrelated Buffers elsewhere in the process.
      const copy = new Uint8Array(message.byteLength);
      copy.set(message);
      return new Promise<Buffer>((resolve, reject) => {
        const timer = setTimeout(() => {
          if (!slot.pending.delete(id)) return;
          reject(signFailed(`DKIM signing timed out after ${jobTimeoutMs} ms`));
          // The worker is stuck on something; replace it rather than queue behind it.
          failAll(slot, signFailed('DKIM signing worker replaced after a timeout'));
          void slot.worker.terminate();
        }, jobTimeoutMs);
        slot.pending.set(id, { message, resolve, reject, timer });
        slot.worker.ref();
        const job: SignJob = { id, message: copy, keys };
        slot.worker.postMessage(job, [copy.buffer]);
      });
    },
    async close() {
      if (closed) return;
      closed = true;
      // Let jobs already handed out finish (each is bounded by its timeout).
      if (inFlight() > 0) await new Promise<void>((r) => (idle = r));
      await Promise.all(slots.map((s) => s.worker.terminate()));
    },
  };
}
