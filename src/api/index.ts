// Placeholder: the HTTP API routes are being written (see issue 5).
import { Hono } from 'hono';
import type { ApiDeps } from '../http/deps.js';

export function createApiRoutes(deps: ApiDeps): Hono {
  void deps;
  return new Hono();
}
