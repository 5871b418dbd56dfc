/**
 * PostgreSQL wire protocol (v3) front end over the engine: psql, node `pg`,
 * `postgres`, psycopg and pgbench connect with SCRAM-SHA-256 (or md5 /
 * cleartext), optionally over TLS, and run SQLite SQL through the simple and
 * extended query protocols.
 *
 * @example
 * ```ts
 * import { PgServer } from "./src/pgwire/mod.ts";
 * const server = new PgServer({ engine, port: 5432, user: "ha", password: "ha", logger });
 * await server.start();
 * // PGPASSWORD=ha psql -h localhost -U ha -c "SELECT 1"
 * await server.stop();
 * ```
 */
export { PgServer, type PgServerOptions } from "./server.ts";
export { AUTH_METHODS, type AuthMethod } from "./auth.ts";
export type { PgDatabase, PgDescription, PgEngine } from "./contracts.ts";
export { toPgError } from "./errors.ts";
