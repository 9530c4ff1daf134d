// TLS material for the submission listener. A user's own key/cert in certs/
// wins; otherwise a self-signed pair is generated there once, so STARTTLS
// works out of the box and smtp-server never falls back to its built-in
// (publicly known) test certificate.
import fs from 'node:fs';
import path from 'node:path';
import { generate } from 'selfsigned';

export interface TlsMaterial {
  key: Buffer;
  cert: Buffer;
  generated: boolean;
  keyPath: string;
  certPath: string;
}

export async function ensureCertificate(certsDir: string, hostname: string): Promise<TlsMaterial> {
  const keyPath = path.join(certsDir, 'key.pem');
  const certPath = path.join(certsDir, 'cert.pem');
  if (fs.existsSync(keyPath) && fs.existsSync(certPath)) {
    return { key: fs.readFileSync(keyPath), cert: fs.readFileSync(certPath), generated: false, keyPath, certPath };
  }
  fs.mkdirSync(certsDir, { recursive: true });
  const notAfterDate = new Date(Date.now() + 825 * 86_400_000);
  // selfsigned defaults to SHA-1 signatures, which modern TLS stacks refuse.
  const pems = await generate([{ name: 'commonName', value: hostname }], {
    keySize: 2048,
    algorithm: 'sha256',
    notAfterDate,
    extensions: [{ name: 'subjectAltName', altNames: [{ type: 2, value: hostname }, { type: 2, value: 'localhost' }] }],
  } as Parameters<typeof generate>[1]);
  // Written key-first with 0600 so a crash never leaves a readable half pair.
  fs.writeFileSync(keyPath, pems.private, { mode: 0o600 });
  fs.writeFileSync(certPath, pems.cert);
  return { key: Buffer.from(pems.private), cert: Buffer.from(pems.cert), generated: true, keyPath, certPath };
}
