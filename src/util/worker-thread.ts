// Starts a worker thread from a module next to the caller, whether the process
// runs compiled JavaScript or the TypeScript sources under tsx.
import { Worker, type WorkerOptions } from 'node:worker_threads';

/** `name` is the module's file name without extension, relative to `callerUrl` (import.meta.url). */
export function startWorkerThread(callerUrl: string, name: string, opts: WorkerOptions = {}): Worker {
  if (!callerUrl.endsWith('.ts')) return new Worker(new URL(`./${name}.js`, callerUrl), opts);
  // Node 20 does not apply the parent's `--import tsx` to a worker's entry (a .ts
  // entry fails with "Unknown file extension" even with execArgv set), so the
  // worker starts from a tiny script that registers tsx's loader first.
  const api = import.meta.resolve('tsx/esm/api');
  const entry = new URL(`./${name}.ts`, callerUrl).href;
  const code = `import(${JSON.stringify(api)}).then((m) => { m.register(); return import(${JSON.stringify(entry)}); });`;
  return new Worker(code, { ...opts, eval: true });
}
