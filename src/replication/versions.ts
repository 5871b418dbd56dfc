/**
 * Row versions for last-writer-wins: `main._ha_versions` holds, per (table, row key), the
 * (hlc, node) of the last change applied to the row and whether that change deleted it
 * (a tombstone, so that an older write arriving later cannot bring the row back).
 *
 * Tombstones only matter against changes still to come; once older than everything the stream
 * can still deliver they are purged ({@link Versions.purgeTombstones}, {@link tombstoneCutoff}).
 *
 * @module
 */
import type { StatementSync } from "node:sqlite";
import { type Change, compareVersion } from "../cdc/mod.ts";
import type { RowIdentify } from "../config/mod.ts";

/** The tables versions live in (created by {@link Versions.init}). */
const SCHEMA = `
  CREATE TABLE IF NOT EXISTS main._ha_versions(
    tbl TEXT NOT NULL, key TEXT NOT NULL, hlc INTEGER NOT NULL, node TEXT NOT NULL,
    deleted INTEGER NOT NULL, PRIMARY KEY(tbl, key)) WITHOUT ROWID;
  CREATE INDEX IF NOT EXISTS main._ha_tombstones ON _ha_versions(hlc) WHERE deleted = 1;
`;

/**
 * The hybrid-logical-clock value below which tombstones can be purged: older than the stream's
 * max age plus a margin of the same length (at least one minute) for clock skew and late
 * publication from an outbox. `null` when the stream keeps messages forever (`maxAgeMs` 0).
 *
 * @example
 * ```ts
 * tombstoneCutoff(Date.parse("2025-01-03T00:00:00Z"), 86_400_000); // hlc of 2025-01-01T00:00Z
 * ```
 */
export function tombstoneCutoff(nowMs: number, maxAgeMs: number): number | null {
  if (maxAgeMs <= 0) return null;
  return (nowMs - maxAgeMs - Math.max(maxAgeMs, MIN_TOMBSTONE_MARGIN_MS)) * 1000;
}

/** Rows per statement of {@link Versions.setAll}. */
const SET_CHUNK = 32;

/** {@link setSql} by row count. */
const SET_SQL: string[] = [];

/** The upsert of `n` row versions: ?1 and ?2 are the shared hlc and node, then 3 per row. */
function setSql(n: number): string {
  const values = Array.from(
    { length: n },
    (_, i) => `(?${3 * i + 3}, ?${3 * i + 4}, ?1, ?2, ?${3 * i + 5})`,
  );
  return `INSERT INTO main._ha_versions(tbl, key, hlc, node, deleted) VALUES ${values.join(", ")}
    ON CONFLICT(tbl, key) DO UPDATE SET hlc = excluded.hlc, node = excluded.node,
      deleted = excluded.deleted`;
}

/** The smallest margin {@link tombstoneCutoff} keeps beyond the stream's max age. */
const MIN_TOMBSTONE_MARGIN_MS = 60_000;

/** Row versions of one database, on the writer connection. */
export class Versions {
  constructor(
    private readonly stmt: (sql: string) => StatementSync,
    private readonly rowIdentify: RowIdentify,
  ) {}

  /** Creates the versions table (idempotent); returns the highest hlc recorded. */
  static init(exec: (sql: string) => void, stmt: (sql: string) => StatementSync): number {
    exec(SCHEMA);
    const r = stmt("SELECT max(hlc) AS h FROM main._ha_versions").get() as { h: bigint | null };
    return r.h === null ? 0 : Number(r.h);
  }

  /** Whether a change identifies rows by rowid (per `--row-identify` and the table's key). */
  byRowid(c: Change, side: "old" | "new"): boolean {
    const rowid = side === "old" ? c.old_rowid : c.new_rowid;
    return this.rowIdentify !== "full" && rowid !== null && rowid !== undefined &&
      (this.rowIdentify === "rowid" || c.pk_columns.length === 0);
  }

  /** The row key per `--row-identify`, from the old or new image. */
  keyOf(c: Change, side: "old" | "new"): string {
    const values = (side === "old" ? c.old_values : c.new_values) ?? [];
    if (this.rowIdentify === "full") return JSON.stringify(values);
    if (this.byRowid(c, side)) {
      return `#${JSON.stringify(side === "old" ? c.old_rowid : c.new_rowid)}`;
    }
    return JSON.stringify(c.pk_columns.map((p) => values[c.columns.indexOf(p)] ?? null));
  }

  /** The stored version of a row, if any. */
  get(tbl: string, key: string): { hlc: number; node: string; deleted: boolean } | undefined {
    const v = this.stmt(
      "SELECT hlc, node, deleted FROM main._ha_versions WHERE tbl = ? AND key = ?",
    )
      .get(tbl, key) as { hlc: bigint; node: string; deleted: bigint } | undefined;
    return v ? { hlc: Number(v.hlc), node: v.node, deleted: v.deleted !== 0n } : undefined;
  }

  /** Records the version of a row. */
  set(tbl: string, key: string, hlc: number, node: string, deleted: boolean): void {
    this.stmt(
      `INSERT INTO main._ha_versions(tbl, key, hlc, node, deleted) VALUES (?, ?, ?, ?, ?)
       ON CONFLICT(tbl, key) DO UPDATE SET hlc = excluded.hlc, node = excluded.node,
         deleted = excluded.deleted`,
    ).run(tbl, key, BigInt(hlc), node, deleted ? 1n : 0n);
  }

  /**
   * Records the version of a row that has none yet, in one statement instead of a read and a
   * write: true when it was recorded (no version was stored: the change wins and nothing more is
   * to record), false when the row has a version (nothing written: read it and go the general
   * way). Same transaction and statement order as a read then a write, so SQL reading
   * `_ha_versions` later sees what {@link set} would have left.
   */
  claim(tbl: string, key: string, hlc: number, node: string, deleted: boolean): boolean {
    const r = this.stmt(
      `INSERT INTO main._ha_versions(tbl, key, hlc, node, deleted) VALUES (?, ?, ?, ?, ?)
       ON CONFLICT(tbl, key) DO NOTHING`,
    ).run(tbl, key, BigInt(hlc), node, deleted ? 1n : 0n);
    return Number(r.changes) === 1;
  }

  /**
   * Records the versions `(tbl, key, deleted)` of `rows`, all stamped (hlc, node), in order (a
   * later row for the same key wins): one statement per {@link SET_CHUNK} rows, not one per row.
   */
  setAll(rows: [tbl: string, key: string, deleted: boolean][], hlc: number, node: string): void {
    for (let at = 0; at < rows.length; at += SET_CHUNK) {
      const chunk = rows.slice(at, at + SET_CHUNK);
      const args: (string | bigint)[] = [BigInt(hlc), node];
      for (const [tbl, key, deleted] of chunk) args.push(tbl, key, deleted ? 1n : 0n);
      this.stmt(SET_SQL[chunk.length] ??= setSql(chunk.length)).run(...args);
    }
  }

  /**
   * Whether a change with version (hlc, node) wins over the row's stored version: it is newer,
   * or an earlier change of the same changeset already won (`touched` collects the rows a
   * changeset won, so that a transaction changing a row twice applies both changes, while a
   * redelivered changeset, equal to the stored version, applies nothing). `stored`: the row's
   * version when the caller already read it (null: none), so it is not read twice.
   */
  wins(
    tbl: string,
    key: string,
    hlc: number,
    node: string,
    touched: Set<string>,
    stored?: { hlc: number; node: string } | null,
  ): boolean {
    const id = `${tbl}\u0000${key}`;
    if (touched.has(id)) return true;
    const v = stored === undefined ? this.get(tbl, key) : stored;
    if (v && compareVersion(hlc, node, v.hlc, v.node) <= 0) return false;
    touched.add(id);
    return true;
  }

  /** Deletes tombstones older than `cutoffHlc`; returns how many. */
  purgeTombstones(cutoffHlc: number): number {
    const r = this.stmt("DELETE FROM main._ha_versions WHERE deleted = 1 AND hlc < ?")
      .run(BigInt(Math.floor(cutoffHlc)));
    return Number(r.changes);
  }
}
