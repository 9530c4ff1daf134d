// The relaygate command line. Data commands open dataDir themselves (same config
// and RELAYGATE_* variables as the gateway), so they work whether or not a
// gateway is running; SQLite WAL lets both share the file, and the gateway reads
// tenants from the database on every use, so changes apply without a restart.
import { Command, InvalidArgumentError, Option } from 'commander';
import { loadConfig, redactConfig } from '../config/load.js';
import type { GlobalOptions } from './context.js';
import { failAndExit, printJson } from './output.js';
import { registerDataCommands } from './data-commands.js';
import { runStart } from './start.js';

const port = (v: string) => {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0 || n > 65535) throw new InvalidArgumentError('must be a port number 0-65535');
  return n;
};

function buildProgram(): Command {
  const program = new Command('relaygate')
    .description('Self-hosted SMTP relay and tracking gateway')
    .option('-c, --config <path>', 'config file (default: gateway.config.ts; env RELAYGATE_CONFIG)')
    .showHelpAfterError()
    .configureOutput({ outputError: (str, write) => write(str) });

  program
    .command('start')
    .description('run the gateway: SMTP listener, delivery worker, HTTP server')
    .addOption(new Option('--smtp-port <port>', 'SMTP submission port').argParser(port))
    .addOption(new Option('--http-port <port>', 'HTTP port').argParser(port))
    .option('--data-dir <dir>', 'data directory')
    .action(async (o: { smtpPort?: number; httpPort?: number; dataDir?: string }) => {
      const overrides: Record<string, unknown> = {};
      if (o.smtpPort !== undefined) overrides.smtp = { port: o.smtpPort };
      if (o.httpPort !== undefined) overrides.http = { port: o.httpPort };
      if (o.dataDir !== undefined) overrides.dataDir = o.dataDir;
      await runStart(program.opts<GlobalOptions>().config, overrides);
    });

  program
    .command('print-config')
    .description('show the effective configuration, secrets redacted')
    .option('--json', 'print JSON (the default; kept for symmetry)')
    .action(async () => {
      const config = await loadConfig({ configPath: program.opts<GlobalOptions>().config });
      printJson(redactConfig(config));
    });

  registerDataCommands(program);
  return program;
}

export async function main(argv: string[]): Promise<void> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv);
  } catch (e) {
    failAndExit(e);
  }
}

await main(process.argv);
