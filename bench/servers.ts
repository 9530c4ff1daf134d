// Parent side of bench/server-child.ts: start a bare SMTP sink or 302 server
// in its own process and ask it for counters over IPC.
import { fork, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { BENCH_DIR, ROOT, cpuSeconds, peakRss } from './lib.js';
import type { ChildArgs, FromChild, ToChild } from './server-child.js';

export interface ServerChild {
  pid: number;
  port: number;
  stats(): Promise<Extract<FromChild, { type: 'stats' }>>;
  bodies(): Promise<Buffer[]>;
  reset(): void;
  cpu(): number;
  peakRss(): number;
  stop(): Promise<void>;
}

export async function startServerChild(args: ChildArgs): Promise<ServerChild> {
  const proc: ChildProcess = fork(path.join(BENCH_DIR, 'server-child.ts'), [JSON.stringify(args)], {
    cwd: ROOT,
    execArgv: ['--import', 'tsx'],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const exited = new Promise<void>((r) => proc.once('exit', () => r()));
  const next = <T extends FromChild['type']>(type: T): Promise<Extract<FromChild, { type: T }>> =>
    new Promise((resolve, reject) => {
      const onMsg = (m: FromChild) => {
        if (m.type === 'error') return done(() => reject(new Error(`${args.kind} server: ${m.message}`)));
        if (m.type === type) done(() => resolve(m as Extract<FromChild, { type: T }>));
      };
      const onExit = () => done(() => reject(new Error(`${args.kind} server exited`)));
      const done = (f: () => void) => {
        proc.off('message', onMsg);
        proc.off('exit', onExit);
        f();
      };
      proc.on('message', onMsg);
      proc.once('exit', onExit);
    });
  const ask = <T extends FromChild['type']>(cmd: ToChild, type: T) => {
    const reply = next(type);
    proc.send(cmd);
    return reply;
  };
  const { port } = await next('ready');
  return {
    pid: proc.pid!,
    port,
    stats: () => ask({ cmd: 'stats' }, 'stats'),
    bodies: async () => (await ask({ cmd: 'bodies' }, 'bodies')).bodies.map((b) => Buffer.from(b, 'base64')),
    reset: () => void proc.send({ cmd: 'reset' } satisfies ToChild),
    cpu: () => cpuSeconds(proc.pid!),
    peakRss: () => peakRss(proc.pid!),
    async stop() {
      if (proc.exitCode === null && proc.connected) proc.send({ cmd: 'stop' } satisfies ToChild);
      const t = setTimeout(() => proc.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(t);
    },
  };
}
