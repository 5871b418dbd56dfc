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
import { crossOriginRefusal, sameOriginOnly, tokenAuth, tokenRefusal } from "./guards.ts";
import { countRequests, type MetricsApi, metricsRoute } from "./metrics_route.ts";
import { queryHandler, type QueryLimits, queryRoutes } from "./query_routes.ts";
import { type ReplicationApi, replicationRoutes } from "./replication_routes.ts";
import { errorResponse, json } from "./respond.ts";
import { uiRoutes } from "./ui_routes.ts";
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
  /** Request counting and `GET /metrics`, when given. */
  metrics?: MetricsApi | null;
}

/** Builds the Hono app. */
export function buildApp(opts: AppOptions): Hono {
  const { engine, logger } = opts;
  const app = new Hono();

  app.onError((err, c) => failed(logger, c.req.path, err));
  app.notFound((c) =>
    errorResponse(new HaError("not_found", `no route for ${c.req.method} ${c.req.path}`))
  );

  if (opts.metrics) app.use("*", countRequests(opts.metrics));
  // Before the guards: probes answer without a token.
  app.get("/healthz", () => json({ status: "ok" }));
  app.get("/readyz", async () => {
    const problems = await opts.readiness();
    return json(
      problems.length ? { status: "not ready", problems } : { status: "ready" },
      problems.length ? 503 : 200,
    );
  });

  // The dashboard's static files hold no data: the page asks for the token itself.
  app.route("/", uiRoutes());

  app.use("*", sameOriginOnly());
  if (opts.token) app.use("*", tokenAuth(opts.token));

  app.route("/", queryRoutes(engine, opts));
  app.route("/", downloadRoute(engine));
  if (opts.replication) app.route("/", replicationRoutes(opts.replication));
  if (opts.snapshots) app.route("/", snapshotRoutes(engine, opts.snapshots));
  if (opts.metrics) app.route("/", metricsRoute(opts.metrics));
  return app;
}

/** The answer to a request whose handler threw `err` (Hono's `onError`). */
function failed(logger: Logger, path: string, err: unknown): Response {
  const h = toHaError(err);
  if (h.code === "internal") logger.error("request failed", { path, error: h.message });
  return errorResponse(h);
}

/**
 * The HTTP handler: the app of {@link buildApp}, with a direct path for the hot routes
 * `POST /` and `POST /query` that does what the app does for them — request metrics under the
 * route pattern, the cross-origin and token guards, the query, errors as `onError` answers them —
 * without Hono's routing, context and middleware chain (~10 % of a point read's main thread).
 */
export function buildFetch(opts: AppOptions): (req: Request) => Response | Promise<Response> {
  const app = buildApp(opts);
  const { engine, logger, token } = opts;
  const metrics = opts.metrics ?? null;
  const query = queryHandler(opts);
  const defaultDb = () => engine.defaultDb;
  const fast = async (req: Request, path: string): Promise<Response> => {
    const t0 = metrics ? performance.now() : 0;
    let res: Response;
    try {
      res = crossOriginRefusal(req) ?? (token ? tokenRefusal(req, token) : null) ??
        await query(req, defaultDb);
    } catch (err) {
      // As Hono: only an Error goes to `onError`; anything else propagates uncounted.
      if (!(err instanceof Error)) throw err;
      res = failed(logger, path, err);
    }
    metrics?.request(path, res.status, (performance.now() - t0) / 1000);
    return res;
  };
  return (req) => {
    if (req.method === "POST") {
      const path = plainPath(req.url);
      if (path === "/" || path === "/query") return fast(req, path);
    }
    return app.fetch(req);
  };
}

/**
 * The path of a request URL as Hono's `getPath` reads it (up to `?` or `#`), or null when it
 * has a percent-escape (Hono decodes those: such requests take the app's way).
 */
function plainPath(url: string): string | null {
  const start = url.indexOf("/", url.indexOf(":") + 4);
  let i = start;
  for (; i < url.length; i++) {
    const ch = url.charCodeAt(i);
    if (ch === 37) return null; // %
    if (ch === 63 || ch === 35) break; // ? #
  }
  return url.slice(start, i);
}
