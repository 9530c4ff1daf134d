// The HTTP surface: tracking redirects on any Host (a domain's own tracking
// host CNAMEs here), the JSON API under /api/v1, health and metrics.
import { Hono } from 'hono';
import { createApiRoutes } from '../api/index.js';
import { trackingRoutes } from '../tracking/routes.js';
import type { HitRecorder } from '../tracking/recorder.js';
import type { ApiDeps } from './deps.js';

export function createHttpApp(deps: ApiDeps & { recorder: HitRecorder; startedAt: number }): Hono {
  const app = new Hono();
  const now = deps.clock ?? Date.now;

  app.get('/healthz', (c) => {
    const db = deps.store.healthy();
    const pending = deps.store.queue.pending();
    deps.metrics.queueDepth.set(pending.count);
    return c.json(
      {
        status: db ? 'ok' : 'error',
        db: db ? 'ok' : 'error',
        queue_depth: pending.count,
        oldest_queued_age_s: pending.oldest ? Math.round((now() - pending.oldest) / 1000) : 0,
        uptime_s: Math.round((now() - deps.startedAt) / 1000),
      },
      db ? 200 : 503,
    );
  });

  app.get('/metrics', async (c) => {
    deps.metrics.queueDepth.set(deps.store.queue.pending().count);
    return c.body(await deps.metrics.registry.metrics(), 200, { 'Content-Type': deps.metrics.registry.contentType });
  });

  app.route('/', trackingRoutes({ ...deps, recorder: deps.recorder }));
  app.route('/api/v1', createApiRoutes(deps));
  return app;
}
