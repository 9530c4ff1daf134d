// Per-key rate limit (SPEC §8, config http.rateLimit requests/second). Every
// API response carries X-RateLimit-*; requests without a valid key are
// counted per client IP, so guessing keys is throttled too.
import type { MiddlewareHandler } from 'hono';
import { RateLimiterMemory, RateLimiterRes } from 'rate-limiter-flexible';
import type { Config } from '../config/schema.js';
import { clientIp } from '../tracking/routes.js';
import type { ApiEnv } from './env.js';
import { errorBody } from './errors.js';

export function rateLimit(config: Config, clock: () => number = Date.now): MiddlewareHandler<ApiEnv> {
  const limit = config.http.rateLimit;
  const limiter = new RateLimiterMemory({ points: limit, duration: 1 });
  return async (c, next) => {
    const id = c.get('apiKey')?.id ?? `ip:${clientIp(c, config.http.trustedProxies) || 'unknown'}`;
    let res: RateLimiterRes;
    let limited = false;
    try {
      res = await limiter.consume(id, 1);
    } catch (e) {
      if (!(e instanceof RateLimiterRes)) throw e;
      res = e;
      limited = true;
    }
    const headers: Record<string, string> = {
      'X-RateLimit-Limit': String(limit),
      'X-RateLimit-Remaining': String(Math.max(0, res.remainingPoints)),
      'X-RateLimit-Reset': String(Math.ceil((clock() + res.msBeforeNext) / 1000)),
    };
    if (limited) {
      const retry = Math.max(1, Math.ceil(res.msBeforeNext / 1000));
      return c.json(errorBody('rate_limited', `Rate limit of ${limit} requests per second exceeded; retry in ${retry} s`), 429, {
        ...headers,
        'Retry-After': String(retry),
      });
    }
    await next();
    for (const [k, v] of Object.entries(headers)) c.res.headers.set(k, v);
  };
}
