// The JSON API under /api/v1 (SPEC §8). Order of the middleware matters:
// request id → identify the key → rate limit (counts every request, headers
// on every response) → per route: scope check → body size → zod validation.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { Hono } from 'hono';
import { requestId } from 'hono/request-id';
import { PROJECT_ROOT } from '../config/load.js';
import type { ApiDeps } from '../http/deps.js';
import { apiKeyRoutes } from './api-keys.js';
import { identify } from './auth.js';
import { bounceRoutes } from './bounces.js';
import { domainRoutes } from './domains.js';
import type { ApiEnv } from './env.js';
import { ApiError, handleError } from './errors.js';
import { createIdempotency } from './idempotency.js';
import { messageRoutes } from './messages.js';
import { openApiDocument } from './openapi.js';
import { rateLimit } from './rate-limit.js';
import { mountRoutes, type Route } from './registry.js';
import { statsRoutes } from './stats.js';
import { suppressionRoutes } from './suppressions.js';
import { webhookRoutes } from './webhooks.js';

function packageVersion(): string {
  try {
    return (JSON.parse(readFileSync(path.join(PROJECT_ROOT, 'package.json'), 'utf8')) as { version: string }).version;
  } catch {
    return '0.0.0';
  }
}

export function apiRouteTable(deps: ApiDeps): Route[] {
  const clock = deps.clock ?? Date.now;
  return [
    ...messageRoutes(deps, createIdempotency(deps.store, clock)),
    ...statsRoutes(deps),
    ...bounceRoutes(deps),
    ...suppressionRoutes(deps),
    ...domainRoutes(deps),
    ...webhookRoutes(deps),
    ...apiKeyRoutes(deps),
  ];
}

export function createApiRoutes(deps: ApiDeps): Hono<ApiEnv> {
  const app = new Hono<ApiEnv>();
  const clock = deps.clock ?? Date.now;
  const routes = apiRouteTable(deps);
  const log = deps.logger.child({ component: 'api' });

  app.use('*', requestId({ limitLength: 128 }));
  app.use('*', async (c, next) => {
    const started = clock();
    c.set('log', log.child({ req: c.get('requestId') }));
    await next();
    c.get('log').info(
      { method: c.req.method, path: c.req.path, status: c.res.status, ms: clock() - started, key: c.get('apiKey')?.id },
      'api request',
    );
  });
  app.use('*', identify(deps.store));
  app.use('*', rateLimit(deps.config, clock));
  app.onError((err, c) => handleError(err, c, c.get('log') ?? log));

  let openapi: string | null = null;
  app.get('/openapi.json', (c) => {
    openapi ??= JSON.stringify(openApiDocument(routes, { version: packageVersion(), serverUrl: new URL('/api/v1', deps.config.http.publicUrl).href }));
    return c.body(openapi, 200, { 'Content-Type': 'application/json; charset=utf-8' });
  });
  mountRoutes(app, routes, deps.config.http.maxBodySize);
  app.all('*', (c) => {
    throw new ApiError(404, 'not_found', `No API route ${c.req.method} ${c.req.path}`);
  });
  return app;
}
