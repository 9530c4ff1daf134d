// The per-request values API middleware hands to the routes.
import type { Logger } from 'pino';
import type { ApiKeyRow } from '../store/tenants.js';

export interface ApiEnv {
  Variables: {
    requestId: string;
    log: Logger;
    /** The key the request authenticated with; undefined when none or invalid. */
    apiKey: ApiKeyRow | undefined;
    /** Why there is no key: it was not sent, or it is not a live key. */
    authProblem: 'missing' | 'invalid' | null;
  };
}
