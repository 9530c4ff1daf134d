// How CLI commands print: one JSON document with --json, otherwise short
// human-readable text. Errors go to stderr as one line and exit 1.
import { isGatewayError } from '../errors.js';
import { ConfigError } from '../config/load.js';

export function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

export function printLines(lines: string[]): void {
  process.stdout.write(lines.length ? `${lines.join('\n')}\n` : '');
}

/** A plain table: columns padded to their widest cell. */
export function table(headers: string[], rows: (string | number | null | undefined)[][]): string[] {
  const cells = [headers, ...rows.map((r) => r.map((c) => (c === null || c === undefined ? '-' : String(c))))];
  const widths = headers.map((_, i) => Math.max(...cells.map((r) => r[i].length)));
  return cells.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]))).join('  '));
}

export function failAndExit(e: unknown): never {
  if (e instanceof ConfigError) {
    process.stderr.write(`relaygate: ${e.message}\n`);
  } else if (isGatewayError(e)) {
    process.stderr.write(`relaygate: ${e.message}\n`);
  } else {
    process.stderr.write(`relaygate: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
  }
  process.exit(1);
}
