/**
 * Rewrites the PostgreSQL-only syntax of catalog queries into SQLite: `::type` casts
 * (`::regclass`, `::oid`, …), `OPERATOR(pg_catalog.~)` and the regex operators (`~`, `!~`,
 * `~*`), `COLLATE pg_catalog.default`, `= ANY(ARRAY[…])` / `= ANY(col)`, `ARRAY(SELECT …)`,
 * `E'…'` strings, `$N` parameters, `pg_catalog.`-qualified function names, bare
 * `current_user`-style functions, `IS [NOT] DISTINCT FROM`, `ILIKE`, and boolean columns
 * compared with `'t'`/`'f'`. Only catalog queries go through here; ordinary SQL is SQLite's.
 *
 * @example
 * ```ts
 * rewriteCatalogSql("SELECT 'users'::regclass::oid WHERE 'a' ~ '^a'");
 * // "SELECT CAST(_pg_regclass('users') AS INTEGER) WHERE 'a' REGEXP '^a'"
 * ```
 * @module
 */
import { type Token, tokenize } from "../sql.ts";
import { BOOLEAN_COLUMNS } from "./tables.ts";

/** One piece of output: the input token index it starts at and its text. */
interface Piece {
  at: number;
  text: string;
}

const INTEGER_TYPES = new Set([
  "OID",
  "INT",
  "INT2",
  "INT4",
  "INT8",
  "INTEGER",
  "BIGINT",
  "SMALLINT",
  "XID",
  "REGNAMESPACE",
  "REGROLE",
  "REGPROCEDURE",
  "REGOPER",
  "REGOPERATOR",
]);
const TEXT_TYPES = new Set(["TEXT", "NAME", "VARCHAR", "CHAR", "BPCHAR", "CHARACTER", "REGPROC"]);
const REAL_TYPES = new Set(["FLOAT", "FLOAT4", "FLOAT8", "REAL", "DOUBLE", "NUMERIC", "DECIMAL"]);
/** Words that, before `(`, are not a function name (so not part of a cast's operand). */
const NOT_FUNCTIONS = new Set([
  "AND",
  "OR",
  "NOT",
  "IN",
  "ON",
  "WHERE",
  "SELECT",
  "FROM",
  "AS",
  "WHEN",
  "THEN",
  "ELSE",
  "VALUES",
  "EXISTS",
  "ANY",
  "ALL",
  "IS",
  "LIKE",
  "BY",
  "JOIN",
  "USING",
  "SET",
  "RETURNING",
]);
/** Bare words that are function calls in PostgreSQL. */
const BARE_FUNCTIONS = new Set([
  "CURRENT_USER",
  "SESSION_USER",
  "CURRENT_ROLE",
  "CURRENT_CATALOG",
  "CURRENT_SCHEMA",
]);
const RENAMED_FUNCTIONS: Record<string, string> = {
  STRING_AGG: "group_concat",
  ARRAY_AGG: "_pg_array_agg",
  BOOL_AND: "min",
  BOOL_OR: "max",
  JSON_BUILD_OBJECT: "json_object",
  JSONB_BUILD_OBJECT: "json_object",
  JSON_AGG: "json_group_array",
  JSONB_AGG: "json_group_array",
};
/** SQLite keywords PostgreSQL allows as a column alias after AS. */
const ALIAS_KEYWORDS = new Set([
  "DEFAULT",
  "ORDER",
  "GROUP",
  "TABLE",
  "INDEX",
  "PRIMARY",
  "CHECK",
  "REFERENCES",
  "UNIQUE",
  "TRANSACTION",
  "ACTION",
  "KEY",
  "COLUMN",
  "FOREIGN",
]);

/** Set-returning functions usable in FROM: the JSON array of their rows. */
const SET_RETURNING: Record<string, (args: string) => string> = {
  GENERATE_SERIES: (a) => `_pg_series(${a})`,
  UNNEST: (a) => `_pg_array_json(${a})`,
  PG_PARTITION_ANCESTORS: (a) => `json_array(${a})`,
};

/** The index of the `(` matching the `)` at `close` (scanning back), or -1. */
function openingOf(ts: Token[], close: number): number {
  let depth = 0;
  for (let i = close; i >= 0; i--) {
    if (ts[i].text === ")") depth++;
    else if (ts[i].text === "(" && --depth === 0) return i;
  }
  return -1;
}

/** The index of the `)` matching the `(` at `open`, or -1. */
function closingOf(ts: Token[], open: number): number {
  let depth = 0;
  for (let i = open; i < ts.length; i++) {
    if (ts[i].text === "(") depth++;
    else if (ts[i].text === ")" && --depth === 0) return i;
  }
  return -1;
}

/** Where the operand of a cast (or postfix) ending at token `end` starts. */
function operandStart(ts: Token[], end: number): number {
  let i = end;
  if (ts[i].text === ")") {
    i = openingOf(ts, i);
    if (i < 0) return end;
    const fn = ts[i - 1];
    if (fn && (fn.kind === "word" || fn.kind === "ident") && !NOT_FUNCTIONS.has(fn.text)) i--;
    else return i;
  }
  // a qualified name: a.b.c
  while (
    i >= 2 && ts[i - 1].text === "." && (ts[i - 2].kind === "word" || ts[i - 2].kind === "ident")
  ) {
    i -= 2;
  }
  return i;
}

/** Reads a type name after `::` starting at `i`; returns [upper-cased base name, next index]. */
function typeAt(ts: Token[], i: number): [string, number] {
  if (ts[i]?.text === "PG_CATALOG" && ts[i + 1]?.text === ".") i += 2;
  const t = ts[i];
  if (!t) return ["", i];
  let name = t.kind === "ident" ? t.text.slice(1, -1).toUpperCase() : t.text;
  i++;
  // multi-word types
  const two = `${name} ${ts[i]?.text ?? ""}`;
  if (two === "DOUBLE PRECISION" || two === "CHARACTER VARYING") {
    name = name === "DOUBLE" ? "DOUBLE" : "VARCHAR";
    i++;
  }
  if (
    (name === "TIMESTAMP" || name === "TIME") &&
    (ts[i]?.text === "WITH" || ts[i]?.text === "WITHOUT")
  ) i += 3; // WITH[OUT] TIME ZONE
  if (ts[i]?.text === "(") i = closingOf(ts, i) + 1; // varchar(60)
  // array suffix: the lexer reads `[]` as a bracket-quoted identifier
  let array = false;
  while (ts[i]?.kind === "ident" && ts[i].text === "[]") {
    array = true;
    i++;
  }
  return [array ? `${name}[]` : name, i];
}

function castTo(type: string, operand: string): string {
  if (type.endsWith("[]")) return operand;
  if (type === "REGCLASS") return `_pg_regclass(${operand})`;
  if (type === "REGTYPE") return `_pg_regtype(${operand})`;
  if (INTEGER_TYPES.has(type)) return `CAST(${operand} AS INTEGER)`;
  if (TEXT_TYPES.has(type)) return `CAST(${operand} AS TEXT)`;
  if (REAL_TYPES.has(type)) return `CAST(${operand} AS REAL)`;
  if (type === "BOOL" || type === "BOOLEAN") return `_pg_bool(${operand})`;
  return operand;
}

/** Decodes the body of an `E'…'` string into a SQLite string literal. */
function escapeString(body: string): string {
  const map: Record<string, string> = { n: "\n", t: "\t", r: "\r", b: "\b", f: "\f" };
  const s = body.replace(/\\(.)/g, (_m, c: string) => map[c] ?? c);
  return `'${s.replaceAll("'", "''")}'`;
}

/** The elements of an `ARRAY[...]` (the lexer's bracket identifier), rewritten. */
function arrayItems(bracket: string): string {
  return rewriteCatalogSql(bracket.slice(1, -1));
}

/**
 * `SELECT unnest(a) x, generate_subscripts(a, 1) n FROM t …` (set-returning functions in a
 * select list, zipped by PostgreSQL) → `SELECT _srf.value x, (_srf.key + 1) n FROM t,
 * json_each(_pg_array_json(a)) AS _srf …`: one array per SELECT.
 */
function lateralizeSrf(sql: string): string {
  const ts = tokenize(sql);
  const at = ts.findIndex((t, i) =>
    (t.text === "UNNEST" || t.text === "GENERATE_SUBSCRIPTS") && ts[i + 1]?.text === "(" &&
    (ts[i - 1]?.text === "SELECT" || ts[i - 1]?.text === ",")
  );
  if (at < 0) return sql;
  const depthAt = (i: number) => {
    let d = 0;
    for (let k = 0; k < i; k++) {
      if (ts[k].text === "(") d++;
      else if (ts[k].text === ")") d--;
    }
    return d;
  };
  const level = depthAt(at);
  let sel = at;
  while (sel > 0 && !(ts[sel].text === "SELECT" && depthAt(sel) === level)) sel--;
  let from = at;
  while (from < ts.length && !(ts[from].text === "FROM" && depthAt(from) === level)) from++;
  if (from >= ts.length) return sql;
  let end = from + 1;
  const stops = new Set(["WHERE", "GROUP", "ORDER", "LIMIT", "UNION", ")", ";", "HAVING"]);
  while (end < ts.length && !(stops.has(ts[end].text) && depthAt(end) === level)) end++;
  const edits: { start: number; end: number; text: string }[] = [];
  let array = "";
  for (let i = sel; i < from; i++) {
    const t = ts[i];
    if ((t.text === "UNNEST" || t.text === "GENERATE_SUBSCRIPTS") && ts[i + 1]?.text === "(") {
      const close = closingOf(ts, i + 1);
      let argEnd = close - 1;
      if (t.text === "GENERATE_SUBSCRIPTS") {
        // drop the dimension argument
        let k = close - 1;
        while (k > i + 2 && ts[k].text !== ",") k--;
        if (k > i + 2) argEnd = k - 1;
      }
      const arg = sql.slice(ts[i + 2].start, ts[argEnd].end);
      if (!array) array = arg;
      else if (arg !== array) return sql;
      const start = ts[i - 1]?.text === "." ? ts[i - 2].start : t.start;
      edits.push({
        start,
        end: ts[close].end,
        text: t.text === "UNNEST" ? "_srf.value" : "(_srf.key + 1)",
      });
      i = close;
    }
  }
  const insertAt = ts[end - 1].end;
  edits.push({
    start: insertAt,
    end: insertAt,
    text: `, json_each(_pg_array_json(${array})) AS _srf`,
  });
  edits.sort((a, b) => b.start - a.start);
  let out = sql;
  for (const e of edits) out = out.slice(0, e.start) + e.text + out.slice(e.end);
  return lateralizeSrf(out);
}

/** Rewrites one catalog statement; see the module doc for what changes. */
export function rewriteCatalogSql(input: string): string {
  const sql = lateralizeSrf(input);
  const ts = tokenize(sql);
  const out: Piece[] = [];
  // A token's gap: a space when the source had any before it (or before tokens dropped in front).
  let dropped = false;
  const gap = (i: number) => {
    const g = dropped || (i > 0 && ts[i].start > ts[i - 1].end) ? " " : "";
    dropped = false;
    return g;
  };
  const push = (at: number, text: string) => {
    out.push({ at, text: gap(at) + text });
    if (at === likeEscapeAfter || at === likeEscapeAfter - 1 && ts[at].text === "E") {
      out.push({ at, text: " ESCAPE '\\'" });
    }
  };
  /** Replaces the output from token `from` on with `text` (kept as one piece). */
  const collapse = (from: number, wrap: (s: string) => string) => {
    let k = out.length;
    while (k > 0 && out[k - 1].at >= from) k--;
    const inner = out.splice(k).map((p) => p.text).join("").trimStart();
    out.push({ at: from, text: gap(from) + wrap(inner) });
  };
  const text = (t: Token) => sql.slice(t.start, t.end);
  let lastCast = { from: -1, end: -1 };
  let likeEscapeAfter = -1;

  for (let i = 0; i < ts.length; i++) {
    const t = ts[i];
    const next = ts[i + 1];
    // E'...'
    if (t.kind === "word" && t.text === "E" && next?.kind === "string" && next.start === t.end) {
      push(i, escapeString(next.text.slice(1, -1).replaceAll("''", "'")));
      i++;
      continue;
    }
    // OPERATOR(pg_catalog.~) → the operator itself
    if (t.kind === "word" && t.text === "OPERATOR" && next?.text === "(") {
      const close = closingOf(ts, i + 1);
      let j = i + 2;
      if (ts[j]?.text === "PG_CATALOG" && ts[j + 1]?.text === ".") j += 2;
      const op = ts.slice(j, close).map((x) => x.text).join("");
      push(i, regexOperator(op) ?? op);
      i = close;
      continue;
    }
    if (t.kind === "punct" && (t.text === "~" || t.text === "!")) {
      let op = t.text;
      let j = i + 1;
      while (
        ts[j]?.kind === "punct" && ["~", "*"].includes(ts[j].text) && ts[j].start === ts[j - 1].end
      ) {
        op += ts[j].text;
        j++;
      }
      const sub = regexOperator(op);
      if (sub) {
        push(i, sub);
        i = j - 1;
        continue;
      }
    }
    // COLLATE <name> → dropped (SQLite's collations are not PostgreSQL's)
    if (t.kind === "word" && t.text === "COLLATE") {
      let j = i + 1;
      if (ts[j]?.text === "PG_CATALOG" && ts[j + 1]?.text === ".") j += 2;
      i = j;
      dropped = true;
      continue;
    }
    // pg_catalog.f( → f(
    if (
      t.kind === "word" && (t.text === "PG_CATALOG" || t.text === "INFORMATION_SCHEMA") &&
      next?.text === "." && ts[i + 2]?.kind === "word" && ts[i + 3]?.text === "("
    ) {
      dropped = gap(i) !== "";
      i++;
      continue;
    }
    // ::type
    if (t.kind === "punct" && t.text === "::") {
      // x::a::b casts the result of the first cast
      const from = i === lastCast.end ? lastCast.from : operandStart(ts, i - 1);
      const [type, after] = typeAt(ts, i + 1);
      collapse(from, (s) => castTo(type, s));
      lastCast = { from, end: after };
      i = after - 1;
      continue;
    }
    // = ANY(ARRAY[...]) / = ANY(expr) / <> ALL(...)
    if (t.kind === "word" && (t.text === "ANY" || t.text === "ALL") && next?.text === "(") {
      const last = out[out.length - 1]?.text.trim();
      const before = out[out.length - 2]?.text.trim();
      const two = before === "<" || before === "!" ? before + last : "";
      const neg = t.text === "ALL" && (two === "<>" || two === "!=");
      if ((t.text === "ANY" && last === "=" && !two) || neg) {
        out.splice(out.length - (neg ? 2 : 1));
        const close = closingOf(ts, i + 1);
        const a = ts[i + 2];
        const inIdx = neg ? "NOT IN" : "IN";
        if (a?.text === "ARRAY" && ts[i + 3]?.kind === "ident" && ts[i + 4]?.text === ")") {
          dropped = true;
          push(i, `${inIdx} (${arrayItems(ts[i + 3].text)})`);
        } else {
          const inner = rewriteCatalogSql(sql.slice(ts[i + 2].start, ts[close - 1].end));
          dropped = true;
          push(i, `${inIdx} (SELECT value FROM json_each(_pg_array_json(${inner})))`);
        }
        i = close;
        continue;
      }
    }
    // ARRAY[...] / ARRAY(SELECT ...)
    if (t.kind === "word" && t.text === "ARRAY") {
      if (next?.kind === "ident" && next.text.startsWith("[")) {
        push(i, `_pg_array(${arrayItems(next.text)})`);
        i++;
        continue;
      }
      if (next?.text === "(") {
        const close = closingOf(ts, i + 1);
        const inner = rewriteCatalogSql(sql.slice(ts[i + 2].start, ts[close - 1].end));
        push(
          i,
          `(SELECT _pg_array_agg(v) FROM (SELECT NULL AS v WHERE 0 UNION ALL SELECT * FROM (${inner})))`,
        );
        i = close;
        continue;
      }
    }
    // set-returning functions in FROM: generate_series(a, b) s, unnest(arr) x,
    // f(…) WITH ORDINALITY AS a(value, n)
    if (
      t.kind === "word" && t.text in SET_RETURNING && next?.text === "(" &&
      ["FROM", "JOIN", ","].includes(ts[i - 1]?.text === "." ? ts[i - 3]?.text : ts[i - 1]?.text)
    ) {
      const close = closingOf(ts, i + 1);
      const args = rewriteCatalogSql(sql.slice(ts[i + 2].start, ts[close - 1].end));
      let j = close + 1;
      const ordinality = ts[j]?.text === "WITH" && ts[j + 1]?.text === "ORDINALITY";
      if (ordinality) j += 2;
      if (ts[j]?.text === "AS") j++;
      const hasAlias = ts[j]?.kind === "word" && !NOT_FUNCTIONS.has(ts[j].text) &&
        !["LEFT", "INNER", "CROSS", "ORDER", "GROUP", "LIMIT", "UNION"].includes(ts[j].text);
      const alias = hasAlias ? text(ts[j]) : t.text.toLowerCase();
      let cols = [alias, "ordinality"];
      if (hasAlias && ts[j + 1]?.text === "(") {
        const end = closingOf(ts, j + 1);
        cols = ts.slice(j + 2, end).filter((x) => x.text !== ",").map(text);
        j = end;
      }
      const source = SET_RETURNING[t.text](args);
      const extra = ordinality ? `, key + 1 AS ${cols[1] ?? "ordinality"}` : "";
      push(i, `(SELECT value AS ${cols[0]}${extra} FROM json_each(${source})) AS ${alias}`);
      i = hasAlias ? j : close;
      continue;
    }
    // expr[i] subscripts (the lexer reads `[i]` as a bracket-quoted identifier)
    if (
      t.kind === "ident" && t.text.startsWith("[") && t.text !== "[]" && i > 0 &&
      (ts[i - 1].kind === "word" || ts[i - 1].kind === "ident" || ts[i - 1].text === ")") &&
      ts[i - 1].text !== "ARRAY"
    ) {
      const from = operandStart(ts, i - 1);
      const index = rewriteCatalogSql(t.text.slice(1, -1));
      collapse(from, (s) => `_pg_subscript(${s}, ${index})`);
      continue;
    }
    if (
      t.kind === "word" && BARE_FUNCTIONS.has(t.text) && next?.text !== "(" &&
      ts[i - 1]?.text !== "."
    ) {
      push(i, `${t.text.toLowerCase()}()`);
      continue;
    }
    if (t.kind === "word" && t.text in RENAMED_FUNCTIONS && next?.text === "(") {
      push(i, RENAMED_FUNCTIONS[t.text]);
      continue;
    }
    if (t.kind === "word" && ALIAS_KEYWORDS.has(t.text) && ts[i - 1]?.text === "AS") {
      push(i, `"${text(t).toLowerCase()}"`);
      continue;
    }
    // substring(x FROM a [FOR b]) → _pg_substring(x, a, b)
    if (t.kind === "word" && t.text === "SUBSTRING" && next?.text === "(") {
      const close = closingOf(ts, i + 1);
      let depth = 0;
      const parts: string[] = [];
      let from = i + 2;
      for (let k = i + 2; k <= close; k++) {
        const x = ts[k].text;
        if (x === "(") depth++;
        else if (x === ")" && depth > 0) depth--;
        else if ((depth === 0 && (x === "FROM" || x === "FOR" || x === ",")) || k === close) {
          parts.push(rewriteCatalogSql(sql.slice(ts[from].start, ts[k - 1].end)));
          from = k + 1;
        }
      }
      push(i, `_pg_substring(${parts.join(", ")})`);
      i = close;
      continue;
    }
    if (t.kind === "word" && (t.text === "ILIKE" || t.text === "LIKE")) {
      // PostgreSQL's LIKE escapes with a backslash by default, SQLite's only with ESCAPE
      const str = next?.text === "E" ? i + 2 : i + 1;
      if (
        ts[str]?.kind === "string" && ts[str].text.includes("\\") && ts[str + 1]?.text !== "ESCAPE"
      ) {
        likeEscapeAfter = str;
      }
      push(i, "LIKE");
      continue;
    }
    // IS [NOT] DISTINCT FROM
    if (t.kind === "word" && t.text === "IS") {
      if (next?.text === "DISTINCT" && ts[i + 2]?.text === "FROM") {
        push(i, "IS NOT");
        i += 2;
        continue;
      }
      if (next?.text === "NOT" && ts[i + 2]?.text === "DISTINCT" && ts[i + 3]?.text === "FROM") {
        push(i, "IS");
        i += 3;
        continue;
      }
    }
    // $N → ?N
    if (t.kind === "param" && /^\$\d+$/.test(t.text)) {
      push(i, `?${t.text.slice(1)}`);
      continue;
    }
    // boolcol = 't'
    if (
      t.kind === "string" && /^'(t|f|true|false)'$/i.test(t.text) &&
      ["=", "<>", "!="].includes(out[out.length - 1]?.text.trim() ?? "") &&
      ts[i - 2]?.kind === "word" && BOOLEAN_COLUMNS.has(ts[i - 2].text.toLowerCase())
    ) {
      push(i, /^'t/i.test(t.text) ? "1" : "0");
      continue;
    }
    push(i, text(t));
  }
  return out.map((p) => p.text).join("").trim();
}

/** SQLite for a PostgreSQL pattern-match operator, or undefined when `op` is not one. */
function regexOperator(op: string): string | undefined {
  switch (op) {
    case "~":
      return "REGEXP";
    case "!~":
      return "NOT REGEXP";
    case "~*":
      return "REGEXP '(?i)' ||";
    case "!~*":
      return "NOT REGEXP '(?i)' ||";
    case "~~":
    case "~~*":
      return "LIKE";
    case "!~~":
    case "!~~*":
      return "NOT LIKE";
  }
  return undefined;
}

/** Functions whose PostgreSQL result is boolean (SQLite gives 0/1). */
const BOOLEAN_FUNCTIONS = new Set([
  "HAS_TABLE_PRIVILEGE",
  "HAS_SCHEMA_PRIVILEGE",
  "HAS_DATABASE_PRIVILEGE",
  "HAS_COLUMN_PRIVILEGE",
  "HAS_ANY_COLUMN_PRIVILEGE",
  "HAS_FUNCTION_PRIVILEGE",
  "HAS_SEQUENCE_PRIVILEGE",
  "PG_HAS_ROLE",
  "PG_TABLE_IS_VISIBLE",
  "PG_TYPE_IS_VISIBLE",
  "PG_FUNCTION_IS_VISIBLE",
  "PG_IS_IN_RECOVERY",
  "PG_IS_OTHER_TEMP_SCHEMA",
  "EXISTS",
]);

/**
 * Positions of the outer select list's items that are boolean in PostgreSQL but come out of
 * SQLite as 0/1 (boolean function calls, `true`/`false`, `CASE … THEN true …`, `::bool`), so
 * the result describes them as `bool`. Counting stops at the first `*`.
 */
export function booleanItems(sql: string): Set<number> {
  const ts = tokenize(sql);
  const out = new Set<number>();
  let i = ts.findIndex((t) => t.text === "SELECT");
  if (i < 0) return out;
  i++;
  if (ts[i]?.text === "DISTINCT") i++;
  let depth = 0;
  let start = i;
  let index = 0;
  for (; i <= ts.length; i++) {
    const t = ts[i];
    if (t?.text === "(") depth++;
    else if (t?.text === ")") depth--;
    const end = !t || (depth === 0 && (t.text === "," || t.text === "FROM")) || depth < 0;
    if (!end) continue;
    const item = ts.slice(start, i);
    if (item.some((x) => x.text === "*")) break;
    let k = 0;
    while (item[k]?.text === "(") k++;
    if (item[k]?.text === "PG_CATALOG" && item[k + 1]?.text === ".") k += 2;
    const first = item[k]?.text ?? "";
    const castAt = item.findIndex((x) => x.text === "::");
    const cast = castAt >= 0 ? item[castAt + 1]?.text : "";
    if (
      BOOLEAN_FUNCTIONS.has(first) || first === "TRUE" || first === "FALSE" ||
      cast === "BOOL" || cast === "BOOLEAN" ||
      (first === "CASE" &&
        item.some((x, j) => x.text === "THEN" && ["TRUE", "FALSE"].includes(item[j + 1]?.text)))
    ) out.add(index);
    index++;
    start = i + 1;
    if (!t || t.text === "FROM" || depth < 0) break;
  }
  return out;
}
