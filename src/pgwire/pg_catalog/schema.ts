/**
 * The SQLite schema of one database as the PostgreSQL catalog needs it: tables and views with
 * their columns, indexes (automatic ones included), and foreign keys. Read with one statement
 * (`sqlite_schema` joined with the `pragma_*` table functions) so the catalog can be rebuilt only
 * when that statement's answer changed. ha's own `_ha_*` objects and SQLite's `sqlite_*`
 * tables are left out.
 *
 * @example
 * ```ts
 * const rows = (await db.execute([{ sql: SCHEMA_SQL }]))[0].rows;
 * const schema = parseSchema(rows); // schema.relations[0].columns[0].name …
 * ```
 * @module
 */
import type { SqlValue } from "../../engine/types.ts";

/** A column of a table or view (`pragma_table_xinfo`). */
export interface SchemaColumn {
  name: string;
  /** The declared type, "" when none. */
  type: string;
  notNull: boolean;
  /** The DEFAULT expression as written, or null. */
  default: string | null;
  /** Position in the primary key (1-based), 0 when not part of it. */
  pk: number;
  /** 0 normal, 2/3 generated (virtual/stored). */
  hidden: number;
}

/** An index (`pragma_index_list` + `pragma_index_info`). */
export interface SchemaIndex {
  name: string;
  unique: boolean;
  /** "c" CREATE INDEX, "u" UNIQUE constraint, "pk" PRIMARY KEY. */
  origin: string;
  partial: boolean;
  /** Indexed column names (null for an expression). */
  columns: (string | null)[];
  /** The CREATE INDEX statement, null for automatic ones. */
  sql: string | null;
}

/** A foreign key (`pragma_foreign_key_list`), one entry per constraint. */
export interface SchemaForeignKey {
  id: number;
  table: string;
  from: string[];
  /** Referenced columns; empty = the referenced table's primary key. */
  to: (string | null)[];
  onUpdate: string;
  onDelete: string;
}

/** A table or a view. */
export interface SchemaRelation {
  name: string;
  kind: "table" | "view";
  sql: string;
  columns: SchemaColumn[];
  indexes: SchemaIndex[];
  foreignKeys: SchemaForeignKey[];
}

/** One database's schema. */
export interface Schema {
  relations: SchemaRelation[];
}

/**
 * The statement reading the schema: one row per table or view. Runs as a normal read (HTTP and
 * wire clients may run the same); inside an open transaction it sees that transaction's DDL.
 */
export const SCHEMA_SQL = `SELECT m.type, m.name, coalesce(m.sql, ''),
 (SELECT json_group_array(json_array(c.name, c.type, c."notnull", c.dflt_value, c.pk, c.hidden))
    FROM pragma_table_xinfo(m.name) c),
 (SELECT json_group_array(json_array(l.name, l."unique", l.origin, l.partial,
     json((SELECT json_group_array(i.name) FROM pragma_index_info(l.name) i)),
     (SELECT s.sql FROM sqlite_schema s WHERE s.type = 'index' AND s.name = l.name)))
    FROM pragma_index_list(m.name) l),
 (SELECT json_group_array(json_array(f.id, f."table", f."from", f."to", f.on_update, f.on_delete))
    FROM pragma_foreign_key_list(m.name) f)
FROM sqlite_schema m
WHERE m.type IN ('table', 'view') AND m.name NOT LIKE 'sqlite\\_%' ESCAPE '\\'
  AND m.name NOT LIKE '\\_ha\\_%' ESCAPE '\\'
ORDER BY m.name`;

/** The whole schema as one text: equal texts give equal catalogs. */
export const SCHEMA_FINGERPRINT_SQL =
  "SELECT group_concat(type || ' ' || name || ' ' || coalesce(sql, ''), char(10)) FROM sqlite_schema";

type Json = (string | number | null | Json[])[];

function json(v: SqlValue): Json[] {
  return typeof v === "string" && v ? JSON.parse(v) as Json[] : [];
}

/** Builds the schema from the rows of {@link SCHEMA_SQL}. */
export function parseSchema(rows: SqlValue[][]): Schema {
  const relations: SchemaRelation[] = [];
  for (const r of rows) {
    const kind = r[0] === "view" ? "view" : "table";
    const columns = json(r[3]).map((c): SchemaColumn => ({
      name: String(c[0]),
      type: String(c[1] ?? ""),
      notNull: Number(c[2]) === 1,
      default: c[3] === null ? null : String(c[3]),
      pk: Number(c[4]),
      hidden: Number(c[5]),
    }));
    const indexes = json(r[4]).map((i): SchemaIndex => ({
      name: String(i[0]),
      unique: Number(i[1]) === 1,
      origin: String(i[2]),
      partial: Number(i[3]) === 1,
      columns: (i[4] as unknown as (string | null)[]) ?? [],
      sql: i[5] === null ? null : String(i[5]),
    }));
    const fks = new Map<number, SchemaForeignKey>();
    for (const f of json(r[5])) {
      const id = Number(f[0]);
      let fk = fks.get(id);
      if (!fk) {
        fk = {
          id,
          table: String(f[1]),
          from: [],
          to: [],
          onUpdate: String(f[4]),
          onDelete: String(f[5]),
        };
        fks.set(id, fk);
      }
      fk.from.push(String(f[2]));
      fk.to.push(f[3] === null ? null : String(f[3]));
    }
    relations.push({
      name: String(r[1]),
      kind,
      sql: String(r[2]),
      columns,
      indexes: indexes.reverse(), // pragma_index_list lists the newest first
      foreignKeys: [...fks.values()].sort((a, b) => b.id - a.id),
    });
  }
  return { relations };
}
