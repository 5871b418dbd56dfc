/**
 * The query routes (ha-reference §2): `POST /`, `/query`, `/databases/{id}`,
 * `/databases/{id}/query`, and `GET /databases`. Thin: SQL work is the engine's.
 *
 * @module
 */
import { Hono } from "hono";
import type { Context } from "hono";
import { HaError } from "../errors/mod.ts";
import type { Engine } from "../engine/mod.ts";
import { BodyTimeout, readBody } from "./body.ts";
import { decodeQueryRequest, encodeResult, parseJson, stringifyJson } from "./json.ts";
import { dbOf, jsonResponse } from "./respond.ts";

/** Limits of a query request. */
export interface QueryLimits {
  /** `--max-body-size` in bytes. */
  maxBodyBytes: number;
  /** `--http-body-timeout` in ms (default 60 s). */
  bodyTimeoutMs?: number;
}

/** The query routes over `engine`. */
export function queryRoutes(engine: Engine, limits: QueryLimits): Hono {
  const app = new Hono();
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
    const db = dbOf(engine, c);
    let text: string;
    try {
      text = await readBody(c.req.raw, limits.maxBodyBytes, limits.bodyTimeoutMs ?? 60_000);
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
    // A client that goes away stops its statement (deno.json opts out of Deno's legacy abort of
    // `request.signal` after every response, and of the warning about it).
    const results = await db.execute(req.statements, { signal: c.req.raw.signal });
    const encoded = results.map(encodeResult);
    return jsonResponse(c, req.array ? { results: encoded } : encoded[0]);
  };
  app.post("/", query);
  app.post("/query", query);
  app.post("/databases/:id", query);
  app.post("/databases/:id/query", query);

  app.get("/databases", (c) => jsonResponse(c, { databases: engine.ids() }));
  return app;
}
