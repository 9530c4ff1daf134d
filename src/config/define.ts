import type { ConfigInput } from './schema.js';

/** Identity function: gives gateway.config.ts type checking and completion. */
export function defineConfig(config: ConfigInput): ConfigInput {
  return config;
}
export type { ConfigInput, Config } from './schema.js';
