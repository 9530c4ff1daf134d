// Slow password hashing for SMTP credentials: scrypt (memory-hard), random
// salt, parameters stored with the hash so they can be raised later.
import { randomBytes, scrypt as scryptCb, timingSafeEqual, createHash } from 'node:crypto';
import { promisify } from 'node:util';

const scrypt = promisify(scryptCb) as (pw: string, salt: Buffer, len: number, opts: object) => Promise<Buffer>;
const N = 16384;
const R = 8;
const P = 1;
const LEN = 32;

export async function hashPassword(password: string): Promise<string> {
  const salt = randomBytes(16);
  const key = await scrypt(password, salt, LEN, { N, r: R, p: P });
  return `scrypt$${N}$${R}$${P}$${salt.toString('base64')}$${key.toString('base64')}`;
}

export async function verifyPassword(password: string, stored: string): Promise<boolean> {
  const [alg, n, r, p, salt, hash] = stored.split('$');
  if (alg !== 'scrypt' || !hash) return false;
  const expected = Buffer.from(hash, 'base64');
  const key = await scrypt(password, Buffer.from(salt, 'base64'), expected.length, {
    N: Number(n),
    r: Number(r),
    p: Number(p),
  });
  return timingSafeEqual(key, expected);
}

/**
 * Remembers successful checks so a busy app that opens a connection per
 * message does not pay ~50 ms of scrypt each time. Keyed on the stored hash,
 * so a removed or replaced credential is never served from the cache.
 */
export class PasswordCache {
  private ok = new Map<string, number>();
  constructor(private ttlMs = 5 * 60_000) {}

  private key(password: string, stored: string): string {
    return createHash('sha256').update(stored).update('\0').update(password).digest('base64');
  }

  async verify(password: string, stored: string, now = Date.now()): Promise<boolean> {
    const k = this.key(password, stored);
    const until = this.ok.get(k);
    if (until && until > now) return true;
    const good = await verifyPassword(password, stored);
    if (good) {
      if (this.ok.size > 10_000) this.ok.clear();
      this.ok.set(k, now + this.ttlMs);
    }
    return good;
  }
}

/** API keys are long random secrets: a fast hash is enough and keeps lookups O(1). */
export function hashApiKey(key: string): string {
  return createHash('sha256').update(key).digest('hex');
}
