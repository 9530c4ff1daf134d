// A minimal HTTP/1.1 client for request floods (the forged-token test): many GETs
// pipelined on one keep-alive connection, status codes only.
import net from 'node:net';

/**
 * GETs `paths` pipelined on one keep-alive HTTP/1.1 connection (RFC 9112 §9.3.2) and
 * resolves their status codes in order: ten thousand requests in a few seconds, where a
 * fetch per request spends most of its time in the client.
 */
export function pipelined(port: number, paths: string[]): Promise<number[]> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1');
    const codes: number[] = [];
    let buf: Buffer = Buffer.alloc(0);
    const timer = setTimeout(() => (socket.destroy(), reject(new Error(`timed out after ${codes.length} of ${paths.length} responses`))), 60_000);
    socket.on('data', (d: Buffer) => {
      buf = buf.length ? Buffer.concat([buf, d]) : d;
      for (;;) {
        const end = buf.indexOf('\r\n\r\n');
        if (end < 0) return;
        const head = buf.subarray(0, end).toString('latin1');
        if (/\r\ntransfer-encoding:/i.test(head)) return reject(new Error('chunked response: not handled here'));
        const length = Number(/\r\ncontent-length: *(\d+)/i.exec(head)?.[1] ?? 0);
        if (buf.length < end + 4 + length) return;
        codes.push(Number(head.slice(9, 12)));
        buf = buf.subarray(end + 4 + length);
        if (codes.length === paths.length) {
          clearTimeout(timer);
          socket.end();
          return resolve(codes);
        }
      }
    });
    socket.on('error', reject);
    socket.write(paths.map((p) => `GET ${p} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n`).join(''));
  });
}
