/**
 * `GET /metrics` (Prometheus text format) and the middleware that counts every request by
 * route pattern and status code.
 *
 * @module
 */
import { Hono } from "hono";
import type { MiddlewareHandler } from "hono";
import { routePath } from "hono/route";

/** What the route and the middleware need (`HaMetrics` satisfies it). */
export interface MetricsApi {
  /** Counts one answered request. */
  request(route: string, code: number, seconds: number): void;
  registry: { expose(): Promise<string> };
}

const TEXT = "text/plain; version=0.0.4; charset=utf-8";

/** Counts each request under its matched route pattern (bounded label values). */
export function countRequests(m: MetricsApi): MiddlewareHandler {
  return async (c, next) => {
    const t0 = performance.now();
    await next();
    // The last matched pattern: the route itself, also when a guard answered (401); "*" = none.
    m.request(routePath(c, -1) || "*", c.res.status, (performance.now() - t0) / 1000);
  };
}

/** The `/metrics` route. */
export function metricsRoute(m: MetricsApi): Hono {
  const app = new Hono();
  app.get("/metrics", async (c) => c.body(await m.registry.expose(), 200, { "content-type": TEXT }));
  return app;
}
