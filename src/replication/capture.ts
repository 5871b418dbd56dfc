/**
 * What the writer plugin captures, as pure functions: which tables a statement changes directly
 * (its scope), whether it resolves conflicts by REPLACE, and the SQL of the TEMP capture triggers.
 *
 * Only rows a statement changes directly are captured: rows changed by user triggers are not,
 * because applying the direct change on a replica fires the replica's own copy of those triggers
 * (capture is off while applying), which makes the same side effects there. Rows changed through a
 * view count as direct: the view's INSTEAD OF triggers are the statement's own work.
 *
 * Limitation: a user trigger that writes into a table its statement also writes directly cannot
 * be told apart from the statement (SQLite does not expose trigger depth): those rows are captured
 * too. Replicas apply them without firing triggers again when their own trigger already produced
 * the same row, so such triggers must be deterministic (derive values from NEW/OLD, not from
 * clocks or random numbers).
 *
 * @example
 * ```ts
 * statementScope([{ code: Action.INSERT, arg1: "t", arg2: null, db: "main", trigger: null }],
 *   new Map(), "INSERT INTO t VALUES (1)").tables; // Set { "t" }
 * ```
 * @module
 */
import type { DatabaseSync } from "node:sqlite";
import { Action } from "../engine/authorizer.ts";
import type { AuthAction } from "../engine/plugin.ts";

/** Quotes an SQL identifier. */
export function q(id: string): string {
  return `"${id.replaceAll('"', '""')}"`;
}

/** Quotes an SQL string literal. */
export function lit(s: string): string {
  return `'${s.replaceAll("'", "''")}'`;
}

/** A unique index usable to find rows a new row conflicts with: key columns and collations. */
export interface UniqueKey {
  columns: { name: string; collation: string }[];
}

/** What capture needs to know about a user table. */
export interface TableMeta {
  name: string;
  /** Column names in table order (generated columns excluded). */
  columns: string[];
  /** Declared primary-key columns in key order. */
  pk: string[];
  withoutRowid: boolean;
  /** Unique indexes on plain columns (expression indexes cannot be searched and are left out). */
  uniques: UniqueKey[];
  /** The table declares a constraint `ON CONFLICT REPLACE`. */
  replaceConstraint: boolean;
}

/** The part of a statement whose row changes are captured. */
export interface StatementScope {
  /** Tables (and views) the statement writes directly. */
  tables: Set<string>;
  /** Per table, the columns its direct UPDATEs set (their `UPDATE OF` triggers fire). */
  updated: Map<string, string[]>;
  /** The statement resolves conflicts by REPLACE (`INSERT OR REPLACE`, `REPLACE INTO`, ...). */
  replace: boolean;
}

const WRITES = new Set<number>([Action.INSERT, Action.UPDATE, Action.DELETE]);

/**
 * The scope of a statement from its authorizer actions: writes outside any trigger, plus writes
 * of the INSTEAD OF triggers of views written in scope (`triggerView`: trigger name → view).
 * `sql` is the statement's text (see {@link resolvesByReplace}).
 */
export function statementScope(
  actions: AuthAction[],
  triggerView: Map<string, string>,
  sql: string,
): StatementScope {
  const tables = new Set<string>();
  const updated = new Map<string, Set<string>>();
  const inScope = new Set<string | null>([null]);
  for (let grew = true; grew;) {
    grew = false;
    for (const a of actions) {
      if (!WRITES.has(a.code) || a.db !== "main" || !a.arg1 || !inScope.has(a.trigger)) continue;
      tables.add(a.arg1);
      if (a.code === Action.UPDATE && a.arg2) {
        const cols = updated.get(a.arg1) ?? new Set<string>();
        cols.add(a.arg2);
        updated.set(a.arg1, cols);
      }
    }
    for (const [trigger, view] of triggerView) {
      if (tables.has(view) && !inScope.has(trigger)) {
        inScope.add(trigger);
        grew = true;
      }
    }
  }
  return {
    tables,
    updated: new Map([...updated].map(([t, cols]) => [t, [...cols]])),
    replace: tables.size > 0 && resolvesByReplace(sql),
  };
}

/**
 * Whether a statement's text asks for REPLACE conflict resolution (`INSERT OR REPLACE`,
 * `UPDATE OR REPLACE`, `REPLACE INTO`). A textual check: the words inside a string literal also
 * match, which only makes replicas resolve conflicts by REPLACE where the origin had none.
 *
 * @example
 * ```ts
 * resolvesByReplace("replace into t values (1)"); // true
 * resolvesByReplace("SELECT replace(a, 'x', 'y') FROM t"); // false
 * ```
 */
export function resolvesByReplace(sql: string): boolean {
  return /\bOR\s+REPLACE\b|\bREPLACE\s+INTO\b/i.test(sql);
}

/** Names of the capture triggers of a table (AFTER insert/update/delete, BEFORE insert/update). */
export function triggerNames(table: string): string[] {
  return ["i", "u", "d", "bi", "bu"].map((k) => `_ha_${k}_${table}`);
}

/**
 * The capture triggers of a table: name → SQL. AFTER triggers log the direct changes
 * (`_ha_on(table)`); for tables with unique indexes, BEFORE INSERT/UPDATE triggers note the rows a
 * new row may replace (`_ha_rep(table)`), so that the plugin can log those deleted by REPLACE
 * conflict resolution, for which SQLite fires no delete trigger (`recursive_triggers` is off).
 * `gated`: the connection has the `ha_interrupt` extension's capture switch, tested first (see
 * {@link hasCaptureSwitch}).
 */
export function triggerSql(t: TableMeta, gated = false): [string, string][] {
  const [ni, nu, nd, nbi, nbu] = triggerNames(t.name);
  const on = `main.${q(t.name)}`;
  const tbl = lit(t.name);
  const pack = (p: string) => `_ha_pack(${t.columns.map((c) => `${p}${q(c)}`).join(", ")})`;
  const rid = (p: "NEW" | "OLD") => t.withoutRowid ? "NULL" : `${p}.rowid`;
  const log = "INSERT INTO temp._ha_log(tbl, op, old_rowid, new_rowid, old_v, new_v)";
  const gate = gated ? "ha_capturing() AND " : "";
  const after = (name: string, event: string, values: string): [string, string] => [
    name,
    `CREATE TEMP TRIGGER ${
      q(name)
    } AFTER ${event} ON ${on} WHEN ${gate}_ha_on(${tbl}) BEGIN ${log} ` +
    `VALUES (${tbl}, ${values}); END`,
  ];
  const out = [
    after(ni, "INSERT", `'INSERT', NULL, ${rid("NEW")}, NULL, ${pack("NEW.")}`),
    after(nu, "UPDATE", `'UPDATE', ${rid("OLD")}, ${rid("NEW")}, ${pack("OLD.")}, ${pack("NEW.")}`),
    after(nd, "DELETE", `'DELETE', ${rid("OLD")}, NULL, ${pack("OLD.")}, NULL`),
  ];
  if (t.uniques.length > 0) {
    const conflicts = t.uniques.map((u) =>
      "(" + u.columns.map((c) => `${q(c.name)} = NEW.${q(c.name)} COLLATE ${q(c.collation)}`)
        .join(" AND ") +
      ")"
    ).join(" OR ");
    const note = `INSERT INTO temp._ha_cand(tbl, old_rowid, old_v) SELECT ${tbl}, ` +
      `${t.withoutRowid ? "NULL" : "rowid"}, ${pack("")} FROM ${on} WHERE ${conflicts}`;
    for (const [name, event] of [[nbi, "INSERT"], [nbu, "UPDATE"]]) {
      out.push([
        name,
        `CREATE TEMP TRIGGER ${
          q(name)
        } BEFORE ${event} ON ${on} WHEN ${gate}_ha_rep(${tbl}) BEGIN ` +
        `${note}; END`,
      ]);
    }
  }
  return out;
}

/**
 * Whether the connection has the capture switch of the `ha_interrupt` extension: `ha_capturing()`
 * is evaluated by SQLite itself, so with capture switched off (`ha_capture(0)`, a replication
 * apply) a capture trigger's WHEN is false without a call into JavaScript per row (issue 13).
 * Without the extension the triggers call `_ha_on`/`_ha_rep` alone, which say the same.
 */
export function hasCaptureSwitch(db: DatabaseSync): boolean {
  try {
    db.prepare("SELECT ha_capturing()");
    return true;
  } catch {
    return false;
  }
}
