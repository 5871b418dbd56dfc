/**
 * Read-only followers (`--read-only`): client statements that would write are refused with one
 * error, while the node's own plugins (replicated apply) still write through `invoke`.
 *
 * The refusal is an SQL error with SQLite's `SQLITE_READONLY` code and a message that says
 * read-only, so every front end maps it like SQLite's own: HTTP 400, PostgreSQL SQLSTATE 25006
 * (read_only_sql_transaction).
 *
 * @example
 * ```ts
 * import { readOnlyRefusal } from "./read_only.ts";
 * const e = readOnlyRefusal("INSERT");
 * e.message; // "read-only node: INSERT refused (this follower only applies the cluster's changes; send writes to another node)"
 * ```
 * @module
 */
import { HaError } from "../errors/mod.ts";
import type { DatabaseSource } from "./dsn.ts";

/** SQLite's primary result code SQLITE_READONLY. */
const SQLITE_READONLY = 8;

/** The error a read-only follower answers a client write with (`command`: e.g. `INSERT`). */
export function readOnlyRefusal(command?: string): HaError {
  const what = command ? `${command} refused` : "writes are refused";
  return new HaError(
    "sql",
    `read-only node: ${what} (this follower only applies the cluster's changes; ` +
      "send writes to another node)",
    { sqliteCode: SQLITE_READONLY, sqliteName: "SQLITE_READONLY" },
  );
}

/**
 * Throws unless a follower's file database stays in WAL mode: then any process can open the
 * file read-only with plain SQLite while the follower applies changes to it.
 */
export function checkFollowerSource(source: DatabaseSource): void {
  if (source.memory) return;
  const mode = source.pragmas.find(([name]) => name === "journal_mode")?.[1];
  if (mode !== undefined && mode.toUpperCase() !== "WAL") {
    throw new HaError(
      "config",
      `database ${source.id}: a read-only follower keeps its file in WAL mode so that other ` +
        `processes can read it while it is updated; remove journal mode ${mode} from its DSN`,
    );
  }
}
