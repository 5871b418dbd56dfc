/**
 * Auto-parameterization of the simple protocol's point selects: in PostgreSQL's simple protocol
 * every query is new text (pgbench -S sends `… WHERE aid = 4711`, then `… WHERE aid = 815`), so
 * SQLite prepared each one afresh. For one narrow shape whose meaning provably does not depend
 * on a literal being written inline, the literals become `?` parameters bound to the same values
 * and one prepared statement serves every such query:
 *
 * `SELECT <names, dots, commas, stars> FROM <table> WHERE <col> <op> <literal> [AND|OR …]`
 *
 * with `<op>` one of `= == < > <= >= <> !=`, `<literal>` a decimal integer that fits in 64 bits
 * (bound as an integer, an optional sign stays in the text) or a plain `'…'` string (bound as
 * text). Both a literal and a parameter have no affinity, so the column's affinity applies alike.
 * Nothing else is touched: the select list (result names), ORDER BY / GROUP BY / LIMIT (ordinals,
 * counts), LIKE / GLOB, COLLATE, reals (SQLite's and JavaScript's text-to-double conversions need
 * not round alike), hex, blobs (`x'…'`), `E'…'`, NULL, expressions, joins, subqueries, aliases.
 * Plans stay as with literals: where a value can matter to the planner (a partial index's WHERE,
 * LIKE), SQLite compares the bound value at prepare time and re-prepares the statement when a
 * new value is bound (`exprCompareVariable`, `sqlite3_prepare_v2`).
 *
 * @example
 * ```ts
 * autoParameterize("SELECT abalance FROM accounts WHERE aid = 42");
 * // { sql: "SELECT abalance FROM accounts WHERE aid = ?", params: [42n], indices: [6] }
 * ```
 */
import type { SqlValue } from "../engine/types.ts";
import { type Token, tokenize } from "./sql.ts";

/** A statement with its literals replaced by `?`, and their values. */
export interface AutoParameterized {
  sql: string;
  params: SqlValue[];
  /** Where the bound literals were: their indices in `tokenize(sql)` of the original text. */
  indices: number[];
}

const INT64_MAX = 9223372036854775807n;
const DIGITS = /^[0-9]+$/;
const PLAIN_STRING = /^'(?:[^']|'')*'$/s;

function isWord(t: Token | undefined, w: string): boolean {
  return t !== undefined && t.kind === "word" && t.text === w;
}

function isPunct(t: Token | undefined, p: string): boolean {
  return t !== undefined && t.kind === "punct" && t.text === p;
}

function isName(t: Token | undefined): boolean {
  return t !== undefined && (t.kind === "word" || t.kind === "ident");
}

/** Index after a comparison operator starting at `i`, or -1. */
function operatorEnd(ts: Token[], i: number): number {
  const a = ts[i];
  if (a === undefined || a.kind !== "punct") return -1;
  const b = ts[i + 1];
  const joined = b !== undefined && b.kind === "punct" && b.start === a.end;
  if (a.text === "=") return joined && b.text === "=" ? i + 2 : i + 1;
  if (a.text === "<") return joined && (b.text === "=" || b.text === ">") ? i + 2 : i + 1;
  if (a.text === ">") return joined && b.text === "=" ? i + 2 : i + 1;
  if (a.text === "!") return joined && b.text === "=" ? i + 2 : -1;
  return -1;
}

/** The value of a literal token we parameterize, or undefined. */
function literalValue(t: Token | undefined): SqlValue | undefined {
  if (t === undefined) return undefined;
  if (t.kind === "number" && DIGITS.test(t.text)) {
    const v = BigInt(t.text);
    return v <= INT64_MAX ? v : undefined;
  }
  if (t.kind === "string" && PLAIN_STRING.test(t.text)) {
    return t.text.slice(1, -1).replaceAll("''", "'");
  }
  return undefined;
}

/** The parameterized form of `sql`, or null when it is not of the one shape above. */
export function autoParameterize(sql: string): AutoParameterized | null {
  // The engine refuses text with NUL; a literal holding one must not turn into a parameter.
  if (sql.includes("\0")) return null;
  const ts = tokenize(sql);
  if (!isWord(ts[0], "SELECT")) return null;
  let i = 1;
  while (i < ts.length && !isWord(ts[i], "FROM")) {
    const t = ts[i];
    if (!isName(t) && !isPunct(t, ",") && !isPunct(t, ".") && !isPunct(t, "*")) return null;
    i++;
  }
  if (i === 1 || i >= ts.length) return null;
  i++; // FROM
  if (!isName(ts[i])) return null;
  i++;
  if (isPunct(ts[i], ".")) {
    if (!isName(ts[i + 1])) return null;
    i += 2;
  }
  if (!isWord(ts[i], "WHERE")) return null;
  i++;
  const literals: Token[] = [];
  const params: SqlValue[] = [];
  const indices: number[] = [];
  for (;;) {
    if (!isName(ts[i])) return null;
    i++;
    if (isPunct(ts[i], ".")) {
      if (!isName(ts[i + 1])) return null;
      i += 2;
    }
    i = operatorEnd(ts, i);
    if (i < 0) return null;
    if (isPunct(ts[i], "-") || isPunct(ts[i], "+")) i++;
    const v = literalValue(ts[i]);
    if (v === undefined) return null;
    literals.push(ts[i]);
    params.push(v);
    indices.push(i);
    i++;
    if (i === ts.length) break;
    if (!isWord(ts[i], "AND") && !isWord(ts[i], "OR")) return null;
    i++;
  }
  let out = "";
  let at = 0;
  for (const t of literals) {
    out += sql.slice(at, t.start) + "?";
    at = t.end;
  }
  out += sql.slice(at);
  return { sql: out, params, indices };
}
