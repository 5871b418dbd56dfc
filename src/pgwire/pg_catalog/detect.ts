/**
 * Whether a statement is a catalog query, apart from the catalog itself (`mod.ts`): the classifier
 * runs it on every statement, the catalog's modules load on a connection's first catalog query (a
 * node's idle memory, issue 13).
 *
 * @module
 */
import type { Token } from "../sql.ts";
import { CATALOG_RELATIONS } from "./tables.ts";

/** Functions that only make sense against the catalog (a call marks a catalog query). */
const CATALOG_FUNCTIONS = new Set([
  "FORMAT_TYPE",
  "PG_GET_USERBYID",
  "PG_TABLE_IS_VISIBLE",
  "PG_GET_INDEXDEF",
  "PG_GET_CONSTRAINTDEF",
  "PG_GET_EXPR",
  "PG_GET_VIEWDEF",
  "OBJ_DESCRIPTION",
  "COL_DESCRIPTION",
  "SHOBJ_DESCRIPTION",
  "CURRENT_SCHEMAS",
  "TO_REGCLASS",
  "HAS_TABLE_PRIVILEGE",
  "HAS_SCHEMA_PRIVILEGE",
  "HAS_DATABASE_PRIVILEGE",
  "PG_ENCODING_TO_CHAR",
  "PG_GET_SERIAL_SEQUENCE",
]);
/** Cast targets that only exist in PostgreSQL's catalog. */
const CATALOG_CASTS = new Set(["REGCLASS", "REGTYPE", "REGPROC", "REGNAMESPACE", "REGROLE"]);

/**
 * True when a statement reads the PostgreSQL catalog: it names `pg_catalog`,
 * `information_schema`, a catalog relation (`pg_class`, `pg_type`, …), calls a catalog
 * function, or casts to `regclass`-like types.
 */
export function isCatalogQuery(ts: Token[]): boolean {
  const first = ts[0]?.text;
  if (first !== "SELECT" && first !== "WITH" && first !== "(") return false;
  for (let i = 0; i < ts.length; i++) {
    const t = ts[i];
    if (t.kind !== "word") continue;
    const w = t.text;
    if (w === "PG_CATALOG" || w === "INFORMATION_SCHEMA") return true;
    if (w.startsWith("PG_") && CATALOG_RELATIONS.has(w) && ts[i + 1]?.text !== "(") return true;
    if (CATALOG_FUNCTIONS.has(w) && ts[i + 1]?.text === "(") return true;
    if (CATALOG_CASTS.has(w) && ts[i - 1]?.text === "::") return true;
  }
  return false;
}
