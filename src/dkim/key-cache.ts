// mailauth 4.13.3 takes a DKIM key only as PEM text and parses it again for
// every signature: crypto.createPrivateKey costs ~0.7 ms for RSA-2048 under
// OpenSSL 3, about as much as the signature itself, and mailauth accepts no
// KeyObject. A KeyObject is immutable, so the parse can be reused. This wraps
// node:crypto's createPrivateKey for exactly the call mailauth makes
// ({ key: PEM, format: 'pem' }); installed only in the signing worker thread,
// whose one job is signing, so the rest of the process keeps the original.
import crypto, { type KeyObject, type PrivateKeyInput } from 'node:crypto';

const MAX_KEYS = 64;
const INSTALLED = Symbol.for('relaygate.privateKeyCache');

type CreatePrivateKey = typeof crypto.createPrivateKey;

export function installPrivateKeyCache(): void {
  const original = crypto.createPrivateKey as CreatePrivateKey & { [INSTALLED]?: true };
  if (original[INSTALLED]) return;
  const cache = new Map<string, KeyObject>();
  const cached = ((input: Parameters<CreatePrivateKey>[0]) => {
    const o = input as PrivateKeyInput;
    const pemOnly =
      typeof o === 'object' && o !== null && !Buffer.isBuffer(o) && o.format === 'pem' && Object.keys(o).length === 2 &&
      (typeof o.key === 'string' || Buffer.isBuffer(o.key));
    if (!pemOnly) return original(input);
    const pem = typeof o.key === 'string' ? o.key : (o.key as Buffer).toString('latin1');
    let key = cache.get(pem);
    if (!key) {
      key = original(input); // a bad key throws here, every time, as before
      if (cache.size >= MAX_KEYS) cache.clear();
      cache.set(pem, key);
    }
    return key;
  }) as CreatePrivateKey & { [INSTALLED]?: true };
  cached[INSTALLED] = true;
  crypto.createPrivateKey = cached;
}
