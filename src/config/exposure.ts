/**
 * The "secure by default" rule: a listener beyond loopback needs credentials. Pure functions
 * over a {@link Config}; parsing calls {@link exposureProblem} and refuses to start on a problem.
 *
 * @example
 * ```ts
 * import { isLoopback } from "./exposure.ts";
 * isLoopback("127.0.0.1"); // true
 * isLoopback("0.0.0.0"); // false
 * ```
 * @module
 */
import type { Config } from "./types.ts";

/** True for addresses only this machine can reach: 127.0.0.0/8, ::1 and `localhost`. */
export function isLoopback(addr: string): boolean {
  const a = addr.toLowerCase().replace(/^\[(.*)\]$/, "$1");
  return a === "localhost" || a === "::1" || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(a) ||
    /^::ffff:127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(a);
}

/** The PostgreSQL password every installation knows (`--pg-pass` default). */
export const DEFAULT_PG_PASS = "ha";

/**
 * What is wrong when a listener beyond loopback has no credentials, or null. HTTP needs
 * `--token`, PostgreSQL a password other than the default, the embedded NATS server
 * `--nats-user`/`--nats-pass` (a `--nats-config` file is the user's own business).
 *
 * @example
 * ```ts
 * import { exposureProblem } from "./exposure.ts";
 * // exposureProblem({ ...config, httpAddr: "0.0.0.0", token: null })
 * // → "listening beyond loopback without credentials: set --token (HTTP on 0.0.0.0) …"
 * ```
 */
export function exposureProblem(c: Config): string | null {
  if (c.insecure) return null;
  const missing: string[] = [];
  if (!isLoopback(c.httpAddr) && c.token === null) {
    missing.push(`--token (HA_TOKEN; HTTP on --http-addr ${c.httpAddr})`);
  }
  if (
    c.pgPort !== 0 && !isLoopback(c.pgAddr) && (c.pgPass === "" || c.pgPass === DEFAULT_PG_PASS)
  ) {
    missing.push(
      `--pg-pass other than "${DEFAULT_PG_PASS}" (HA_PG_PASS; PostgreSQL on --pg-addr ${c.pgAddr})`,
    );
  }
  if (
    c.natsPort !== 0 && c.natsConfig === null && !isLoopback(c.natsAddr) && c.natsUser === null
  ) {
    missing.push(
      `--nats-user and --nats-pass (HA_NATS_USER, HA_NATS_PASS; NATS on --nats-addr ${c.natsAddr})`,
    );
  }
  if (missing.length === 0) return null;
  return `listening beyond loopback without credentials: set ${missing.join(", ")}, ` +
    "or pass --insecure (HA_INSECURE=true) to allow it";
}
