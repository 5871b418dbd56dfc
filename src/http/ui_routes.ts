/**
 * `GET /ui`: the dashboard, one static page served by the node (files in `http/ui/`, read once;
 * `scripts/compile.sh` includes them in the binary). The page and its assets carry no data and
 * are served without the token; the page asks for it and sends it as a Bearer header to the API,
 * same-origin, with JSON bodies, as the guards require. A strict Content-Security-Policy allows
 * only the node's own script, style and API.
 *
 * @module
 */
import { Hono } from "hono";
import type { Context } from "hono";

const CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "connect-src 'self'",
  "img-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join("; ");

const ASSETS: Record<string, string> = {
  "index.html": "text/html; charset=utf-8",
  "app.js": "text/javascript; charset=utf-8",
  "app.css": "text/css; charset=utf-8",
};

/** The dashboard's routes. */
export function uiRoutes(): Hono {
  const files = new Map<string, string>();
  for (const name of Object.keys(ASSETS)) {
    files.set(name, Deno.readTextFileSync(new URL(`./ui/${name}`, import.meta.url)));
  }
  const app = new Hono();
  const serve = (name: string) => (c: Context) =>
    c.body(files.get(name)!, 200, {
      "content-type": ASSETS[name],
      "content-security-policy": CSP,
      "x-content-type-options": "nosniff",
      "referrer-policy": "no-referrer",
      "cache-control": "no-cache",
    });
  app.get("/ui", serve("index.html"));
  app.get("/ui/", serve("index.html"));
  app.get("/ui/app.js", serve("app.js"));
  app.get("/ui/app.css", serve("app.css"));
  return app;
}
