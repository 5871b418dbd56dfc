/**
 * Response and parameter helpers shared by the route modules.
 *
 * @module
 */
import type { Context } from "hono";
import { HaError, toHaError } from "../errors/mod.ts";
import type { Database, Engine } from "../engine/mod.ts";
import { statusOf } from "./errors.ts";
import { stringifyJson } from "./json.ts";

/** Sends `{"error": ...}` with the status of the error's code. */
export function errorResponse(e: unknown): Response {
  const h = toHaError(e);
  return json({ error: h.message }, statusOf(h.code));
}

/**
 * A JSON response with exact values: what Hono's `c.body(text, status, {content-type})` makes
 * (with no header set on the context before), without a context.
 */
export function json(value: unknown, status = 200): Response {
  return new Response(stringifyJson(value), {
    status,
    headers: { "content-type": "application/json" },
  });
}

/** The database a route names with `/databases/:id/...`, else the default one. */
export function dbOf(engine: Engine, c: Context): Database {
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
}
