/**
 * The HTTP JSON API over the engine.
 *
 * @example
 * ```ts
 * const http = new HttpServer({ engine, logger, port: 8080, token: null, maxBodyBytes: 32 << 20, readiness: () => [] });
 * await http.start();
 * ```
 */
export { HttpServer, type HttpServerOptions } from "./server.ts";
export {
  buildApp,
  downloadName,
  errorResponse,
  jsonResponse,
  type RouteExtension,
  type RoutesOptions,
} from "./routes.ts";
export { decodeBase64, encodeBase64, encodeValue, parseJson, stringifyJson } from "./json.ts";
export { statusOf } from "./errors.ts";
