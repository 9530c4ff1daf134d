// Effective configuration: schema defaults ← config file ← RELAYGATE_* env ←
// CLI flags. This is the only place that reads process.env.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { z } from 'zod';
import { configSchema, type Config } from './schema.js';

export const PROJECT_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConfigError';
  }
}

type Env = Record<string, string | undefined>;
type Plain = Record<string, unknown>;

const list = (v: string) =>
  v
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);

/** env name → [config path, parse]. Numbers stay strings: the schema coerces and names the key. */
const ENV_MAP: [string, string, (v: string) => unknown][] = [
  ['RELAYGATE_SMTP_HOST', 'smtp.host', String],
  ['RELAYGATE_SMTP_PORT', 'smtp.port', String],
  ['RELAYGATE_SMTPS_PORT', 'smtp.securePort', String],
  ['RELAYGATE_HTTP_HOST', 'http.host', String],
  ['RELAYGATE_HTTP_PORT', 'http.port', String],
  ['RELAYGATE_PUBLIC_URL', 'http.publicUrl', String],
  ['RELAYGATE_DATA_DIR', 'dataDir', String],
  ['RELAYGATE_CERTS_DIR', 'certsDir', String],
  ['RELAYGATE_HOSTNAME', 'hostname', String],
  ['RELAYGATE_DNS_SERVERS', 'dns.servers', list],
  ['RELAYGATE_MX_PORT', 'delivery.mxPort', String],
  ['RELAYGATE_RETRY_SCHEDULE', 'delivery.retrySchedule', list],
  ['RELAYGATE_MAX_AGE', 'delivery.maxAge', String],
  ['RELAYGATE_SECRET', 'tracking.secret', String],
  ['RELAYGATE_LOG_LEVEL', 'log.level', String],
];

function setPath(obj: Plain, dotted: string, value: unknown): void {
  const keys = dotted.split('.');
  let cur = obj;
  for (const k of keys.slice(0, -1)) {
    if (typeof cur[k] !== 'object' || cur[k] === null) cur[k] = {};
    cur = cur[k] as Plain;
  }
  cur[keys[keys.length - 1]] = value;
}

function deepMerge(base: Plain, over: Plain): Plain {
  const out: Plain = { ...base };
  for (const [k, v] of Object.entries(over)) {
    const b = out[k];
    if (v && typeof v === 'object' && !Array.isArray(v) && b && typeof b === 'object' && !Array.isArray(b)) {
      out[k] = deepMerge(b as Plain, v as Plain);
    } else {
      out[k] = v;
    }
  }
  return out;
}

export function envOverrides(env: Env): Plain {
  const out: Plain = {};
  for (const [name, key, parse] of ENV_MAP) {
    const v = env[name];
    if (v !== undefined && v !== '') setPath(out, key, parse(v));
  }
  return out;
}

export function configFilePath(env: Env, explicit?: string): string | null {
  const chosen = explicit ?? env.RELAYGATE_CONFIG;
  if (chosen) {
    const p = path.resolve(chosen);
    if (!fs.existsSync(p)) throw new ConfigError(`config file not found: ${p}`);
    return p;
  }
  for (const dir of [process.cwd(), PROJECT_ROOT]) {
    const p = path.join(dir, 'gateway.config.ts');
    if (fs.existsSync(p)) return p;
  }
  return null;
}

async function readConfigFile(file: string): Promise<Plain> {
  if (file.endsWith('.json')) return JSON.parse(fs.readFileSync(file, 'utf8')) as Plain;
  const mod = (await import(pathToFileURL(file).href)) as { default?: unknown };
  const value = mod.default ?? {};
  if (typeof value !== 'object' || value === null) {
    throw new ConfigError(`${file}: default export must be defineConfig({...})`);
  }
  return value as Plain;
}

/** One line naming the offending key, e.g. `smtp.port: Too big: expected number to be <=65535`. */
export function formatIssue(err: z.ZodError): string {
  const issue = err.issues[0];
  const key = issue.path.map(String).join('.') || '(root)';
  if (issue.code === 'unrecognized_keys') {
    const prefix = issue.path.length ? `${key}.` : '';
    return `unknown config key ${issue.keys.map((k) => prefix + k).join(', ')}`;
  }
  return `${key}: ${issue.message}`;
}

export function parseConfig(input: unknown, source = 'config'): Config {
  const res = configSchema.safeParse(input);
  if (!res.success) throw new ConfigError(`invalid ${source}: ${formatIssue(res.error)}`);
  const cfg = res.data;
  cfg.dataDir = path.resolve(cfg.dataDir);
  cfg.certsDir = path.resolve(cfg.certsDir);
  cfg.http.publicUrl = cfg.http.publicUrl.replace(/\/+$/, '');
  return cfg;
}

export interface LoadOptions {
  env?: Env;
  configPath?: string;
  /** Highest precedence: values from CLI flags, as a partial config object. */
  overrides?: Plain;
}

export async function loadConfig(opts: LoadOptions = {}): Promise<Config> {
  const env = opts.env ?? process.env;
  const file = configFilePath(env, opts.configPath);
  let merged: Plain = file ? await readConfigFile(file) : {};
  merged = deepMerge(merged, envOverrides(env));
  if (opts.overrides) merged = deepMerge(merged, opts.overrides);
  return parseConfig(merged, file ? `config (${path.basename(file)})` : 'config');
}

/** The effective config for print-config: secrets replaced, never printed. */
export function redactConfig(cfg: Config): unknown {
  const copy = structuredClone(cfg) as Config;
  if (copy.tracking.secret) copy.tracking.secret = '[redacted]';
  if (copy.delivery.relayHost?.auth) copy.delivery.relayHost.auth.pass = '[redacted]';
  return copy;
}
