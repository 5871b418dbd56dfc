/**
 * Conflicts seen while applying remote changes: a row written on two nodes without either
 * seeing the other's write (the same explicit key inserted with different content, concurrent
 * updates, an update against a delete). Last writer wins (or the interceptor) still decides;
 * this makes the decision visible:
 *
 * - `main._ha_conflict_counts(tbl, n)`: conflicts per table since the database was created
 *   (shown in `GET /replications`);
 * - `main._ha_conflicts`: the last {@link KEEP} conflicts with the losing version (its node, hlc
 *   and values in the wire format, `null` for a deleted row), so it can be retrieved with SQL;
 * - a `warn` log line with table, key and both nodes.
 *
 * These tables are local to a node (never replicated); a snapshot carries its taker's records.
 *
 * @module
 */
import type { StatementSync } from "node:sqlite";
import type { WireValue } from "../cdc/mod.ts";
import type { Logger } from "../log/mod.ts";

/** Conflict records kept in `_ha_conflicts` (older ones are deleted). */
export const KEEP = 1000;

/** One side of a conflict. */
export interface ConflictSide {
  node: string;
  hlc: number;
  /** The row as this side wrote it; null when this side deleted it. */
  values: WireValue[] | null;
}

/** A conflict and how it was resolved. */
export interface ConflictNote {
  table: string;
  /** The row key (per `--row-identify`). */
  key: string;
  winner: Omit<ConflictSide, "values">;
  loser: ConflictSide;
  /** `lww`, or the interceptor's choice: `interceptor:local`, `interceptor:remote`, `interceptor:merged`. */
  resolution: string;
}

const SCHEMA = `
  CREATE TABLE IF NOT EXISTS main._ha_conflicts(
    id INTEGER PRIMARY KEY AUTOINCREMENT, at TEXT NOT NULL, tbl TEXT NOT NULL, key TEXT NOT NULL,
    resolution TEXT NOT NULL, winner_node TEXT NOT NULL, winner_hlc INTEGER NOT NULL,
    loser_node TEXT NOT NULL, loser_hlc INTEGER NOT NULL, loser_values TEXT);
  CREATE TABLE IF NOT EXISTS main._ha_conflict_counts(
    tbl TEXT PRIMARY KEY, n INTEGER NOT NULL) WITHOUT ROWID;
`;

/** The query of the conflicts per table (`tbl`, `n`), for any connection. */
export const CONFLICT_COUNTS = "SELECT tbl, n FROM main._ha_conflict_counts ORDER BY tbl";

/** Records conflicts on the writer connection (inside the apply transaction). */
export class ConflictLog {
  constructor(
    private readonly stmt: (sql: string) => StatementSync,
    private readonly log: Logger,
  ) {}

  /** Creates the tables (idempotent). */
  static init(exec: (sql: string) => void): void {
    exec(SCHEMA);
  }

  /** Counts, keeps and logs one conflict. */
  record(n: ConflictNote): void {
    const r = this.stmt(
      `INSERT INTO main._ha_conflicts(at, tbl, key, resolution, winner_node, winner_hlc,
         loser_node, loser_hlc, loser_values)
       VALUES (strftime('%Y-%m-%dT%H:%M:%fZ'), ?, ?, ?, ?, ?, ?, ?, ?)`,
    ).run(
      n.table,
      n.key,
      n.resolution,
      n.winner.node,
      BigInt(n.winner.hlc),
      n.loser.node,
      BigInt(n.loser.hlc),
      n.loser.values === null ? null : JSON.stringify(n.loser.values),
    );
    this.stmt("DELETE FROM main._ha_conflicts WHERE id <= ?")
      .run(BigInt(r.lastInsertRowid) - BigInt(KEEP));
    this.stmt(
      `INSERT INTO main._ha_conflict_counts(tbl, n) VALUES (?, 1)
       ON CONFLICT(tbl) DO UPDATE SET n = n + 1`,
    ).run(n.table);
    this.log.warn("replication conflict", {
      table: n.table,
      key: n.key,
      resolution: n.resolution,
      winner: n.winner.node,
      loser: n.loser.node,
    });
  }
}
