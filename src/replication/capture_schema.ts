/**
 * The schema as capture sees it: the metadata of every user table (columns, key, unique indexes)
 * and the TEMP capture triggers installed on them (`capture.ts`), re-installed where they differ
 * after DDL. Shared by capture (what to log), changeset building (table shapes) and apply.
 *
 * @module
 */
import type { DatabaseSync } from "node:sqlite";
import type { RowIdentify } from "../config/mod.ts";
import {
  hasCaptureSwitch,
  lit,
  q,
  type TableMeta,
  triggerNames,
  triggerSql,
  type UniqueKey,
} from "./capture.ts";

/** Tables of SQLite and of ha itself: never captured nor applied. */
export const INTERNAL = /^(sqlite_|_ha_)/i;

/** User tables and their capture triggers on the writer connection. */
export class CaptureSchema {
  /** User table name → its metadata (the map is refilled in place, never replaced). */
  readonly tables = new Map<string, TableMeta>();
  /** INSTEAD OF trigger name → its view. */
  readonly triggerView = new Map<string, string>();
  /** Installed trigger name → its SQL. */
  private readonly installed = new Map<string, string>();
  /** The triggers test the extension's capture switch first (`capture.ts`). */
  readonly gated: boolean;
  /** Runs first in {@link dropTriggersOf} (the apply's TEMP views of the table go too). */
  beforeAlter: ((table: string) => void) | null = null;

  /** `onResync` runs first on every resync: caches of prepared statements and scopes go. */
  constructor(
    private readonly db: DatabaseSync,
    private readonly rowIdentify: RowIdentify,
    private readonly onResync: () => void,
  ) {
    this.gated = hasCaptureSwitch(db);
  }

  /** Reads the schema and (re)installs capture triggers where they differ. */
  resync(): void {
    this.onResync();
    this.tables.clear();
    this.triggerView.clear();
    const rows = this.db.prepare(
      "SELECT name, sql FROM main.sqlite_schema WHERE type = 'table'",
    ).all() as { name: string; sql: string | null }[];
    const desired = new Map<string, string>();
    for (const r of rows) {
      if (INTERNAL.test(r.name) || /^\s*CREATE\s+VIRTUAL/i.test(r.sql ?? "")) continue;
      const meta = this.tableMeta(r.name, r.sql ?? "");
      if (!meta) continue;
      this.tables.set(r.name, meta);
      for (const [name, sql] of triggerSql(meta, this.gated)) desired.set(name, sql);
    }
    const views = this.db.prepare(
      `SELECT t.name AS name, t.tbl_name AS view FROM main.sqlite_schema t
       JOIN main.sqlite_schema v ON v.type = 'view' AND v.name = t.tbl_name
       WHERE t.type = 'trigger'`,
    ).all() as { name: string; view: string }[];
    for (const v of views) this.triggerView.set(v.name, v.view);
    const present = new Set(
      (this.db.prepare(
        "SELECT name FROM temp.sqlite_schema WHERE type = 'trigger' AND name LIKE '\\_ha\\_%' ESCAPE '\\'",
      ).all() as { name: string }[]).map((r) => r.name),
    );
    for (const name of present) {
      if (desired.get(name) !== this.installed.get(name)) {
        this.db.exec(`DROP TRIGGER IF EXISTS temp.${q(name)}`);
        present.delete(name);
        this.installed.delete(name);
      }
    }
    for (const [name, sql] of desired) {
      if (present.has(name)) continue;
      this.db.exec(sql);
      this.installed.set(name, sql);
    }
  }

  /** Forgets what was installed and resyncs: after a rollback that may have undone DDL. */
  reinstall(): void {
    this.installed.clear();
    this.resync();
  }

  /** Forgets what was installed (a DROP TABLE drops its triggers with it). */
  forgetInstalled(): void {
    this.installed.clear();
  }

  /** Reads the metadata of every user table again (capture triggers: `resync` after apply). */
  reloadTables(): void {
    const rows = this.db.prepare(
      "SELECT name, sql FROM main.sqlite_schema WHERE type = 'table'",
    ).all() as { name: string; sql: string | null }[];
    this.tables.clear();
    for (const r of rows) {
      if (INTERNAL.test(r.name) || /^\s*CREATE\s+VIRTUAL/i.test(r.sql ?? "")) continue;
      const meta = this.tableMeta(r.name, r.sql ?? "");
      if (meta) this.tables.set(r.name, meta);
    }
  }

  /** Drops the capture triggers of `table` (before an ALTER or DROP TABLE). */
  dropTriggersOf(table: string): void {
    this.beforeAlter?.(table);
    for (const name of triggerNames(table)) {
      this.db.exec(`DROP TRIGGER IF EXISTS temp.${q(name)}`);
      this.installed.delete(name);
    }
  }

  private tableMeta(name: string, sql: string): TableMeta | null {
    const cols = this.db.prepare(`SELECT name, pk FROM main.pragma_table_info(${lit(name)})`)
      .all() as { name: string; pk: bigint | number }[];
    if (cols.length === 0) return null;
    const list = this.db.prepare(
      `SELECT wr FROM main.pragma_table_list(${lit(name)}) WHERE schema = 'main'`,
    ).get() as { wr: number | bigint } | undefined;
    const pk = cols.filter((c) => Number(c.pk) > 0).sort((a, b) => Number(a.pk) - Number(b.pk))
      .map((c) => c.name);
    return {
      name,
      columns: cols.map((c) => c.name),
      pk,
      withoutRowid: Number(list?.wr ?? 0) === 1,
      uniques: this.uniqueKeys(name),
      replaceConstraint: /\bON\s+CONFLICT\s+REPLACE\b/i.test(sql),
    };
  }

  /**
   * Unique indexes whose conflicts may delete a row under another key. With `--row-identify pk`
   * the primary key is left out: a row replaced under the same key is overwritten, not deleted.
   */
  private uniqueKeys(table: string): UniqueKey[] {
    const indexes = this.db.prepare(
      `SELECT name, origin FROM main.pragma_index_list(${lit(table)}) WHERE "unique" = 1`,
    ).all() as { name: string; origin: string }[];
    const out: UniqueKey[] = [];
    for (const ix of indexes) {
      if (ix.origin === "pk" && this.rowIdentify === "pk") continue;
      const cols = this.db.prepare(
        `SELECT cid, name, coll FROM main.pragma_index_xinfo(${lit(ix.name)}) WHERE key = 1
         ORDER BY seqno`,
      ).all() as { cid: number | bigint; name: string | null; coll: string }[];
      if (cols.some((c) => Number(c.cid) < 0 || c.name === null)) continue;
      out.push({ columns: cols.map((c) => ({ name: c.name!, collation: c.coll })) });
    }
    return out;
  }
}
