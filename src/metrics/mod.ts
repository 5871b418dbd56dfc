/**
 * Prometheus metrics: a small registry with text exposition ({@link Registry}) and the node's
 * metrics ({@link HaMetrics}). Served by `GET /metrics` (in `http/`).
 *
 * @example
 * ```ts
 * const metrics = new HaMetrics();
 * metrics.watch({ natsConnected: () => true });
 * metrics.request("/query", 200, 0.002);
 * const text = await metrics.registry.expose();
 * ```
 *
 * @module
 */
export { HaMetrics, type MetricSources, type ReplicationCounts } from "./ha.ts";
export { Counter, EXPOSITION_TYPE, Gauge, Histogram, Registry } from "./registry.ts";
