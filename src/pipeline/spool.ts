// DATA goes to disk while it arrives, counted byte by byte (STYLE: "spool to
// disk, then parse"): a client announcing nothing and sending 1 GB costs us
// maxMessageSize of disk at most, never memory. The stream is always read to
// its end, because smtp-server can answer only after the final dot; past the
// limit the rest is read and dropped.
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { Readable } from 'node:stream';

export interface Spooled {
  file: string;
  /** Bytes received, including any dropped past the limit. */
  size: number;
  oversize: boolean;
  /** A write failed (disk full, I/O error); the message was not kept whole. */
  writeError?: Error;
}

export interface Spool {
  dir: string;
  /** Streams `stream` into a new file; resolves once the stream ended. Rejects when the stream broke. */
  receive(stream: Readable, maxBytes: number): Promise<Spooled>;
  read(s: Spooled): Promise<Buffer>;
  /** Removes the file; safe to call more than once. */
  remove(s: Spooled | string): Promise<void>;
  /** Deletes files a crashed process left behind (older than `olderThanMs`). */
  sweep(olderThanMs: number): number;
}

export function createSpool(dataDir: string): Spool {
  const dir = path.join(dataDir, 'spool');
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });

  async function remove(s: Spooled | string): Promise<void> {
    await fs.promises.rm(typeof s === 'string' ? s : s.file, { force: true });
  }

  return {
    dir,
    async receive(stream, maxBytes) {
      const file = path.join(dir, `${Date.now().toString(36)}-${randomBytes(8).toString('hex')}.eml`);
      // 'wx': never follow or reuse an existing file; 0600: mail is private.
      const fh = await fs.promises.open(file, 'wx', 0o600);
      const out: Spooled = { file, size: 0, oversize: false };
      try {
        for await (const chunk of stream as AsyncIterable<Buffer>) {
          out.size += chunk.length;
          if (out.size > maxBytes) out.oversize = true;
          if (out.oversize || out.writeError) continue;
          try {
            await fh.write(chunk);
          } catch (e) {
            out.writeError = e as Error;
          }
        }
      } catch (e) {
        await fh.close().catch(() => undefined);
        await remove(file);
        throw e;
      }
      await fh.close();
      return out;
    },
    read: (s) => fs.promises.readFile(s.file),
    remove,
    sweep(olderThanMs) {
      const cutoff = Date.now() - olderThanMs;
      let n = 0;
      for (const name of fs.readdirSync(dir)) {
        const p = path.join(dir, name);
        try {
          if (fs.statSync(p).mtimeMs < cutoff) {
            fs.rmSync(p, { force: true });
            n++;
          }
        } catch {
          // vanished meanwhile
        }
      }
      return n;
    },
  };
}
