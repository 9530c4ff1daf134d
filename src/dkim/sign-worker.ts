// Worker-thread side of createSigner(): signs and returns only the
// DKIM-Signature block; the parent still holds the message bytes.
import { parentPort } from 'node:worker_threads';
import { installPrivateKeyCache } from './key-cache.js';
import { dkimSignatures, type SignJob, type SignReply } from './sign.js';

if (!parentPort) throw new Error('sign-worker must run as a worker thread');
installPrivateKeyCache();
const port = parentPort;

port.on('message', (job: SignJob) => {
  const message = Buffer.from(job.message.buffer, job.message.byteOffset, job.message.byteLength);
  dkimSignatures(message, job.keys).then(
    (signatures) => port.postMessage({ id: job.id, ok: true, signatures } satisfies SignReply),
    (err: Error & { code?: unknown }) =>
      port.postMessage({
        id: job.id,
        ok: false,
        code: typeof err.code === 'string' ? err.code : 'dkim_sign_failed',
        error: err.message,
      } satisfies SignReply),
  );
});
