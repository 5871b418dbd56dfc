/**
 * Applies the row changes of remote changesets on the writer connection: last writer wins by
 * (hlc, node) per row ({@link Versions}), idempotent, identifiers quoted, rows identified per
 * `--row-identify`.
 *
 * Each change is applied the way the origin made it, so that the replica's own triggers fire as
 * the origin's did (their side effects are not replicated, see `capture.ts`): an INSERT inserts,
 * an UPDATE updates in place (also when it changes the key) setting the columns the origin's
 * statement set plus those that differ here, a DELETE deletes; REPLACE conflict resolution is
 * used where the origin's statement used it. A change that finds the row already as it should be
 * writes nothing.
 *
 * @module
 */
import type { StatementSync } from "node:sqlite";
import {
  type CdcValue,
  type Change,
  compareVersion,
  decodeValue,
  encodeValue,
  type WireValue,
} from "../cdc/mod.ts";
import type { RowIdentify } from "../config/mod.ts";
import { q, type TableMeta } from "./capture.ts";
import type { ConflictLog, ConflictNote } from "./conflicts.ts";
import type { HeldInserts } from "./held_inserts.ts";
import type { Versions } from "./versions.ts";

type Row = Record<string, CdcValue>;

/** SQLite's primary result code of constraint failures. */
const SQLITE_CONSTRAINT = 19;
/** INSERT texts kept by change shape (one string object each: cheap statement cache lookups). */
const SQL_CACHE_SIZE = 256;

/** Applies row changes; one instance per writer plugin. */
export class Applier {
  private readonly insertSql = new Map<string, string>();
  /** The last INSERT's shape and text: consecutive changes of one table skip the key string. */
  private lastInsert?: {
    or: string;
    rowid: boolean;
    table: string;
    columns: string[];
    sql: string;
  };

  /** Where INSERTs of rows with no version are held, when enabled (`held_inserts.ts`). */
  held: HeldInserts | null = null;

  constructor(
    private readonly stmt: (sql: string) => StatementSync,
    private readonly versions: Versions,
    private readonly tables: Map<string, TableMeta>,
    private readonly rowIdentify: RowIdentify,
    private readonly conflicts?: ConflictLog,
  ) {}

  /**
   * Applies one row change made by `node` at `hlc`, unless the row has a newer version.
   * `touched` is shared by the changes of one changeset (see {@link Versions.wins}).
   */
  apply(c: Change, hlc: number, node: string, touched: Set<string>): void {
    const held = this.held;
    if (this.rowIdentify === "full") {
      held?.flush();
      return this.applyFull(c, hlc, node, touched);
    }
    const v = this.versions;
    // The version of the row the change starts from, read once (conflict check and LWW).
    const key = v.keyOf(c, c.operation === "INSERT" ? "new" : "old");
    const id = `${c.table}\u0000${key}`;
    if (held) {
      // An INSERT that would claim its version and insert (below) may be held and written with
      // others in one statement; anything else writes what is held first.
      if (
        held.enabled && !touched.has(id) && c.operation === "INSERT" &&
        c.on_conflict !== "REPLACE" && this.insertable(c)
      ) {
        held.hold(c, key, v.byRowid(c, "new"), hlc, node, touched, id);
        return;
      }
      held.flush();
    }
    // After the flush: a held INSERT of this row that lost is no longer in `touched`.
    const seen = touched.has(id);
    // An INSERT of a row with no version here (a catch-up's every row): its version is recorded
    // first, in one statement that also tells there was none (no conflict then, and it wins);
    // then the row is written as below. Otherwise the version is read.
    if (!seen && c.operation === "INSERT" && v.claim(c.table, key, hlc, node, false)) {
      touched.add(id);
      this.writeNew(c);
      return;
    }
    const stored = seen ? undefined : v.get(c.table, key) ?? null;
    if (this.conflicts && stored) {
      const conflict = this.conflictOf(c, hlc, node, key, stored);
      if (conflict) this.conflicts.record(conflict);
    }
    const wins = (k: string) =>
      v.wins(c.table, k, hlc, node, touched, k === key ? stored : undefined);
    if (c.operation === "DELETE") {
      if (!wins(key)) return;
      this.deleteRow(c);
      v.set(c.table, key, hlc, node, true);
      return;
    }
    const ok = key;
    const nk = c.operation === "UPDATE" ? v.keyOf(c, "new") : key;
    if (ok === nk) {
      if (!wins(nk)) return;
      this.writeNew(c);
      v.set(c.table, nk, hlc, node, false);
      return;
    }
    const oldWins = wins(ok);
    const newWins = wins(nk);
    if (oldWins && newWins && this.moveRow(c)) {
      // updated in place, like the origin
    } else {
      if (oldWins) this.deleteRow(c);
      if (newWins) this.writeNew(c);
    }
    if (oldWins) v.set(c.table, ok, hlc, node, true);
    if (newWins) v.set(c.table, nk, hlc, node, false);
  }

  /**
   * `--row-identify full`: a row is its values, so identical rows are interchangeable and a table
   * is a multiset. Changes apply as multiset operations, which commute, so that nodes converge
   * to the same multiset whatever the order: an INSERT adds a row; a DELETE removes one of the
   * rows with the old values, if any; an UPDATE changes one of them in place, or, when none is
   * left here (changed or deleted concurrently), adds the new image unless a row with it exists
   * or the new image has a newer version here. Only a redelivered change (the row's version is
   * the change's own, from another changeset) is skipped.
   */
  private applyFull(c: Change, hlc: number, node: string, touched: Set<string>): void {
    const v = this.versions;
    const side = c.operation === "INSERT" ? "new" : "old";
    const key = v.keyOf(c, side);
    const id = `${c.table}\u0000${key}`;
    const stored = v.get(c.table, key);
    if (!touched.has(id) && stored?.hlc === hlc && stored.node === node) return;
    touched.add(id);
    if (c.operation === "INSERT") {
      this.insert(c);
      v.set(c.table, key, hlc, node, false);
      return;
    }
    const cur = this.current(c, "old");
    if (c.operation === "DELETE") {
      if (cur) this.deleteRow(c);
      v.set(c.table, key, hlc, node, !this.current(c, "old"));
      return;
    }
    const nk = v.keyOf(c, "new");
    if (cur) this.update(c, cur, "old");
    else if (!this.current(c, "new") && v.wins(c.table, nk, hlc, node, touched)) {
      this.insert(c);
    } else return;
    if (nk !== key) v.set(c.table, key, hlc, node, !this.current(c, "old"));
    v.set(c.table, nk, hlc, node, false);
  }

  /**
   * The conflict a remote change makes, if any: the row's version is another node's, and one
   * side's write is lost — the remote change loses (older) and would have made the row
   * different, or it wins over a local row it did not start from (not its old image; for an
   * INSERT, a different row under the same key).
   */
  private conflictOf(
    c: Change,
    hlc: number,
    node: string,
    key: string,
    prev: { hlc: number; node: string },
  ): ConflictNote | null {
    if (prev.node === node) return null;
    const side = c.operation === "INSERT" ? "new" : "old";
    const row = this.current(c, side);
    const local = row ? c.columns.map((col) => encodeValue(row[col] ?? null)) : null;
    const remote = c.operation === "DELETE" ? null : c.new_values ?? null;
    const eq = (a: WireValue[] | null, b: WireValue[] | null) =>
      JSON.stringify(a) === JSON.stringify(b);
    if (eq(local, remote)) return null;
    const base = { table: c.table, key, resolution: "lww" };
    if (compareVersion(hlc, node, prev.hlc, prev.node) > 0) {
      const started = c.operation === "INSERT" ? local === null : eq(local, c.old_values ?? null);
      if (started) return null;
      return {
        ...base,
        winner: { node, hlc },
        loser: { node: prev.node, hlc: prev.hlc, values: local },
      };
    }
    return {
      ...base,
      winner: { node: prev.node, hlc: prev.hlc },
      loser: { node, hlc, values: remote },
    };
  }

  /** WHERE clause identifying the row by the old (or new) image. */
  where(c: Change, side: "old" | "new"): { sql: string; args: CdcValue[] } {
    const values = ((side === "old" ? c.old_values : c.new_values) ?? []).map(decodeValue);
    if (this.rowIdentify === "full") {
      const cond = c.columns.map((col) => `${q(col)} IS ?`).join(" AND ");
      if (this.tables.get(c.table)?.withoutRowid) return { sql: cond, args: values };
      return {
        sql: `rowid = (SELECT rowid FROM main.${q(c.table)} WHERE ${cond} LIMIT 1)`,
        args: values,
      };
    }
    if (this.versions.byRowid(c, side)) {
      return {
        sql: "rowid = ?",
        args: [decodeValue((side === "old" ? c.old_rowid : c.new_rowid)!)],
      };
    }
    return {
      sql: c.pk_columns.map((p) => `${q(p)} IS ?`).join(" AND "),
      args: c.pk_columns.map((p) => values[c.columns.indexOf(p)] ?? null),
    };
  }

  /** The row identified by one side of a change, as it is here, or undefined. */
  current(c: Change, side: "old" | "new"): Row | undefined {
    const w = this.where(c, side);
    const cols = c.columns.map(q).join(", ");
    return this.stmt(`SELECT ${cols} FROM main.${q(c.table)} WHERE ${w.sql} LIMIT 1`)
      .get(...w.args) as Row | undefined;
  }

  private deleteRow(c: Change): void {
    const w = this.where(c, "old");
    this.stmt(`DELETE FROM main.${q(c.table)} WHERE ${w.sql}`).run(...w.args);
  }

  /** Writes the new image into the row found by its key, or inserts it. */
  private writeNew(c: Change): void {
    if (c.operation === "INSERT" && c.on_conflict !== "REPLACE" && this.tryInsert(c)) return;
    const cur = this.current(c, "new");
    if (!cur || (c.operation === "INSERT" && c.on_conflict === "REPLACE")) return this.insert(c);
    this.update(c, cur, "new");
  }

  /**
   * An INSERT whose key is not here yet (the common case, a catch-up's every row) in one
   * statement instead of a lookup and an insert: `OR ABORT` (whatever conflict clause the table
   * declares) undoes the statement and its triggers' work on a constraint failure, and the
   * change then takes the general path, as if the lookup had come first. Not for a key with a
   * NULL, which a primary key of a rowid table does not make unique.
   */
  private tryInsert(c: Change): boolean {
    if (!this.insertable(c)) return false;
    try {
      this.insert(c, true);
      return true;
    } catch (e) {
      if (((e as { errcode?: number }).errcode ?? 0) % 256 !== SQLITE_CONSTRAINT) throw e;
      return false;
    }
  }

  /** Whether {@link tryInsert} may insert `c` at once: its key has no NULL (or is the rowid). */
  private insertable(c: Change): boolean {
    if (this.versions.byRowid(c, "new")) return true;
    const values = c.new_values ?? [];
    const pk = c.pk_columns;
    for (let i = 0; i < pk.length; i++) if (values[c.columns.indexOf(pk[i])] === null) return false;
    return true;
  }

  /** A key-changing UPDATE in place, when the old row is here and the new key is free. */
  private moveRow(c: Change): boolean {
    const cur = this.current(c, "old");
    if (!cur) return false;
    if (c.on_conflict !== "REPLACE" && this.current(c, "new")) return false;
    this.update(c, cur, "old");
    return true;
  }

  /** UPDATE of the columns the origin set and of those that differ here (none: no UPDATE). */
  private update(c: Change, cur: Row, side: "old" | "new"): void {
    const values = c.new_values ?? [];
    const setByOrigin = new Set(c.operation === "UPDATE" ? c.updated_columns ?? [] : []);
    const sets: string[] = [];
    const args: CdcValue[] = [];
    c.columns.forEach((col, i) => {
      if (!setByOrigin.has(col) && same(cur[col], values[i])) return;
      sets.push(`${q(col)} = ?`);
      args.push(decodeValue(values[i]));
    });
    const rowidMoves = side === "old" && this.versions.byRowid(c, "old") &&
      JSON.stringify(c.old_rowid) !== JSON.stringify(c.new_rowid);
    if (rowidMoves) {
      sets.push("rowid = ?");
      args.push(decodeValue(c.new_rowid!));
    }
    if (sets.length === 0) return;
    const w = this.where(c, side);
    const or = c.on_conflict === "REPLACE" ? " OR REPLACE" : "";
    this.stmt(`UPDATE${or} main.${q(c.table)} SET ${sets.join(", ")} WHERE ${w.sql}`)
      .run(...args, ...w.args);
  }

  /** Inserts the new image (`abort`: `INSERT OR ABORT`, see {@link tryInsert}). */
  private insert(c: Change, abort = false): void {
    const args: CdcValue[] = (c.new_values ?? []).map(decodeValue);
    const rowid = this.versions.byRowid(c, "new");
    if (rowid) args.push(decodeValue(c.new_rowid as WireValue));
    const or = c.on_conflict === "REPLACE" ? " OR REPLACE" : abort ? " OR ABORT" : "";
    const last = this.lastInsert;
    if (
      last && last.or === or && last.rowid === rowid && last.table === c.table &&
      sameNames(last.columns, c.columns)
    ) {
      this.stmt(last.sql).run(...args);
      return;
    }
    const shape = `${or}\u0000${rowid}\u0000${c.table}\u0000${c.columns.join("\u0000")}`;
    let sql = this.insertSql.get(shape);
    if (sql === undefined) {
      const cols = c.columns.map(q);
      if (rowid) cols.push("rowid");
      const marks = args.map(() => "?").join(", ");
      sql = `INSERT${or} INTO main.${q(c.table)}(${cols.join(", ")}) VALUES (${marks})`;
      if (this.insertSql.size >= SQL_CACHE_SIZE) this.insertSql.clear();
      this.insertSql.set(shape, sql);
    }
    this.lastInsert = { or, rowid, table: c.table, columns: [...c.columns], sql };
    this.stmt(sql).run(...args);
  }
}

/** A value as stored here equals a wire value, storage class included. */
function same(v: CdcValue | undefined, w: WireValue | undefined): boolean {
  if (v === undefined || w === undefined) return false;
  // NULL and text encode as themselves: no JSON text needed to compare them.
  if (w === null || typeof w === "string") return v === w;
  return JSON.stringify(encodeValue(v)) === JSON.stringify(w);
}

/** Same column names in the same order. */
function sameNames(a: string[], b: string[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
