/**
 * The HTTP JSON API over the engine, with the replication and snapshot routes over the narrow
 * {@link ReplicationApi} and {@link SnapshotApi} (no domain folder imports `http/`).
 *
 * @example
 * ```ts
 * const http = new HttpServer({ engine, logger, port: 8080, token: null, maxBodyBytes: 32 << 20, readiness: () => [] });
 * await http.start();
 * ```
 */
export { HttpServer, type HttpServerOptions } from "./server.ts";
export { type AppOptions, buildApp } from "./app.ts";
export { downloadName } from "./download_route.ts";
export { type ReplicationApi } from "./replication_routes.ts";
export { type MetricsApi } from "./metrics_route.ts";
export { type SnapshotApi, snapshotFileName } from "./snapshot_routes.ts";
export { errorResponse, json } from "./respond.ts";
export { decodeBase64, encodeBase64, encodeValue, parseJson, stringifyJson } from "./json.ts";
export { statusOf } from "./errors.ts";
