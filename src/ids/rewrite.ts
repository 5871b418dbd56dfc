/**
 * Rewrites an INSERT so that the rows it inserts without an id get one from `_ha_id()` (the node's
 * {@link IdGenerator}) instead of SQLite's `max(rowid) + 1`, which two nodes would choose alike.
 * The id is part of the statement before the row exists, so RETURNING, `last_insert_rowid()`,
 * triggers, foreign keys and change capture all see the id the row keeps on every node.
 *
 * - The rowid is missing from the column list (or the list is implicit and the table has no
 *   INTEGER PRIMARY KEY), or the statement says `DEFAULT VALUES`: the id is appended.
 * - The rowid is given (INTEGER PRIMARY KEY column, `rowid`, `oid`, `_rowid_`): it is kept, and
 *   only a NULL gets an id (`coalesce(value, _ha_id())`), as SQLite would choose one for NULL.
 * - `VALUES` rows are rewritten in place; another source (`SELECT`, compound) becomes a CTE whose
 *   rows are inserted by `SELECT … FROM "_ha_src" WHERE true` (the WHERE keeps an upsert clause
 *   unambiguous). Parameters keep their order.
 *
 * @example
 * ```ts
 * const t = { columns: ["id", "name"], rowid: "id", rowidNames: new Set(["id", "rowid", "oid", "_rowid_"]) };
 * rewriteInsert("INSERT INTO users(name) VALUES (?)", t);
 * // 'INSERT INTO users(name, "id") VALUES (?, _ha_id())'
 * ```
 * @module
 */
import { type Token, tokenize } from "../engine/lexer.ts";

/** What the rewrite needs to know about the table an INSERT writes. */
export interface IdTable {
  /** Columns an INSERT without a column list fills, in table order (no generated columns). */
  columns: string[];
  /** The name to add to a column list for the rowid: the INTEGER PRIMARY KEY, else `rowid`… */
  rowid: string;
  /** Lower-cased names that address the rowid in a column list. */
  rowidNames: Set<string>;
}

/** The SQL call that chooses an id. */
export const ID_CALL = "_ha_id()";

/** Quotes an SQL identifier. */
function quote(id: string): string {
  return `"${id.replaceAll('"', '""')}"`;
}

/** The name an identifier token stands for. */
function nameOf(sql: string, t: Token): string {
  const raw = sql.slice(t.start, t.end);
  if (t.kind !== "ident") return raw;
  const body = raw.slice(1, -1);
  return raw[0] === '"'
    ? body.replaceAll('""', '"')
    : raw[0] === "`"
    ? body.replaceAll("``", "`")
    : body;
}

const isWord = (t: Token | undefined, w: string) => t?.kind === "word" && t.text === w;
const isPunct = (t: Token | undefined, p: string) => t?.kind === "punct" && t.text === p;

/**
 * Splits the tokens between an opening parenthesis at `open` and its match at depth-1 commas:
 * the [start, end) token ranges of the items and the index of the closing parenthesis.
 */
function items(toks: Token[], open: number): { parts: [number, number][]; close: number } | null {
  const parts: [number, number][] = [];
  let depth = 0;
  let from = open + 1;
  for (let i = open; i < toks.length; i++) {
    const t = toks[i];
    if (isPunct(t, "(")) depth++;
    else if (isPunct(t, ")")) {
      depth--;
      if (depth === 0) {
        parts.push([from, i]);
        return { parts, close: i };
      }
    } else if (depth === 1 && isPunct(t, ",")) {
      parts.push([from, i]);
      from = i + 1;
    }
  }
  return null;
}

/**
 * The INSERT `sql` rewritten to take ids from `_ha_id()`, or null when its shape is not
 * understood (the caller decides what to do; SQLite accepted the original).
 */
export function rewriteInsert(sql: string, table: IdTable): string | null {
  const toks = tokenize(sql);
  let i = 0;
  let withText = "";
  if (isWord(toks[0], "WITH")) {
    let depth = 0;
    for (; i < toks.length; i++) {
      const t = toks[i];
      if (isPunct(t, "(")) depth++;
      else if (isPunct(t, ")")) depth--;
      else if (depth === 0 && (isWord(t, "INSERT") || isWord(t, "REPLACE"))) break;
    }
    if (i >= toks.length) return null;
    withText = sql.slice(0, toks[i].start).trimEnd();
  }
  const headStart = toks[i]?.start ?? 0;
  if (isWord(toks[i], "INSERT")) {
    i++;
    if (isWord(toks[i], "OR")) i += 2;
  } else if (isWord(toks[i], "REPLACE")) i++;
  else return null;
  if (!isWord(toks[i], "INTO")) return null;
  i += 2; // INTO name
  if (isPunct(toks[i], ".")) i += 2; // schema . name
  if (isWord(toks[i], "AS")) i += 2;
  if (i > toks.length) return null;
  const head = sql.slice(headStart, toks[i - 1].end);

  let targets = table.columns;
  let colsText = table.columns.map(quote).join(", ");
  if (isPunct(toks[i], "(")) {
    const list = items(toks, i);
    if (!list || list.parts.some(([a, b]) => b !== a + 1)) return null;
    targets = list.parts.map(([a]) => nameOf(sql, toks[a]));
    colsText = sql.slice(toks[i].end, toks[list.close].start).trim();
    i = list.close + 1;
  }
  const k = targets.findIndex((c) => table.rowidNames.has(c.toLowerCase()));
  const cols = k >= 0 ? colsText : `${colsText}, ${quote(table.rowid)}`;
  const prefix = withText ? `${withText} ` : "";

  if (isWord(toks[i], "DEFAULT") && isWord(toks[i + 1], "VALUES")) {
    const tail = sql.slice(toks[i + 1].end);
    return `${prefix}${head}(${quote(table.rowid)}) VALUES (${ID_CALL})${tail}`;
  }
  const srcStart = i;
  let depth = 0;
  for (; i < toks.length; i++) {
    const t = toks[i];
    if (isPunct(t, "(")) depth++;
    else if (isPunct(t, ")")) depth--;
    else if (
      depth === 0 &&
      (isWord(t, "RETURNING") || (isWord(t, "ON") && isWord(toks[i + 1], "CONFLICT")))
    ) break;
  }
  if (srcStart >= i) return null;
  const srcEnd = toks[i - 1].end;
  const tail = i < toks.length ? " " + sql.slice(toks[i].start) : sql.slice(srcEnd);
  const source = sql.slice(toks[srcStart].start, srcEnd);
  const valued = (exprs: string[]) =>
    k >= 0 ? exprs.map((e, j) => j === k ? `coalesce(${e}, ${ID_CALL})` : e) : [...exprs, ID_CALL];

  const rows = valuesRows(toks, srcStart, i);
  if (rows) {
    const out: string[] = [];
    for (const row of rows) {
      if (row.length !== targets.length) return null;
      out.push(
        `(${valued(row.map(([a, b]) => sql.slice(toks[a].start, toks[b - 1].end))).join(", ")})`,
      );
    }
    return `${prefix}${head}(${cols}) VALUES ${out.join(", ")}${tail}`;
  }
  const names = targets.map((_, j) => `"c${j + 1}"`);
  const ctes = withText ? `${withText}, ` : "WITH ";
  return `${ctes}"_ha_src"(${names.join(", ")}) AS (${source}) ${head}(${cols}) ` +
    `SELECT ${valued(names).join(", ")} FROM "_ha_src" WHERE true${tail}`;
}

/** The rows of a source that is only `VALUES (…), (…)` (token ranges per value), else null. */
function valuesRows(toks: Token[], from: number, to: number): [number, number][][] | null {
  if (!isWord(toks[from], "VALUES")) return null;
  const rows: [number, number][][] = [];
  let i = from + 1;
  for (;;) {
    if (!isPunct(toks[i], "(")) return null;
    const row = items(toks, i);
    if (!row || row.close >= to || row.parts.some(([a, b]) => b <= a)) return null;
    rows.push(row.parts);
    i = row.close + 1;
    if (i === to) return rows;
    if (!isPunct(toks[i], ",")) return null;
    i++;
  }
}
