/**
 * The query routes (ha-reference §2): `POST /`, `/query`, `/databases/{id}`,
 * `/databases/{id}/query`, and `GET /databases`. Thin: SQL work is the engine's.
 *
 * @module
 */
import { Hono } from "hono";
import type { Context } from "hono";
import { HaError } from "../errors/mod.ts";
import type { Database, Engine } from "../engine/mod.ts";
import { BodyTimeout, readBody } from "./body.ts";
import { decodeQueryRequest, encodeResult, parseJson, stringifyJson } from "./json.ts";
import { dbOf, json } from "./respond.ts";

/** Limits of a query request. */
export interface QueryLimits {
  /** `--max-body-size` in bytes. */
  maxBodyBytes: number;
  /** `--http-body-timeout` in ms (default 60 s). */
  bodyTimeoutMs?: number;
}

/**
 * Answers one query request: `db` names its database (called after the Content-Type check, so
 * a wrong type is 415 before an unknown database is 404). Errors other than a body timeout are
 * thrown for the caller's error handler.
 */
export type QueryHandler = (req: Request, db: () => Database) => Promise<Response>;

/** The query handler over `limits` (shared by the Hono routes and the fast path of `app.ts`). */
export function queryHandler(limits: QueryLimits): QueryHandler {
  const maxBody = limits.maxBodyBytes;
  const bodyTimeout = limits.bodyTimeoutMs ?? 60_000;
  return async (raw, dbOf) => {
    const type = contentTypeOf(raw.headers.get("content-type"));
    if (type !== "application/json") {
      // Only JSON: a web page cannot send it cross-site without a CORS preflight (CSRF).
      return json(
        {
          error: `Content-Type must be application/json (got ${type ? `"${type}"` : "none"})`,
        },
        415,
      );
    }
    const db = dbOf();
    let text: string;
    try {
      text = await readBody(raw, maxBody, bodyTimeout);
    } catch (e) {
      if (!(e instanceof BodyTimeout)) throw e;
      return new Response(stringifyJson({ error: e.message }), {
        status: 408,
        headers: { "content-type": "application/json", connection: "close" },
      });
    }
    let body: unknown;
    try {
      body = parseJson(text);
    } catch (e) {
      throw new HaError("bad_request", `invalid JSON: ${(e as Error).message}`);
    }
    const req = decodeQueryRequest(body);
    // A client that goes away stops its statement (deno.json opts out of Deno's legacy abort of
    // `request.signal` after every response, and of the warning about it).
    const results = await db.execute(req.statements, { signal: raw.signal });
    return json(req.array ? { results: results.map(encodeResult) } : encodeResult(results[0]));
  };
}

/** The media type of a Content-Type header, lower case, without parameters. */
function contentTypeOf(h: string | null): string {
  // The usual exact value skips the split, trim and lower-casing.
  if (h === "application/json") return h;
  return (h ?? "").split(";")[0].trim().toLowerCase();
}

/** The query routes over `engine`. */
export function queryRoutes(engine: Engine, limits: QueryLimits): Hono {
  const app = new Hono();
  const handle = queryHandler(limits);
  const query = (c: Context) => handle(c.req.raw, () => dbOf(engine, c));
  app.post("/", query);
  app.post("/query", query);
  app.post("/databases/:id", query);
  app.post("/databases/:id/query", query);

  app.get("/databases", () => json({ databases: engine.ids() }));
  return app;
}
