// Entry point of a child process holding one bare server, so its CPU and
// memory are its own and it does not share an event loop with the load
// generator:
//   smtp  — an smtp-server that reads DATA to the end and answers 250 (AUTH
//           PLAIN accepted for anyone). It is both the accept baseline and the
//           MX sink the gateway delivers into; it counts what it received and
//           keeps the first few bodies so the bench can pull tracking tokens.
//   http  — a node:http server answering every GET with a 302 (the redirect baseline).
// Started by bench/servers.ts; talks to it over the IPC channel.
import http from 'node:http';
import { SMTPServer } from 'smtp-server';

export interface ChildArgs {
  kind: 'smtp' | 'http';
  host: string;
  port: number;
  /** smtp: bodies to keep for inspection. */
  keep?: number;
  /** http: where the 302 points. */
  location?: string;
}

export type ToChild = { cmd: 'stats' } | { cmd: 'bodies' } | { cmd: 'reset' } | { cmd: 'stop' };

export type FromChild =
  | { type: 'ready'; port: number }
  | { type: 'stats'; count: number; firstAt: number; lastAt: number; bytes: number }
  | { type: 'bodies'; bodies: string[] }
  | { type: 'error'; message: string };

const args = JSON.parse(process.argv[2] ?? '{}') as ChildArgs;
const send = (m: FromChild) => process.send?.(m);

let count = 0;
let bytes = 0;
let firstAt = 0;
let lastAt = 0;
let kept: Buffer[] = [];
let close: () => Promise<void> = async () => undefined;

if (args.kind === 'smtp') {
  const server = new SMTPServer({
    authOptional: true,
    allowInsecureAuth: true,
    authMethods: ['PLAIN'],
    disabledCommands: ['STARTTLS'],
    hideSTARTTLS: true,
    disableReverseLookup: true,
    logger: false,
    size: 50 * 1024 * 1024,
    onAuth: (_auth, _session, cb) => cb(null, { user: 'bench' }),
    onData(stream, _session, cb) {
      const keep = kept.length < (args.keep ?? 0);
      const chunks: Buffer[] = [];
      let n = 0;
      stream.on('data', (c: Buffer) => {
        n += c.length;
        if (keep) chunks.push(c);
      });
      stream.on('end', () => {
        const t = Date.now();
        if (!count) firstAt = t;
        lastAt = t;
        count++;
        bytes += n;
        if (keep) kept.push(Buffer.concat(chunks));
        cb(null, '2.0.0 Ok: queued');
      });
    },
  });
  server.on('error', (e) => send({ type: 'error', message: e.message }));
  server.listen(args.port, args.host, () => send({ type: 'ready', port: (server.server.address() as { port: number }).port }));
  close = () => new Promise<void>((r) => server.close(() => r()));
} else {
  const location = args.location ?? 'https://www.sender.test/';
  const server = http.createServer((req, res) => {
    req.resume();
    count++;
    res.writeHead(302, { Location: location, 'Cache-Control': 'no-store, private', 'Content-Length': '0' });
    res.end();
  });
  server.keepAliveTimeout = 30_000;
  server.listen(args.port, args.host, () => send({ type: 'ready', port: (server.address() as { port: number }).port }));
  close = () =>
    new Promise<void>((r) => {
      server.closeAllConnections();
      server.close(() => r());
    });
}

process.on('message', (m: ToChild) => {
  if (m.cmd === 'stats') send({ type: 'stats', count, firstAt, lastAt, bytes });
  else if (m.cmd === 'bodies') send({ type: 'bodies', bodies: kept.map((b) => b.toString('base64')) });
  else if (m.cmd === 'reset') {
    count = bytes = firstAt = lastAt = 0;
    kept = [];
  } else if (m.cmd === 'stop') void close().then(() => process.exit(0));
});
process.on('disconnect', () => process.exit(0));
