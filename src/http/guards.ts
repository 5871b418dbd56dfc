/**
 * Middleware every route but the health probes passes: the cross-origin refusal and the
 * `--token` check.
 *
 * @module
 */
import type { MiddlewareHandler } from "hono";
import { HaError } from "../errors/mod.ts";
import { errorResponse, json } from "./respond.ts";

const SAFE_METHODS = new Set(["GET", "HEAD", "OPTIONS"]);

/**
 * Refuses a cross-origin POST/DELETE: a browser sends Origin on every one, and ha's API is not
 * for web pages.
 */
export function sameOriginOnly(): MiddlewareHandler {
  return async (c, next) => {
    const refused = crossOriginRefusal(c.req.raw);
    if (refused) return refused;
    await next();
  };
}

/** The 403 for a cross-origin POST/DELETE, else null (see {@link sameOriginOnly}). */
export function crossOriginRefusal(req: Request): Response | null {
  const origin = req.headers.get("origin");
  if (origin !== null && !SAFE_METHODS.has(req.method) && !sameOrigin(origin, req)) {
    return json({ error: `cross-origin ${req.method} refused` }, 403);
  }
  return null;
}

/** Requires `Authorization: Bearer <token>` (or the bare token), compared in constant time. */
export function tokenAuth(token: string): MiddlewareHandler {
  return async (c, next) => {
    const refused = tokenRefusal(c.req.raw, token);
    if (refused) return refused;
    await next();
  };
}

/** The 401 of a request without `token`, else null (see {@link tokenAuth}). */
export function tokenRefusal(req: Request, token: string): Response | null {
  const h = req.headers.get("authorization") ?? "";
  const bearer = /^bearer\s+(.*)$/is.exec(h);
  const given = (bearer ? bearer[1] : h).trim();
  if (!timingSafeEqual(given, token)) {
    return errorResponse(
      new HaError(
        "unauthorized",
        h ? "invalid token" : "missing token: send Authorization: Bearer <token>",
      ),
    );
  }
  return null;
}

/** Whether an Origin header names the host the request was sent to. */
function sameOrigin(origin: string, req: Request): boolean {
  try {
    return new URL(origin).host === (req.headers.get("host") ?? new URL(req.url).host);
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
