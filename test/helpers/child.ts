// The gateway and CLI as a user runs them: `node bin/relaygate.mjs …` in a child
// process, configured through RELAYGATE_CONFIG (a JSON file) and RELAYGATE_* env.
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const BIN = path.join(ROOT, 'bin', 'relaygate.mjs');

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Environment without the caller's RELAYGATE_* so tests never pick up a developer's settings. */
export function cleanEnv(extra: Record<string, string>): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('RELAYGATE_') && v !== undefined) env[k] = v;
  return { ...env, ...extra };
}

export function runCli(args: string[], env: Record<string, string>, timeoutMs = 30_000): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], { cwd: ROOT, env: cleanEnv(env) });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`relaygate ${args.join(' ')} did not finish in ${timeoutMs} ms`));
    }, timeoutMs);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

export function writeConfig(dir: string, config: unknown): string {
  const file = path.join(dir, 'config.json');
  fs.writeFileSync(file, JSON.stringify(config));
  return file;
}

export interface GatewayChild {
  proc: ChildProcess;
  smtpPort: number;
  httpPort: number;
  log: string[];
  exited: Promise<number | null>;
}

/** Starts `relaygate start` and resolves once it logs that it is ready. */
export function startChild(env: Record<string, string>, timeoutMs = 30_000): Promise<GatewayChild> {
  return new Promise((resolve, reject) => {
    const proc = spawn(process.execPath, [BIN, 'start'], { cwd: ROOT, env: cleanEnv(env) });
    const log: string[] = [];
    let buf = '';
    let errBuf = '';
    const exited = new Promise<number | null>((r) => proc.on('exit', (code) => r(code)));
    const timer = setTimeout(() => {
      proc.kill('SIGKILL');
      reject(new Error(`gateway did not become ready in ${timeoutMs} ms:\n${log.join('\n')}\n${errBuf}`));
    }, timeoutMs);
    proc.stderr!.on('data', (d) => (errBuf += d));
    proc.stdout!.on('data', (d) => {
      buf += d;
      let nl;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        log.push(line);
        try {
          const j = JSON.parse(line) as { smtpPort?: number; httpPort?: number; msg?: string };
          if (j.msg?.startsWith('relaygate ready') && j.smtpPort && j.httpPort) {
            clearTimeout(timer);
            resolve({ proc, smtpPort: j.smtpPort, httpPort: j.httpPort, log, exited });
          }
        } catch {
          // not JSON: keep it in the log
        }
      }
    });
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`gateway exited (${code}) before ready:\n${log.join('\n')}\n${errBuf}`));
    });
  });
}
