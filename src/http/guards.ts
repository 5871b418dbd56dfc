/**
 * Middleware every route but the health probes passes: the cross-origin refusal and the
 * `--token` check.
 *
 * @module
 */
import type { Context, MiddlewareHandler } from "hono";
import { HaError } from "../errors/mod.ts";
import { stringifyJson } from "./json.ts";
import { errorResponse } from "./respond.ts";

const SAFE_METHODS = new Set(["GET", "HEAD", "OPTIONS"]);

/**
 * Refuses a cross-origin POST/DELETE: a browser sends Origin on every one, and ha's API is not
 * for web pages.
 */
export function sameOriginOnly(): MiddlewareHandler {
  return async (c, next) => {
    const origin = c.req.header("origin");
    if (origin !== undefined && !SAFE_METHODS.has(c.req.method) && !sameOrigin(origin, c)) {
      return c.body(stringifyJson({ error: `cross-origin ${c.req.method} refused` }), 403, {
        "content-type": "application/json",
      });
    }
    await next();
  };
}

/** Requires `Authorization: Bearer <token>` (or the bare token), compared in constant time. */
export function tokenAuth(token: string): MiddlewareHandler {
  return async (c, next) => {
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
  };
}

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
