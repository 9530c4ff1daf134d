// What a data command needs: the effective config and an open store, closed
// again when the command is done.
import { InvalidArgumentError, type Command } from 'commander';
import { loadConfig } from '../config/load.js';
import type { Config } from '../config/schema.js';
import { createDomainService, type DomainService } from '../domains/service.js';
import { openStore, type Store } from '../store/index.js';

export interface GlobalOptions {
  config?: string;
}

export interface CliContext {
  config: Config;
  store: Store;
  domains: DomainService;
}

export async function withStore<T>(program: Command, fn: (ctx: CliContext) => Promise<T> | T): Promise<T> {
  const config = await loadConfig({ configPath: program.opts<GlobalOptions>().config });
  const store = openStore(config.dataDir);
  try {
    return await fn({ config, store, domains: createDomainService({ config, store }) });
  } finally {
    store.close();
  }
}

export const positiveInt = (name: string) => (v: string) => {
  const n = Number(v);
  if (!Number.isInteger(n) || n <= 0) throw new InvalidArgumentError(`${name} must be a positive whole number`);
  return n;
};
