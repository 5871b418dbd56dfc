/**
 * **ha** as a library: a node of a leaderless SQLite cluster running inside your application.
 * Reads are local (no network, no waiting), writes replicate to every other node through NATS
 * JetStream exactly as with the `ha` command, and changes made on other nodes arrive on their
 * own. It is the same node as `ha`'s, with the same defaults; only the HTTP API and the
 * PostgreSQL server are off unless asked for.
 *
 * Run with `-A` (it reads and writes files, listens and connects, starts `nats-server` for an
 * embedded server and a sandbox process for an interceptor); `nats-server` must be on `PATH`
 * (or `nats.serverBin`) for an embedded server.
 *
 * @example A local replica of a cluster
 * ```ts
 * import { openDatabase } from "./mod.ts";
 *
 * const db = await openDatabase({
 *   path: "app.db",
 *   name: "app-1",
 *   replicationUrl: "nats://127.0.0.1:4222",
 * });
 * await db.query("CREATE TABLE IF NOT EXISTS notes(id INTEGER PRIMARY KEY, body TEXT)");
 * await db.query("INSERT INTO notes(body) VALUES (?)", ["hello"]);
 * const { columns, rows } = await db.query("SELECT id, body FROM notes");
 * await db.close();
 * ```
 *
 * @example A read-only follower serving HTTP and PostgreSQL
 * ```ts
 * import { openDatabase } from "./mod.ts";
 *
 * await using follower = await openDatabase({
 *   path: "replica.db",
 *   readOnly: true,
 *   replicationUrl: "nats://127.0.0.1:4222",
 *   http: { port: 8081 },
 *   pg: { port: 5433 },
 * });
 * ```
 * @module
 */
import { HaDatabase, type OpenOptions } from "./src/library/mod.ts";

export {
  type EmbeddedNatsOptions,
  HaDatabase,
  type HttpOptions,
  type OpenOptions,
  type Param,
  type PgOptions,
  type QueryParams,
  type QueryResult,
  type Transaction,
  type Value,
} from "./src/library/mod.ts";
export type { IdScheme, RowIdentify } from "./src/config/mod.ts";
export type { LogLevel } from "./src/log/mod.ts";
export { type ErrorCode, type ErrorDetails, HaError } from "./src/errors/mod.ts";

/**
 * Starts a node in this process serving the database at `options.path` and resolves once it
 * serves (replication connects in the background and retries while NATS is unreachable).
 * Rejects with an {@link HaError} of code `config` for invalid options, with the message the
 * `ha` command would print for the equivalent flag.
 *
 * @example Two nodes, one with an embedded nats-server
 * ```ts
 * import { openDatabase } from "./mod.ts";
 *
 * const a = await openDatabase({ path: ":memory:", name: "a", nats: { port: 4222 } });
 * const b = await openDatabase({
 *   path: ":memory:",
 *   name: "b",
 *   replicationUrl: "nats://127.0.0.1:4222",
 * });
 * await a.query("CREATE TABLE t(id INTEGER PRIMARY KEY, big INTEGER, data BLOB)");
 * await a.query("INSERT INTO t VALUES (1, ?, ?)", [2n ** 62n, new Uint8Array([1, 2])]);
 * // Soon on b: { columns: ["big", "data"], rows: [[4611686018427387904n, Uint8Array [1, 2]]] }
 * const { rows } = await b.query("SELECT big, data FROM t");
 * await b.close();
 * await a.close();
 * ```
 */
export function openDatabase(options: OpenOptions): Promise<HaDatabase> {
  return HaDatabase.open(options);
}
