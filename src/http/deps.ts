import type { Logger } from 'pino';
import type { Config } from '../config/schema.js';
import type { DomainService } from '../domains/service.js';
import type { Metrics } from '../metrics.js';
import type { PipelineDeps } from '../pipeline/submit.js';
import type { Store } from '../store/index.js';

/** What the HTTP API needs; built once in gateway.ts. */
export interface ApiDeps {
  config: Config;
  store: Store;
  /** For POST /messages: the same accept path SMTP uses. */
  pipeline: PipelineDeps;
  domains: DomainService;
  metrics: Metrics;
  logger: Logger;
  clock?: () => number;
  /** Wakes the webhook dispatcher after a webhook is created or an event is due. */
  onWebhookChange?: () => void;
}
