/**
 * `GET /metrics` (Prometheus text format) and the middleware that counts every request by
 * route pattern and status code.
 *
 * @module
 */
import { Hono } from "hono";
import type { MiddlewareHandler } from "hono";
import { matchedRoutes } from "hono/route";

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
    m.request(routeOf(matchedRoutes(c)), c.res.status, (performance.now() - t0) / 1000);
  };
}

/**
 * The pattern of the route a request matched (middleware match every path with method ALL),
 * also when a guard answered before it (401); "*" when no route matched (404).
 */
function routeOf(matched: { method: string; path: string }[]): string {
  for (let i = matched.length - 1; i >= 0; i--) {
    if (matched[i].method !== "ALL") return matched[i].path;
  }
  return "*";
}

/** The `/metrics` route. */
export function metricsRoute(m: MetricsApi): Hono {
  const app = new Hono();
  app.get(
    "/metrics",
    async (c) => c.body(await m.registry.expose(), 200, { "content-type": TEXT }),
  );
  return app;
}
