// Messages between the gateway (main thread) and its delivery thread, and the
// log-record forwarding both sides share. Plain data only: structured clone.
import type { Config } from '../config/schema.js';

export interface DeliveryThreadData {
  config: Config;
  /** The main store's account of unsynced commits (Store.syncShared). */
  sync: SharedArrayBuffer;
  logLevel: string;
}

export type ToThread = { t: 'wake' } | { t: 'stop'; graceMs: number };

export type FromThread =
  | { t: 'ready' }
  | { t: 'failed'; error: PlainError }
  | { t: 'log'; level: number; bindings: Record<string, unknown>; args: unknown[] }
  | { t: 'outcome'; result: string; bounceClass: string; latencySeconds?: number }
  | { t: 'active'; n: number }
  | { t: 'stopped' };

export interface PlainError {
  __error: true;
  type: string;
  message: string;
  stack?: string;
  props: Record<string, unknown>;
}

const isError = (v: unknown): v is Error => v instanceof Error;

export function plainError(e: unknown): PlainError {
  if (!isError(e)) return { __error: true, type: 'Error', message: String(e), props: {} };
  const props: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(e)) props[k] = isError(v) ? plainError(v) : v;
  return { __error: true, type: e.name, message: e.message, stack: e.stack, props };
}

/** Applies `convert` to the arguments of a log call that `is` matches, and to their top-level fields. */
function mapLogArgs<T>(args: unknown[], is: (v: unknown) => v is T, convert: (v: T) => unknown): unknown[] {
  return args.map((a) => {
    if (is(a)) return convert(a);
    if (!a || typeof a !== 'object' || Array.isArray(a)) return a;
    return Object.fromEntries(Object.entries(a).map(([k, v]) => [k, is(v) ? convert(v) : v]));
  });
}

/** Log call arguments made cloneable: errors keep their type, message, stack and own fields. */
export const plainArgs = (args: unknown[]): unknown[] => mapLogArgs(args, isError, plainError);

const isPlainError = (v: unknown): v is PlainError => !!v && typeof v === 'object' && (v as PlainError).__error === true;

export function revivedError(p: PlainError): Error {
  const e = new Error(p.message);
  e.name = p.type;
  if (p.stack) e.stack = p.stack;
  for (const [k, v] of Object.entries(p.props)) (e as unknown as Record<string, unknown>)[k] = isPlainError(v) ? revivedError(v) : v;
  // pino names an error by its constructor; without one it takes .name (TypeError, GatewayError…).
  Object.defineProperty(e, 'constructor', { value: null });
  return e;
}

export const revivedArgs = (args: unknown[]): unknown[] => mapLogArgs(args, isPlainError, revivedError);
