/**
 * The HTTP API routes (ha-reference §2) on Hono: queries, database list,
 * backup download, health. Thin: SQL work is the engine's.
 */
import { Hono } from "hono";
import type { Context } from "hono";
import { HaError, toHaError } from "../errors/mod.ts";
import type { Database, Engine } from "../engine/mod.ts";
import type { Logger } from "../log/mod.ts";
import { BodyTimeout, readBody } from "./body.ts";
import { statusOf } from "./errors.ts";
import { decodeQueryRequest, encodeResult, parseJson, stringifyJson } from "./json.ts";

/** Extra routes other parts of a node mount (replications, snapshots). */
export type RouteExtension = (
  app: Hono,
  ctx: { engine: Engine; dbOf: (c: Context) => Database },
) => void;

/** What the routes need. */
export interface RoutesOptions {
  engine: Engine;
  logger: Logger;
  /** `--token`: required on every route but the health probes. */
  token: string | null;
  /** `--max-body-size` in bytes. */
  maxBodyBytes: number;
  /** `--http-body-timeout` in ms (default 60 s). */
  bodyTimeoutMs?: number;
  /** Readiness: resolves to problems (empty = ready). */
  readiness: () => Promise<string[]> | string[];
  extensions?: RouteExtension[];
}

/** What the server hands each request besides the request itself. */
export interface RouteEnv {
  /** Aborted when the client's connection ends (`front.ts`): its statement stops. */
  clientGone?: AbortSignal;
}

/** Sends `{"error": ...}` with the status of the error's code. */
export function errorResponse(c: Context, e: unknown): Response {
  const h = toHaError(e);
  return c.body(stringifyJson({ error: h.message }), statusOf(h.code) as 400, {
    "content-type": "application/json",
  });
}

/** JSON response with exact values. */
export function jsonResponse(c: Context, value: unknown, status = 200): Response {
  return c.body(stringifyJson(value), status as 200, { "content-type": "application/json" });
}

/** Builds the Hono app. */
export function buildApp(opts: RoutesOptions): Hono {
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

  app.get("/healthz", (c) => jsonResponse(c, { status: "ok" }));
  app.get("/readyz", async (c) => {
    const problems = await opts.readiness();
    return jsonResponse(
      c,
      problems.length ? { status: "not ready", problems } : { status: "ready" },
      problems.length ? 503 : 200,
    );
  });

  // A browser sends Origin on every cross-site POST/DELETE; ha's API is not for web pages.
  app.use("*", async (c, next) => {
    const origin = c.req.header("origin");
    if (origin !== undefined && !SAFE_METHODS.has(c.req.method) && !sameOrigin(origin, c)) {
      return c.body(stringifyJson({ error: `cross-origin ${c.req.method} refused` }), 403, {
        "content-type": "application/json",
      });
    }
    await next();
  });

  if (opts.token) {
    const token = opts.token;
    app.use("*", async (c, next) => {
      const h = c.req.header("authorization") ?? "";
      const bearer = /^bearer\s+(.*)$/is.exec(h);
      const given = (bearer ? bearer[1] : h).trim();
      if (!timingSafeEqual(given, token)) {
        return errorResponse(
          c,
          new HaError(
            "unauthorized",
            h ? "invalid token" : "missing token: send Authorization: Bearer <token>",
          ),
        );
      }
      await next();
    });
  }

  const dbOf = (c: Context): Database => {
    if (c.req.param("id") === undefined) return engine.defaultDb;
    // Hono leaves undecodable escapes as they are: decode the raw segment ourselves.
    const raw = new URL(c.req.url).pathname.split("/")[2] ?? "";
    let id: string;
    try {
      id = decodeURIComponent(raw);
    } catch {
      throw new HaError("bad_request", `invalid percent-encoding in database id "${raw}"`);
    }
    return engine.get(id);
  };

  const query = async (c: Context) => {
    const type = (c.req.header("content-type") ?? "").split(";")[0].trim().toLowerCase();
    if (type !== "application/json") {
      // Only JSON: a web page cannot send it cross-site without a CORS preflight (CSRF).
      return c.body(
        stringifyJson({
          error: `Content-Type must be application/json (got ${type ? `"${type}"` : "none"})`,
        }),
        415,
        { "content-type": "application/json" },
      );
    }
    const db = dbOf(c);
    let text: string;
    try {
      text = await readBody(c.req.raw, opts.maxBodyBytes, opts.bodyTimeoutMs ?? 60_000);
    } catch (e) {
      if (!(e instanceof BodyTimeout)) throw e;
      return c.body(stringifyJson({ error: e.message }), 408, {
        "content-type": "application/json",
        connection: "close",
      });
    }
    let body: unknown;
    try {
      body = parseJson(text);
    } catch (e) {
      throw new HaError("bad_request", `invalid JSON: ${(e as Error).message}`);
    }
    const req = decodeQueryRequest(body);
    // A client that goes away stops its statement. Not `request.signal`: Deno also aborts it
    // after every successful response (and warns about that legacy behaviour).
    const signal = (c.env as RouteEnv | undefined)?.clientGone;
    const results = await db.execute(req.statements, { signal });
    const encoded = results.map(encodeResult);
    return jsonResponse(c, req.array ? { results: encoded } : encoded[0]);
  };
  app.post("/", query);
  app.post("/query", query);
  app.post("/databases/:id", query);
  app.post("/databases/:id/query", query);

  app.get("/databases", (c) => jsonResponse(c, { databases: engine.ids() }));

  const download = async (c: Context) => {
    const db = dbOf(c);
    const dir = await Deno.makeTempDir({ prefix: "ha-download-" });
    const path = `${dir}/${db.id}`;
    const cleanup = () => Deno.remove(dir, { recursive: true }).catch(() => {});
    try {
      await db.backupTo(path);
      const file = await Deno.open(path, { read: true });
      const size = (await file.stat()).size;
      // The file is unlinked once opened; the open handle keeps the data readable.
      await cleanup();
      return c.body(file.readable, 200, {
        "content-type": "application/vnd.sqlite3",
        "content-length": String(size),
        "content-disposition": `attachment; filename="${downloadName(db.id)}"`,
      });
    } catch (e) {
      await cleanup();
      throw e;
    }
  };
  app.get("/download", download);
  app.get("/databases/:id/download", download);

  for (const ext of opts.extensions ?? []) ext(app, { engine, dbOf });
  return app;
}

/** `<id>-<UTC timestamp>.db`, e.g. `ha.db-20261126T065411Z.db`. */
export function downloadName(id: string, now = new Date()): string {
  const ts = now.toISOString().replace(/[-:]/g, "").replace(/\.\d+Z$/, "Z");
  return `${id}-${ts}.db`.replace(/["\\\r\n]/g, "_");
}

const SAFE_METHODS = new Set(["GET", "HEAD", "OPTIONS"]);

/** Whether an Origin header names the host the request was sent to. */
function sameOrigin(origin: string, c: Context): boolean {
  try {
    return new URL(origin).host === (c.req.header("host") ?? new URL(c.req.url).host);
  } catch {
    return false;
  }
}

function timingSafeEqual(a: string, b: string): boolean {
  const x = new TextEncoder().encode(a);
  const y = new TextEncoder().encode(b);
  let diff = x.length ^ y.length;
  for (let i = 0; i < Math.max(x.length, y.length); i++) diff |= (x[i] ?? 0) ^ (y[i] ?? 0);
  return diff === 0;
}
