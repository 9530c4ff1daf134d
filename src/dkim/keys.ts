// DKIM key material and the TXT record that publishes it (RFC 6376 §3.6.1,
// RFC 8463 for ed25519). Pure apart from the randomness of key generation.
import { generateKeyPairSync } from 'node:crypto';

export type DkimAlgorithm = 'rsa' | 'ed25519';

export interface DkimKeyPair {
  privateKeyPem: string;
  /** The `p=` value: RSA → base64 SPKI DER; ed25519 → base64 of the raw 32-byte key. */
  publicKeyB64: string;
}

/** An ed25519 SPKI DER is a fixed 12-byte prefix followed by the raw key. */
const ED25519_RAW_LENGTH = 32;

export function generateDkimKey(algorithm: DkimAlgorithm): DkimKeyPair {
  if (algorithm === 'rsa') {
    // 2048 bits: RFC 8301 §3.2 requires ≥1024 for verifiers, and 2048 is what
    // large receivers expect; 4096 makes the TXT record awkward for many DNS UIs.
    const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    return {
      privateKeyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
      publicKeyB64: publicKey.export({ type: 'spki', format: 'der' }).toString('base64'),
    };
  }
  if (algorithm === 'ed25519') {
    const { privateKey, publicKey } = generateKeyPairSync('ed25519');
    const der = publicKey.export({ type: 'spki', format: 'der' });
    // RFC 8463 §4.2: p= is the bare public key, not the SPKI structure RSA uses.
    return {
      privateKeyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
      publicKeyB64: der.subarray(der.length - ED25519_RAW_LENGTH).toString('base64'),
    };
  }
  throw new Error(`unsupported DKIM algorithm: ${String(algorithm)}`);
}

export function dkimRecordValue(algorithm: DkimAlgorithm, publicKeyB64: string): string {
  return `v=DKIM1; k=${algorithm}; p=${publicKeyB64}`;
}

export interface DkimRecordTags {
  v?: string;
  k?: string;
  p?: string;
  h?: string;
  s?: string;
  t?: string;
  n?: string;
  [tag: string]: string | undefined;
}

/**
 * Parse a DKIM key record's tag=value list (RFC 6376 §3.2). Whitespace around
 * tags and values is folding and carries no meaning; inside `p=` it may split
 * the base64, so it is removed there. Multi-string TXT records must be joined
 * with '' by the caller before parsing.
 */
export function parseDkimRecord(txt: string): DkimRecordTags {
  const tags: DkimRecordTags = {};
  for (const part of txt.split(';')) {
    const eq = part.indexOf('=');
    if (eq < 0) continue;
    const name = part.slice(0, eq).trim();
    if (!name) continue;
    let value = part.slice(eq + 1).trim();
    if (name === 'p') value = value.replace(/\s+/g, '');
    // §3.2: a duplicated tag makes the record invalid; keep the first so a
    // later stray `p=` cannot silently replace the key being compared.
    if (!(name in tags)) tags[name] = value;
  }
  return tags;
}
