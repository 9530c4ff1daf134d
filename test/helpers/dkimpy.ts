// dkimpy (python3-dkim) as an independent DKIM verifier for tests. It must be
// the Debian /usr/bin/python3: the pyenv python3 on PATH has no `dkim` module.
import { execFile, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const PYTHON = '/usr/bin/python3';
const SCRIPT = fileURLToPath(new URL('./dkimpy-verify.py', import.meta.url));

function run(cmd: string, args: string[], input: Buffer | null, timeoutMs: number) {
  return new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'], timeout: timeoutMs });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
    child.stdin.end(input ?? undefined);
  });
}

const hasDkim = async () =>
  (await run(PYTHON, ['-c', 'import dkim, nacl'], null, 20_000).catch(() => ({ code: 1 }))).code === 0;

let ready: Promise<void> | null = null;

/** Make sure dkimpy is importable; installs python3-dkim once via apt if not. */
export function ensureDkimpy(): Promise<void> {
  ready ??= (async () => {
    if (await hasDkim()) return;
    // CI runs as root with apt reachable; a fresh machine lacks the package.
    // Try without `apt-get update` first (fast when lists are present).
    const apt = (args: string[]) =>
      new Promise<string>((resolve) => {
        execFile('apt-get', args, { timeout: 240_000, env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } }, (err, _o, stderr) =>
          resolve(err ? `${err.message}\n${stderr}` : ''),
        );
      });
    const pkgs = ['install', '-y', 'python3-dkim', 'python3-nacl'];
    let install = await apt(pkgs);
    if (install) {
      const update = await apt(['update']);
      install = (await apt(pkgs)) && `${update}\n${install}`;
    }
    if (!(await hasDkim())) {
      throw new Error(`dkimpy unavailable: ${PYTHON} cannot import dkim/nacl and apt-get install python3-dkim failed: ${install}`);
    }
  })();
  return ready;
}

export interface DkimpyResult {
  ok: boolean;
  error: string | null;
}

/** One result per DKIM-Signature header, topmost first. `records`: DNS name → TXT value. */
export async function dkimpyVerifyEach(message: Buffer, records: Record<string, string>): Promise<DkimpyResult[]> {
  await ensureDkimpy();
  const r = await run(PYTHON, [SCRIPT, JSON.stringify(records)], message, 20_000);
  if (r.code !== 0) throw new Error(`dkimpy-verify.py exited ${r.code}: ${r.stderr}`);
  return JSON.parse(r.stdout) as DkimpyResult[];
}

/** True when the message carries at least one signature and dkimpy accepts all of them. */
export async function dkimpyVerify(message: Buffer, records: Record<string, string>): Promise<boolean> {
  const results = await dkimpyVerifyEach(message, records);
  return results.length > 0 && results.every((r) => r.ok);
}
