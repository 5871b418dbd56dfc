/**
 * Maps the PostgreSQL DDL that ORMs and migration tools emit onto SQLite, so that generated ids
 * and defaults work (README "PostgreSQL DDL on SQLite"):
 *
 * | PostgreSQL                                              | SQLite                                   |
 * | ------------------------------------------------------- | ---------------------------------------- |
 * | `SERIAL`, `BIGSERIAL`, `SMALLSERIAL`, `SERIAL4/8`       | `INTEGER` (a primary key gets cluster ids) |
 * | `… GENERATED {ALWAYS \| BY DEFAULT} AS IDENTITY [(…)]`  | dropped, the column's type is `INTEGER`  |
 * | `DEFAULT now()`, `CURRENT_TIMESTAMP(n)`, `LOCALTIMESTAMP`, `transaction_timestamp()` | `DEFAULT CURRENT_TIMESTAMP` |
 * | `DEFAULT gen_random_uuid()`, `uuid_generate_v4()`       | `DEFAULT (<random v4 uuid expression>)`  |
 * | `DEFAULT true` / `false`                                | `DEFAULT 1` / `0`                        |
 * | `DEFAULT 'x'::character varying`                        | `DEFAULT 'x'` (casts dropped)            |
 * | `type[]` (arrays)                                       | `JSON`                                   |
 * | `CREATE INDEX [CONCURRENTLY] … USING btree (…)`         | `CREATE INDEX … (…)`                     |
 * | `DROP TABLE … CASCADE`                                  | `DROP TABLE …`                           |
 *
 * Types SQLite accepts as they are (`VARCHAR(n)`, `BOOLEAN`, `TIMESTAMP [WITHOUT TIME ZONE]`,
 * `NUMERIC(p,s)`, `UUID`, `JSONB`, `BYTEA`, …) are kept: the declared type decides the type OID
 * results are sent with. Statements that are not DDL are returned unchanged at the cost of one
 * look at their first word.
 *
 * @example
 * ```ts
 * mapDdl("CREATE TABLE t (id SERIAL NOT NULL, at TIMESTAMP DEFAULT now(), PRIMARY KEY (id))");
 * // "CREATE TABLE t (id INTEGER NOT NULL, at TIMESTAMP DEFAULT CURRENT_TIMESTAMP, PRIMARY KEY (id))"
 * ```
 * @module
 */
import { PgError } from "./errors.ts";
import { type Token, tokenize } from "./sql.ts";

const SERIALS = new Set(["SERIAL", "SERIAL4", "BIGSERIAL", "SERIAL8", "SMALLSERIAL", "SERIAL2"]);
/** Words that start a table constraint rather than a column definition. */
const TABLE_CONSTRAINTS = new Set([
  "CONSTRAINT",
  "PRIMARY",
  "UNIQUE",
  "CHECK",
  "FOREIGN",
  "EXCLUDE",
]);
/** Words that end a column's DEFAULT expression. */
const COLUMN_CONSTRAINTS = new Set([
  "NOT",
  "NULL",
  "PRIMARY",
  "UNIQUE",
  "CHECK",
  "REFERENCES",
  "CONSTRAINT",
  "GENERATED",
  "COLLATE",
  "DEFAULT",
]);
const NOW = new Set([
  "NOW",
  "CURRENT_TIMESTAMP",
  "LOCALTIMESTAMP",
  "TRANSACTION_TIMESTAMP",
  "STATEMENT_TIMESTAMP",
  "CLOCK_TIMESTAMP",
]);
const UUID = new Set(["GEN_RANDOM_UUID", "UUID_GENERATE_V4"]);
/** A random version-4 UUID in SQLite (evaluated per row, like PostgreSQL's default). */
const UUID_SQL = "(lower(hex(randomblob(4))) || '-' || lower(hex(randomblob(2))) || '-4' || " +
  "substr(lower(hex(randomblob(2))), 2) || '-' || substr('89ab', 1 + (abs(random()) % 4), 1) || " +
  "substr(lower(hex(randomblob(2))), 2) || '-' || lower(hex(randomblob(6))))";

/** The first two words of a statement, when it may be DDL this module maps. */
function ddlKind(ts: Token[]): "table" | "alter" | "index" | "drop" | null {
  const [a, b, c] = ts.map((t) => t.text);
  if (a === "CREATE") {
    if (b === "TABLE" || (["TEMP", "TEMPORARY", "UNLOGGED"].includes(b) && c === "TABLE")) {
      return "table";
    }
    if (b === "INDEX" || (b === "UNIQUE" && c === "INDEX")) return "index";
    if (b === "SEQUENCE") {
      throw new PgError("0A000", "CREATE SEQUENCE is not supported by ha (use SERIAL columns)");
    }
    if (b === "TYPE") throw new PgError("0A000", "CREATE TYPE is not supported by ha");
  }
  if (a === "ALTER" && b === "TABLE") return "alter";
  if (a === "DROP" && (b === "TABLE" || b === "INDEX" || b === "VIEW")) return "drop";
  return null;
}

/** Cheap test: could `sql` be DDL this module changes? */
export function mayMapDdl(firstWord: string): boolean {
  return firstWord === "CREATE" || firstWord === "ALTER" || firstWord === "DROP";
}

/** Rewrites one PostgreSQL DDL statement for SQLite (see the module doc); others unchanged. */
export function mapDdl(sql: string): string {
  const ts = tokenize(sql);
  const kind = ddlKind(ts);
  if (!kind) return sql;
  const edits: { start: number; end: number; text: string }[] = [];
  const edit = (from: Token, to: Token, text: string) =>
    edits.push({ start: from.start, end: to.end, text });

  if (kind === "index") {
    for (let i = 0; i < ts.length; i++) {
      if (ts[i].text === "CONCURRENTLY") edit(ts[i], ts[i], "");
      if (ts[i].text === "USING" && ts[i + 1]?.kind === "word" && ts[i + 2]?.text === "(") {
        edit(ts[i], ts[i + 1], "");
      }
    }
  } else if (kind === "drop") {
    const last = ts[ts.length - 1]?.text === ";" ? ts.length - 2 : ts.length - 1;
    if (ts[last]?.text === "CASCADE" || ts[last]?.text === "RESTRICT") edit(ts[last], ts[last], "");
  } else if (kind === "alter") {
    const add = ts.findIndex((t) => t.text === "ADD");
    if (add > 0) {
      if (ts[add + 1]?.text === "CONSTRAINT" || ts[add + 1]?.text === "FOREIGN") {
        throw new PgError(
          "0A000",
          "ALTER TABLE … ADD CONSTRAINT is not supported by SQLite: declare constraints in CREATE TABLE",
        );
      }
      const start = ts[add + 1]?.text === "COLUMN" ? add + 2 : add + 1;
      let s = start;
      if (ts[s]?.text === "IF" && ts[s + 1]?.text === "NOT" && ts[s + 2]?.text === "EXISTS") s += 3;
      mapColumn(ts, s, ts.length, edit);
    }
  } else {
    const open = ts.findIndex((t) => t.text === "(");
    if (open < 0) return sql;
    let depth = 0;
    let itemStart = open + 1;
    for (let i = open; i < ts.length; i++) {
      const t = ts[i].text;
      if (t === "(") depth++;
      else if (t === ")") depth--;
      if ((t === "," && depth === 1) || (t === ")" && depth === 0)) {
        if (!TABLE_CONSTRAINTS.has(ts[itemStart]?.text)) mapColumn(ts, itemStart, i, edit);
        itemStart = i + 1;
        if (depth === 0) break;
      }
    }
  }
  if (!edits.length) return sql;
  edits.sort((a, b) => b.start - a.start);
  let out = sql;
  for (const e of edits) out = out.slice(0, e.start) + e.text + out.slice(e.end);
  return out;
}

/** Maps one column definition `name type [constraints]` spanning tokens [from, to). */
function mapColumn(
  ts: Token[],
  from: number,
  to: number,
  edit: (a: Token, b: Token, text: string) => void,
): void {
  const typeAt = from + 1;
  const type = ts[typeAt];
  if (!type || typeAt >= to) return;
  let integer = false;
  if (type.kind === "word" && SERIALS.has(type.text)) {
    edit(type, type, "INTEGER");
    integer = true;
  }
  for (let i = typeAt + 1; i < to; i++) {
    const t = ts[i];
    // type[] → JSON
    if (t.kind === "ident" && t.text === "[]" && i <= typeAt + 3) {
      edit(type, t, "JSON");
      continue;
    }
    if (t.text === "GENERATED" && ts[i + 1]?.text !== undefined) {
      // GENERATED {ALWAYS | BY DEFAULT} AS IDENTITY [( … )]
      let j = i + 1;
      if (ts[j].text === "ALWAYS") j++;
      else if (ts[j].text === "BY" && ts[j + 1]?.text === "DEFAULT") j += 2;
      if (ts[j]?.text === "AS" && ts[j + 1]?.text === "IDENTITY") {
        j += 1;
        if (ts[j + 1]?.text === "(") j = closing(ts, j + 1);
        edit(t, ts[j], "");
        if (!integer && type.kind === "word" && type.text.includes("INT")) {
          edit(type, type, "INTEGER");
          integer = true;
        }
        i = j;
      }
      continue;
    }
    if (t.text === "DEFAULT") {
      let j = i + 1;
      let depth = 0;
      while (j < to) {
        const x = ts[j];
        if (x.text === "(") depth++;
        else if (x.text === ")") depth--;
        else if (depth === 0 && x.kind === "word" && COLUMN_CONSTRAINTS.has(x.text) && j > i + 1) {
          break;
        }
        j++;
      }
      if (j > i + 1) {
        const mapped = mapDefault(ts.slice(i + 1, j));
        if (mapped !== null) edit(ts[i + 1], ts[j - 1], mapped);
      }
      i = j - 1;
    }
  }
}

function closing(ts: Token[], open: number): number {
  let depth = 0;
  for (let i = open; i < ts.length; i++) {
    if (ts[i].text === "(") depth++;
    else if (ts[i].text === ")" && --depth === 0) return i;
  }
  return ts.length - 1;
}

/** SQLite for a PostgreSQL DEFAULT expression, or null to keep it. */
function mapDefault(expr: Token[]): string | null {
  // drop trailing ::type casts
  const cast = expr.findIndex((t) => t.text === "::");
  const body = cast >= 0 ? expr.slice(0, cast) : expr;
  const first = body[0];
  if (!first) return null;
  if (first.kind === "word" && NOW.has(first.text)) return "CURRENT_TIMESTAMP";
  if (first.kind === "word" && UUID.has(first.text)) return UUID_SQL;
  if (
    body.length === 1 && first.kind === "word" && (first.text === "TRUE" || first.text === "FALSE")
  ) {
    return first.text === "TRUE" ? "1" : "0";
  }
  if (cast < 0) return null;
  const text = body.map((t) => t.text).join(" ");
  return body.length === 1 ? (first.kind === "word" ? first.text : text) : `(${text})`;
}
