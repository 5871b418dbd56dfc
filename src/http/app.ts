/**
 * The HTTP API (ha-reference §2) on Hono: the health probes, the guards (cross-origin refusal,
 * `--token`), then the sub-apps mounted with `app.route`: queries, download and, when the node
 * has them, replication and snapshots.
 *
 * @module
 */
import { Hono } from "hono";
import { HaError, toHaError } from "../errors/mod.ts";
import type { Engine } from "../engine/mod.ts";
import type { Logger } from "../log/mod.ts";
import { downloadRoute } from "./download_route.ts";
import { sameOriginOnly, tokenAuth } from "./guards.ts";
import { type QueryLimits, queryRoutes } from "./query_routes.ts";
import { type ReplicationApi, replicationRoutes } from "./replication_routes.ts";
import { errorResponse, jsonResponse } from "./respond.ts";
import { type SnapshotApi, snapshotRoutes } from "./snapshot_routes.ts";

/** What the app needs. */
export interface AppOptions extends QueryLimits {
  engine: Engine;
  logger: Logger;
  /** `--token`: required on every route but the health probes. */
  token: string | null;
  /** Readiness: resolves to problems (empty = ready). */
  readiness: () => Promise<string[]> | string[];
  /** The `/replications` routes, when the node replicates. */
  replication?: ReplicationApi | null;
  /** The `/snapshot` routes, when the node replicates. */
  snapshots?: SnapshotApi | null;
}

/** Builds the Hono app. */
export function buildApp(opts: AppOptions): Hono {
  const { engine, logger } = opts;
  const app = new Hono();

  app.onError((err, c) => {
    const h = toHaError(err);
    if (h.code === "internal") {
      logger.error("request failed", { path: c.req.path, error: h.message });
    }
    return errorResponse(c, h);
  });
  app.notFound((c) =>
    errorResponse(c, new HaError("not_found", `no route for ${c.req.method} ${c.req.path}`))
  );

  // Before the guards: probes answer without a token.
  app.get("/healthz", (c) => jsonResponse(c, { status: "ok" }));
  app.get("/readyz", async (c) => {
    const problems = await opts.readiness();
    return jsonResponse(
      c,
      problems.length ? { status: "not ready", problems } : { status: "ready" },
      problems.length ? 503 : 200,
    );
  });

  app.use("*", sameOriginOnly());
  if (opts.token) app.use("*", tokenAuth(opts.token));

  app.route("/", queryRoutes(engine, opts));
  app.route("/", downloadRoute(engine));
  if (opts.replication) app.route("/", replicationRoutes(opts.replication));
  if (opts.snapshots) app.route("/", snapshotRoutes(engine, opts.snapshots));
  return app;
}
