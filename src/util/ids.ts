import { randomBytes } from 'node:crypto';

const CROCKFORD = '0123456789abcdefghjkmnpqrstvwxyz';

/**
 * Sortable, unguessable ids (ULID layout: 48-bit ms time + 80 random bits,
 * Crockford base32, lowercase). Sorting by id sorts by acceptance time.
 */
export function newId(now = Date.now()): string {
  let time = '';
  let t = now;
  for (let i = 0; i < 10; i++) {
    time = CROCKFORD[t % 32] + time;
    t = Math.floor(t / 32);
  }
  const rnd = randomBytes(10);
  let bits = 0;
  let value = 0;
  let out = '';
  for (const byte of rnd) {
    value = (value << 8) | byte;
    bits += 8;
    while (bits >= 5) {
      out += CROCKFORD[(value >>> (bits - 5)) & 31];
      bits -= 5;
    }
  }
  return time + out;
}

/** A random token of `bytes` bytes (default 16 = 128 bits), base64url. */
export function newToken(bytes = 16): string {
  return randomBytes(bytes).toString('base64url');
}
