// A destination MX that misbehaves on purpose: a raw net.Server speaking just enough
// SMTP (EHLO, STARTTLS, MAIL, RCPT, DATA, RSET, NOOP, QUIT) to go silent, hang up or
// break TLS at a chosen point. smtp-server cannot stall mid-command or drop a
// connection halfway through DATA, which is why this is not built on it.
//
// Each accepted connection takes the next fault from `faults`; once they are used up the
// server behaves and keeps what it is sent, so "the peer recovers" is built in.
import net from 'node:net';
import tls from 'node:tls';

/** Where a stall happens: no reply to that command (or no greeting, or none after the final dot). */
export type Phase = 'greeting' | 'ehlo' | 'mail' | 'rcpt' | 'data' | 'dot';

export type Fault =
  | { stall: Phase }
  /** Greets with this reply (e.g. `421 4.3.2 ...`) and hangs up. */
  | { greet: string }
  /** Hangs up once part of the message has arrived, before the final dot. */
  | { dropMidData: true }
  /** Hangs up once the whole message, final dot included, has arrived — without a reply. */
  | { dropAfterDot: true }
  /**
   * After `220` to STARTTLS: `garbage` answers the ClientHello with bytes that are not TLS
   * and hangs up; `stall` never answers it.
   */
  | { tls: 'garbage' | 'stall' };

export interface FaultMxOptions {
  /** Offer STARTTLS with this key and certificate. */
  tls?: { key: Buffer | string; cert: Buffer | string };
}

export interface FaultConnection {
  at: number;
  fault: Fault | null;
}

export interface FaultMail {
  from: string;
  to: string[];
  body: string;
  secure: boolean;
  at: number;
}

export interface FaultMx {
  ip: string;
  faults: Fault[];
  /** STARTTLS offered with this key and certificate (may be changed between connections). */
  tls?: FaultMxOptions['tls'];
  connections: FaultConnection[];
  received: FaultMail[];
  /** Every command verb received, as `plain MAIL` / `tls MAIL`. */
  commands: string[];
  /** For dropMidData: how many bytes of DATA had arrived, and whether the final dot had. */
  drops: { bytes: number; sawDot: boolean }[];
  waitFor(n: number, timeoutMs?: number): Promise<FaultMail[]>;
  close(): Promise<void>;
}

const END_OF_DATA = '\r\n.\r\n';

export async function startFaultMx(ip: string, port: number, faults: Fault[], o: FaultMxOptions = {}): Promise<FaultMx> {
  const sockets = new Set<net.Socket>();
  const mx: FaultMx = {
    ip,
    faults: [...faults],
    tls: o.tls,
    connections: [],
    received: [],
    commands: [],
    drops: [],
    async waitFor(n, timeoutMs = 15_000) {
      const end = Date.now() + timeoutMs;
      while (mx.received.length < n) {
        if (Date.now() > end) throw new Error(`fault MX ${ip}: waited ${timeoutMs} ms for ${n} messages, got ${mx.received.length}`);
        await new Promise((r) => setTimeout(r, 25));
      }
      return mx.received;
    },
    close: async () => undefined,
  };

  const server = net.createServer((raw) => {
    sockets.add(raw);
    raw.on('close', () => sockets.delete(raw));
    raw.on('error', () => undefined);
    const fault = mx.faults.shift() ?? null;
    mx.connections.push({ at: Date.now(), fault });
    serve(raw, fault, mx.tls);
  });

  function serve(raw: net.Socket, fault: Fault | null, offer: FaultMxOptions['tls']) {
    let sock: net.Socket = raw;
    let secure = false;
    let silent = false;
    let buf = '';
    let inData = false;
    let from = '';
    let to: string[] = [];
    const stallAt = fault && 'stall' in fault ? fault.stall : null;
    const say = (line: string) => {
      if (!sock.destroyed) sock.write(`${line}\r\n`);
    };

    if (stallAt === 'greeting') return; // connection accepted, nothing ever said
    if (fault && 'greet' in fault) {
      say(fault.greet);
      raw.end();
      return;
    }
    say(`220 ${ip} ESMTP fault-mx`);

    const onData = (chunk: Buffer) => {
      if (silent) return;
      buf += chunk.toString('latin1');
      for (;;) {
        if (silent) return;
        if (inData) {
          const end = buf.startsWith(`.\r\n`) ? 0 : buf.indexOf(END_OF_DATA);
          if (fault && 'dropMidData' in fault) {
            mx.drops.push({ bytes: buf.length, sawDot: end >= 0 });
            silent = true;
            raw.destroy();
            return;
          }
          if (end < 0) return;
          const body = end === 0 ? '' : buf.slice(0, end + 2);
          buf = buf.slice(end === 0 ? 3 : end + END_OF_DATA.length);
          inData = false;
          if (stallAt === 'dot') {
            silent = true;
            return;
          }
          if (fault && 'dropAfterDot' in fault) {
            silent = true;
            raw.destroy();
            return;
          }
          // RFC 5321 §4.5.2: undo dot-stuffing.
          mx.received.push({ from, to, body: body.replace(/^\.\./gm, '.'), secure, at: Date.now() });
          to = [];
          say('250 2.0.0 Ok: queued');
          continue;
        }
        const i = buf.indexOf('\r\n');
        if (i < 0) return;
        const line = buf.slice(0, i);
        buf = buf.slice(i + 2);
        command(line);
      }
    };

    const command = (line: string) => {
      const verb = line.split(' ')[0].toUpperCase();
      mx.commands.push(`${secure ? 'tls' : 'plain'} ${verb}`);
      switch (verb) {
        case 'EHLO':
        case 'HELO':
          if (stallAt === 'ehlo') return void (silent = true);
          if (verb === 'HELO') return say(`250 ${ip}`);
          return say([`250-${ip}`, ...(offer && !secure ? ['250-STARTTLS'] : []), '250-8BITMIME', '250 SMTPUTF8'].join('\r\n'));
        case 'STARTTLS': {
          if (!offer || secure) return say('503 5.5.1 STARTTLS not available');
          say('220 2.0.0 Ready to start TLS');
          sock.off('data', onData);
          if (fault && 'tls' in fault) {
            silent = true;
            if (fault.tls === 'stall') return;
            // Whatever the ClientHello was, what comes back is not a ServerHello.
            raw.once('data', () => {
              raw.write('HTTP/1.1 400 Bad Request\r\n\r\n');
              setTimeout(() => raw.destroy(), 20);
            });
            return;
          }
          const t = new tls.TLSSocket(raw, { isServer: true, key: offer.key, cert: offer.cert });
          t.on('error', () => undefined);
          sock = t;
          secure = true;
          buf = '';
          t.on('data', onData);
          return;
        }
        case 'MAIL':
          if (stallAt === 'mail') return void (silent = true);
          from = /<([^>]*)>/.exec(line)?.[1] ?? '';
          to = [];
          return say('250 2.1.0 Ok');
        case 'RCPT':
          if (stallAt === 'rcpt') return void (silent = true);
          to.push(/<([^>]*)>/.exec(line)?.[1] ?? '');
          return say('250 2.1.5 Ok');
        case 'DATA':
          if (stallAt === 'data') return void (silent = true);
          inData = true;
          return say('354 End data with <CR><LF>.<CR><LF>');
        case 'RSET':
          from = '';
          to = [];
          return say('250 2.0.0 Ok');
        case 'NOOP':
          return say('250 2.0.0 Ok');
        case 'QUIT':
          say('221 2.0.0 Bye');
          return void sock.end();
        default:
          return say('502 5.5.2 Command not recognized');
      }
    };

    raw.on('data', onData);
  }

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, ip, () => resolve());
  });
  mx.close = () =>
    new Promise<void>((resolve) => {
      for (const s of sockets) s.destroy();
      server.close(() => resolve());
    });
  return mx;
}
