/**
 * PostgreSQL type names for SQLite declared types, as the catalog shows them (`pg_type`,
 * `format_type`, `information_schema.columns.data_type`). The OID comes from the wire's own
 * mapping ({@link declaredOid}), so a column is described with the type its values are sent as.
 *
 * @example
 * ```ts
 * pgTypeOf("VARCHAR(50)"); // { oid: 1043, typmod: 54 }
 * formatType(1043, 54);     // "character varying(50)"
 * ```
 * @module
 */
import { declaredOid, OID } from "../types.ts";

/** One row of `pg_type`: OID, name, length, category, SQL name (format_type). */
export interface PgTypeInfo {
  oid: number;
  name: string;
  len: number;
  category: string;
  /** The name format_type and information_schema show. */
  sqlName: string;
}

/** The types the catalog lists (every OID the wire may send, and a few catalog types). */
export const PG_TYPES: PgTypeInfo[] = [
  { oid: OID.bool, name: "bool", len: 1, category: "B", sqlName: "boolean" },
  { oid: OID.bytea, name: "bytea", len: -1, category: "U", sqlName: "bytea" },
  { oid: OID.char, name: "char", len: 1, category: "Z", sqlName: '"char"' },
  { oid: OID.name, name: "name", len: 64, category: "S", sqlName: "name" },
  { oid: OID.int8, name: "int8", len: 8, category: "N", sqlName: "bigint" },
  { oid: OID.int2, name: "int2", len: 2, category: "N", sqlName: "smallint" },
  { oid: 22, name: "int2vector", len: -1, category: "A", sqlName: "int2vector" },
  { oid: OID.int4, name: "int4", len: 4, category: "N", sqlName: "integer" },
  { oid: 24, name: "regproc", len: 4, category: "N", sqlName: "regproc" },
  { oid: OID.text, name: "text", len: -1, category: "S", sqlName: "text" },
  { oid: OID.oid, name: "oid", len: 4, category: "N", sqlName: "oid" },
  { oid: 30, name: "oidvector", len: -1, category: "A", sqlName: "oidvector" },
  { oid: OID.json, name: "json", len: -1, category: "U", sqlName: "json" },
  { oid: OID.xml, name: "xml", len: -1, category: "U", sqlName: "xml" },
  { oid: OID.float4, name: "float4", len: 4, category: "N", sqlName: "real" },
  { oid: OID.float8, name: "float8", len: 8, category: "N", sqlName: "double precision" },
  { oid: OID.unknown, name: "unknown", len: -2, category: "X", sqlName: "unknown" },
  { oid: 1005, name: "_int2", len: -1, category: "A", sqlName: "smallint[]" },
  { oid: 1007, name: "_int4", len: -1, category: "A", sqlName: "integer[]" },
  { oid: 1009, name: "_text", len: -1, category: "A", sqlName: "text[]" },
  { oid: 1016, name: "_int8", len: -1, category: "A", sqlName: "bigint[]" },
  { oid: 1028, name: "_oid", len: -1, category: "A", sqlName: "oid[]" },
  { oid: OID.bpchar, name: "bpchar", len: -1, category: "S", sqlName: "character" },
  { oid: OID.varchar, name: "varchar", len: -1, category: "S", sqlName: "character varying" },
  { oid: OID.date, name: "date", len: 4, category: "D", sqlName: "date" },
  { oid: OID.time, name: "time", len: 8, category: "D", sqlName: "time without time zone" },
  {
    oid: OID.timestamp,
    name: "timestamp",
    len: 8,
    category: "D",
    sqlName: "timestamp without time zone",
  },
  {
    oid: OID.timestamptz,
    name: "timestamptz",
    len: 8,
    category: "D",
    sqlName: "timestamp with time zone",
  },
  { oid: OID.interval, name: "interval", len: 16, category: "T", sqlName: "interval" },
  { oid: OID.timetz, name: "timetz", len: 12, category: "D", sqlName: "time with time zone" },
  { oid: OID.numeric, name: "numeric", len: -1, category: "N", sqlName: "numeric" },
  { oid: 2205, name: "regclass", len: 4, category: "N", sqlName: "regclass" },
  { oid: 2206, name: "regtype", len: 4, category: "N", sqlName: "regtype" },
  { oid: OID.uuid, name: "uuid", len: 16, category: "U", sqlName: "uuid" },
  { oid: OID.jsonb, name: "jsonb", len: -1, category: "U", sqlName: "jsonb" },
];

const BY_OID = new Map(PG_TYPES.map((t) => [t.oid, t]));

/** The type of a declared SQLite column type: its OID and typmod (-1 when none). */
export function pgTypeOf(declared: string): { oid: number; typmod: number } {
  // No declared type: SQLite stores anything (BLOB affinity); text is the closest.
  if (!declared.trim()) return { oid: OID.text, typmod: -1 };
  const oid = declaredOid(declared) ?? OID.numeric;
  const m = /\(\s*(\d+)\s*(?:,\s*(\d+)\s*)?\)/.exec(declared);
  let typmod = -1;
  if (m && (oid === OID.varchar || oid === OID.bpchar)) typmod = Number(m[1]) + 4;
  // "CHAR(n)"/"CHARACTER(n)" map to text on the wire (SQLite keeps no padding)
  if (m && oid === OID.numeric) typmod = ((Number(m[1]) << 16) | Number(m[2] ?? 0)) + 4;
  return { oid, typmod };
}

/** `format_type(oid, typmod)`: the SQL name of a type. */
export function formatType(oid: number | null, typmod: number | null): string | null {
  if (oid === null) return null;
  const t = BY_OID.get(oid);
  if (!t) return "???";
  const mod = typmod ?? -1;
  if (mod >= 4 && (oid === OID.varchar || oid === OID.bpchar)) return `${t.sqlName}(${mod - 4})`;
  if (mod >= 4 && oid === OID.numeric) {
    const v = mod - 4;
    return `numeric(${v >> 16},${v & 0xffff})`;
  }
  return t.sqlName;
}

/** The `pg_type` name of an OID (for `::regtype`), or the number as text. */
export function typeName(oid: number): string {
  return BY_OID.get(oid)?.sqlName ?? String(oid);
}
