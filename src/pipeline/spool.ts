// DATA is counted byte by byte while it arrives and goes to disk once it is
// large (STYLE: "spool to disk, then parse"): a client announcing nothing and
// sending 1 GB costs us maxMessageSize of disk at most, never memory. Typical
// mail (tens of KB) stays in memory: a file per message cost ~0.9 ms of
// open/write/close/unlink on the accept path (bench), and the message is read
// whole for the pipeline anyway. The stream is always read to its end, because
// smtp-server can answer only after the final dot; past the limit the rest is
// read and dropped.
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { Readable } from 'node:stream';

export interface Spooled {
  /** Set once the message outgrew memory; null while it is held in `chunks`. */
  file: string | null;
  chunks: Buffer[];
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

/** Messages up to this size are held in memory; larger ones are written to the spool directory. */
export const DEFAULT_MEMORY_LIMIT = 512 * 1024;

export function createSpool(dataDir: string, opts: { memoryLimit?: number } = {}): Spool {
  const dir = path.join(dataDir, 'spool');
  const memoryLimit = opts.memoryLimit ?? DEFAULT_MEMORY_LIMIT;
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });

  async function remove(s: Spooled | string): Promise<void> {
    const file = typeof s === 'string' ? s : s.file;
    if (typeof s !== 'string') s.chunks = [];
    if (file) await fs.promises.rm(file, { force: true });
  }

  return {
    dir,
    async receive(stream, maxBytes) {
      const out: Spooled = { file: null, chunks: [], size: 0, oversize: false };
      let fh: fs.promises.FileHandle | null = null;
      let kept = 0;
      try {
        for await (const chunk of stream as AsyncIterable<Buffer>) {
          out.size += chunk.length;
          if (out.size > maxBytes) out.oversize = true;
          if (out.oversize || out.writeError) continue;
          if (!fh && kept + chunk.length <= memoryLimit) {
            out.chunks.push(chunk);
            kept += chunk.length;
            continue;
          }
          try {
            if (!fh) {
              out.file = path.join(dir, `${Date.now().toString(36)}-${randomBytes(8).toString('hex')}.eml`);
              // 'wx': never follow or reuse an existing file; 0600: mail is private.
              fh = await fs.promises.open(out.file, 'wx', 0o600);
              for (const c of out.chunks) await fh.write(c);
              out.chunks = [];
            }
            await fh.write(chunk);
          } catch (e) {
            out.writeError = e as Error;
          }
        }
      } catch (e) {
        await (fh as fs.promises.FileHandle | null)?.close().catch(() => undefined);
        await remove(out);
        throw e;
      }
      await (fh as fs.promises.FileHandle | null)?.close();
      return out;
    },
    read: async (s) => (s.file ? fs.promises.readFile(s.file) : Buffer.concat(s.chunks)),
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
