#!/usr/bin/env node
// Runs the TypeScript sources directly through tsx. Both loaders are needed:
// gateway.config.ts may be imported from either module system.
import { register as registerCjs } from 'tsx/cjs/api';
import { register as registerEsm } from 'tsx/esm/api';

registerCjs();
registerEsm();
await import('../src/cli/index.ts');
