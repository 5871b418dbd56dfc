/**
 * PostgreSQL's `INSERT … VALUES (DEFAULT, …)` (Knex and other query builders send it for rows
 * of a multi-row insert that leave a column out), which SQLite does not parse: each `DEFAULT`
 * becomes the column's declared default expression, or NULL when it has none (an INTEGER
 * PRIMARY KEY given NULL still gets its id from the cluster, see src/ids).
 *
 * @example
 * ```ts
 * const target = valuesDefaultTarget(tokenize("INSERT INTO t (a, b) VALUES (DEFAULT, 1)")); // "t"
 * fillValuesDefaults("INSERT INTO t (a, b) VALUES (DEFAULT, 1)", [["a", "'x'"], ["b", null]]);
 * // "INSERT INTO t (a, b) VALUES (('x'), 1)"
 * ```
 * @module
 */
import { PgError } from "./errors.ts";
import { type Token, tokenize } from "./sql.ts";

function identName(t: Token): string {
  return t.kind === "ident" ? t.text.slice(1, -1).replaceAll('""', '"') : t.text.toLowerCase();
}

/** Index of the VALUES keyword of a plain `INSERT INTO t [(cols)] VALUES`, or -1. */
function valuesAt(ts: Token[]): number {
  if (ts[0]?.text !== "INSERT" && ts[0]?.text !== "REPLACE") return -1;
  return ts.findIndex((t) => t.kind === "word" && t.text === "VALUES");
}

/**
 * The table an INSERT writes when its VALUES hold a `DEFAULT` (as written, for
 * `pragma_table_info`), else null. Cheap: most statements stop at the first word.
 */
export function valuesDefaultTarget(ts: Token[]): string | null {
  const v = valuesAt(ts);
  if (v < 0 || ts[v - 1]?.text === "DEFAULT") return null;
  if (!ts.slice(v + 1).some((t) => t.kind === "word" && t.text === "DEFAULT")) return null;
  const into = ts.findIndex((t) => t.text === "INTO");
  let i = into + 1;
  if (ts[i + 1]?.text === ".") i += 2; // schema.table
  return ts[i] ? identName(ts[i]) : null;
}

/**
 * Replaces every `DEFAULT` in the VALUES rows of an INSERT with the default of its column.
 * `columns`: the table's columns in order with their DEFAULT expression (null = none).
 */
export function fillValuesDefaults(sql: string, columns: [string, string | null][]): string {
  const ts = tokenize(sql);
  const v = valuesAt(ts);
  if (v < 0) return sql;
  // the target columns: the list after the table name, else all of the table's
  let names = columns.map(([n]) => n);
  const open = ts.findIndex((t, i) => i < v && t.text === "(");
  if (open >= 0) {
    names = ts.slice(open + 1, v).filter((t) => t.kind === "word" || t.kind === "ident")
      .map(identName);
  }
  const defaults = new Map(columns.map(([n, d]) => [n.toLowerCase(), d]));
  const edits: { start: number; end: number; text: string }[] = [];
  let depth = 0;
  let position = 0;
  for (let i = v + 1; i < ts.length; i++) {
    const t = ts[i];
    if (t.text === "(") {
      if (depth === 0) position = 0;
      depth++;
    } else if (t.text === ")") depth--;
    else if (depth === 1 && t.text === ",") position++;
    else if (depth === 0 && t.kind === "word" && t.text !== "DEFAULT") break; // RETURNING, ON …
    else if (depth === 1 && t.kind === "word" && t.text === "DEFAULT") {
      const name = names[position];
      if (name === undefined) {
        throw new PgError("42601", "INSERT has more expressions than target columns");
      }
      const d = defaults.get(name.toLowerCase());
      edits.push({
        start: t.start,
        end: t.end,
        text: d === undefined || d === null ? "NULL" : `(${d})`,
      });
    }
  }
  let out = sql;
  for (const e of edits.reverse()) out = out.slice(0, e.start) + e.text + out.slice(e.end);
  return out;
}
