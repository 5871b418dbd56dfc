/**
 * Row INSERTs of remote changes applied several to a statement (issue 13, single-row catch-up).
 *
 * Applying an INSERT of a row with no version here takes two statements: the version claimed
 * (`Versions.claim`), then the row inserted (`INSERT OR ABORT`). Each statement call costs ~2 µs
 * of the writer's CPU before SQLite does any work, as much as the work itself. Here such INSERTs
 * are held (in order) and written by one statement for up to {@link MAX_ROWS} of them: an
 * `INSERT` into a TEMP view whose `INSTEAD OF` trigger does, for each row in turn, exactly the
 * two statements above: the version row first (a plain INSERT: a version already there is a
 * constraint failure), then the row (`OR ABORT`, overriding the table's conflict clause, and the
 * user's triggers fire as before). Same statements in the same order, so triggers and SQL that
 * read `_ha_versions` see what they saw before.
 *
 * If the statement fails with a constraint error (a version or a row already there: not the
 * catch-up case), SQLite undoes all of it (its triggers' work included) and each held INSERT is
 * applied again alone, the general way, in order: the outcome is that of applying them one by
 * one. Held INSERTs must be written ({@link HeldInserts.flush}) before any other statement of the
 * apply batch reads or writes the database; `BatchApply` does so (and holds only in its
 * optimistic attempt, where any other error redoes the batch one changeset at a time).
 *
 * The view and trigger of each change shape (table, columns, rowid) are created with
 * `IF NOT EXISTS` the first time an attempt uses them: one created inside a transaction that was
 * rolled back is gone.
 *
 * @module
 */
import type { DatabaseSync, StatementSync } from "node:sqlite";
import { type CdcValue, type Change, decodeValue, type WireValue } from "../cdc/mod.ts";
import { q } from "./capture.ts";

/** Rows per statement at most (and fewer when a row has many columns). */
const MAX_ROWS = 32;
/** Bound parameters per statement at most (SQLite's oldest default limit). */
const MAX_PARAMS = 999;
/** SQLite's primary result code of constraint failures. */
const SQLITE_CONSTRAINT = 19;

/** One change shape: its view and the statements inserting n rows into it. */
interface Shape {
  table: string;
  columns: string[];
  rowid: boolean;
  view: string;
  /** Parameters per row: key, hlc, node, the values, [rowid]. */
  per: number;
  /** CREATE TEMP VIEW and TRIGGER, `IF NOT EXISTS`. */
  create: string;
  /** INSERT texts by row count. */
  sql: string[];
}

/** A held INSERT: applied alone by `fallback` if its statement fails. */
interface Held {
  c: Change;
  hlc: number;
  node: string;
  /** Its changeset's rows won so far (`Versions.wins`); holding counted this one as won. */
  touched: Set<string>;
  /** Its entry in `touched`. */
  id: string;
}

/** Instances in this worker: view names never repeat one made by another instance. */
let instances = 0;

/** Held row INSERTs of one writer connection. */
export class HeldInserts {
  /** Whether INSERTs may be held now (`BatchApply`'s optimistic attempt). */
  enabled = false;
  private readonly shapes = new Map<string, Shape>();
  /** The shape of the last change held (consecutive changes of one table skip the key). */
  private last?: Shape;
  /** Views known to exist (forgotten when a transaction that may have made them rolls back). */
  private readonly ensured = new Set<Shape>();
  private shape?: Shape;
  private held: Held[] = [];
  private args: (CdcValue | bigint)[] = [];
  private readonly prefix = `_ha_apply_${++instances}_`;

  constructor(
    private readonly db: DatabaseSync,
    private readonly stmt: (sql: string) => StatementSync,
    /**
     * Applies one INSERT alone, the general way (after a failed statement), with its changeset's
     * `touched` (see {@link Held}).
     */
    private readonly fallback: (c: Change, hlc: number, node: string, touched: Set<string>) => void,
  ) {}

  /**
   * Holds the INSERT `c` of a row with no version here as far as the caller knows (`key` its
   * version key, `rowid` whether it is identified by rowid), counted as won in its changeset's
   * `touched` under `id` until its statement fails (then it is applied again, see {@link flush}).
   */
  hold(
    c: Change,
    key: string,
    rowid: boolean,
    hlc: number,
    node: string,
    touched: Set<string>,
    id: string,
  ): void {
    const s = this.shapeOf(c, rowid);
    if (s !== this.shape) {
      this.flush();
      this.shape = s;
    }
    touched.add(id);
    this.held.push({ c, hlc, node, touched, id });
    const a = this.args;
    a.push(key, BigInt(hlc), node);
    const values = c.new_values ?? [];
    for (let i = 0; i < values.length; i++) a.push(decodeValue(values[i]));
    if (rowid) a.push(decodeValue(c.new_rowid as WireValue));
    if ((this.held.length + 1) * s.per > MAX_PARAMS || this.held.length >= MAX_ROWS) this.flush();
  }

  /** Writes what is held (before any other statement of the batch). */
  flush(): void {
    const n = this.held.length;
    if (n === 0) return;
    const s = this.shape!, held = this.held, args = this.args;
    this.held = [];
    this.args = [];
    if (!this.ensured.has(s)) {
      this.db.exec(s.create);
      this.ensured.add(s);
    }
    const sql = s.sql[n] ??= `INSERT OR ABORT INTO temp.${q(s.view)} VALUES ` +
      Array.from({ length: n }, () => `(${Array(s.per).fill("?").join(", ")})`).join(", ");
    try {
      this.stmt(sql).run(...args);
    } catch (e) {
      if (((e as { errcode?: number }).errcode ?? 0) % 256 !== SQLITE_CONSTRAINT) throw e;
      // A user trigger's RAISE(ROLLBACK) ended the transaction: nothing to apply outside it.
      if (!this.db.isTransaction) throw e;
      // Nothing of the statement is left: apply each alone, in order, without holding. Each
      // goes by LWW again: it is no longer counted as won, or a later change of its row in the
      // same changeset would win without a comparison (and overwrite a newer version).
      this.enabled = false;
      try {
        for (const h of held) {
          h.touched.delete(h.id);
          this.fallback(h.c, h.hlc, h.node, h.touched);
        }
      } finally {
        this.enabled = true;
      }
    }
  }

  /**
   * Drops what is held; `rolledBack`: the transaction is being rolled back, and views created in
   * it with it.
   */
  reset(rolledBack: boolean): void {
    this.held = [];
    this.args = [];
    this.shape = undefined;
    if (rolledBack) this.ensured.clear();
  }

  /**
   * Drops the views of `table`'s shapes (before an ALTER or DROP TABLE: SQLite rewrites a
   * renamed table or column in trigger bodies, TEMP ones included).
   */
  dropViewsOf(table: string): void {
    for (const s of this.shapes.values()) {
      if (s.table !== table) continue;
      this.db.exec(`DROP VIEW IF EXISTS temp.${q(s.view)}`);
      this.ensured.delete(s);
    }
  }

  private shapeOf(c: Change, rowid: boolean): Shape {
    const l = this.last;
    if (l && l.rowid === rowid && l.table === c.table && sameNames(l.columns, c.columns)) return l;
    const k = `${rowid}\u0000${c.table}\u0000${c.columns.join("\u0000")}`;
    let s = this.shapes.get(k);
    if (!s) {
      const view = `${this.prefix}${this.shapes.size + 1}`;
      const params = c.columns.map((_, i) => `c${i}`);
      if (rowid) params.push("r");
      const cols = c.columns.map(q);
      if (rowid) cols.push("rowid");
      const tbl = `'${c.table.replaceAll("'", "''")}'`;
      const create = `
        CREATE TEMP VIEW IF NOT EXISTS ${q(view)}(k, h, n, ${params.join(", ")}) AS
          SELECT ${["k", "h", "n", ...params].map(() => "NULL").join(", ")} WHERE 0;
        CREATE TEMP TRIGGER IF NOT EXISTS ${q(view)} INSTEAD OF INSERT ON ${q(view)} BEGIN
          INSERT INTO main._ha_versions(tbl, key, hlc, node, deleted)
            VALUES (${tbl}, new.k, new.h, new.n, 0);
          INSERT OR ABORT INTO main.${q(c.table)}(${cols.join(", ")})
            VALUES (${params.map((p) => `new.${p}`).join(", ")});
        END;`;
      s = {
        table: c.table,
        columns: [...c.columns],
        rowid,
        view,
        per: 3 + params.length,
        create,
        sql: [],
      };
      this.shapes.set(k, s);
    }
    this.last = s;
    return s;
  }
}

/** Same column names in the same order. */
function sameNames(a: string[], b: string[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
