/**
 * A small SQL lexer for what the wire layer must know about a statement
 * without parsing it: its tokens (for the catalog's SET/SHOW parsing), its
 * leading keywords, whether it is blank, and whether it returns rows.
 *
 * @example
 * ```ts
 * words("insert into t values (1) returning id"); // ["INSERT", "INTO", "T", "VALUES", "RETURNING", "ID"]
 * shapeOf("insert into t values (1) returning id"); // "returning"
 * ```
 */

/** A lexical token. Comments and whitespace are skipped. */
export interface Token {
  kind: "word" | "string" | "ident" | "param" | "number" | "punct";
  /** Upper-cased for words, the raw text otherwise. */
  text: string;
  start: number;
  end: number;
}

function isIdentChar(c: string): boolean {
  const n = c.charCodeAt(0);
  return (n >= 97 && n <= 122) || (n >= 65 && n <= 90) || (n >= 48 && n <= 57) || n === 95 ||
    n === 36 || n >= 0x80;
}

/** Splits SQL into tokens (strings, quoted identifiers, words, parameters, punctuation). */
export function tokenize(sql: string): Token[] {
  const out: Token[] = [];
  const n = sql.length;
  let i = 0;
  while (i < n) {
    const c = sql[i];
    if (c === " " || c === "\t" || c === "\n" || c === "\r" || c === "\f") {
      i++;
    } else if (c === "-" && sql[i + 1] === "-") {
      const e = sql.indexOf("\n", i);
      i = e < 0 ? n : e + 1;
    } else if (c === "/" && sql[i + 1] === "*") {
      const e = sql.indexOf("*/", i + 2);
      i = e < 0 ? n : e + 2;
    } else if (c === "'" || c === '"' || c === "`" || c === "[") {
      const close = c === "[" ? "]" : c;
      let j = i + 1;
      for (;;) {
        const e = sql.indexOf(close, j);
        if (e < 0) {
          j = n;
          break;
        }
        if (close !== "]" && sql[e + 1] === close) {
          j = e + 2;
          continue;
        }
        j = e + 1;
        break;
      }
      out.push({ kind: c === "'" ? "string" : "ident", text: sql.slice(i, j), start: i, end: j });
      i = j;
    } else if ((c === "$" || c === "?" || c === ":" || c === "@") && i + 1 <= n) {
      let j = i + 1;
      while (j < n && isIdentChar(sql[j])) j++;
      if (c === "?" || j > i + 1) {
        out.push({ kind: "param", text: sql.slice(i, j), start: i, end: j });
      } else {
        out.push({ kind: "punct", text: c, start: i, end: i + 1 });
        j = i + 1;
      }
      i = j;
    } else if ((c >= "0" && c <= "9") || (c === "." && sql[i + 1] >= "0" && sql[i + 1] <= "9")) {
      let j = i + 1;
      while (j < n && /[0-9A-Za-z_.]/.test(sql[j])) {
        if ((sql[j] === "e" || sql[j] === "E") && (sql[j + 1] === "+" || sql[j + 1] === "-")) j++;
        j++;
      }
      out.push({ kind: "number", text: sql.slice(i, j), start: i, end: j });
      i = j;
    } else if (isIdentChar(c)) {
      let j = i + 1;
      while (j < n && isIdentChar(sql[j])) j++;
      out.push({ kind: "word", text: sql.slice(i, j).toUpperCase(), start: i, end: j });
      i = j;
    } else {
      out.push({ kind: "punct", text: c, start: i, end: i + 1 });
      i++;
    }
  }
  return out;
}

/** The bare words of a statement, upper-cased, in order. */
export function words(sql: string): string[] {
  return tokenize(sql).filter((t) => t.kind === "word").map((t) => t.text);
}

/** True when the SQL holds no statement (only whitespace, comments, semicolons). */
export function isBlank(sql: string): boolean {
  return tokenize(sql).every((t) => t.kind === "punct" && t.text === ";");
}

/** The first keyword after leading comments and parentheses, upper-cased ("" if none). */
export function firstKeyword(sql: string): string {
  for (const t of tokenize(sql)) {
    if (t.kind === "punct" && t.text === "(") continue;
    return t.kind === "word" ? t.text : "";
  }
  return "";
}

/** Statements that return no rows unless they say RETURNING. */
const DML = new Set(["INSERT", "UPDATE", "DELETE", "REPLACE"]);
/** Statements that never return rows. */
const NO_ROWS = new Set([
  "CREATE",
  "DROP",
  "ALTER",
  "BEGIN",
  "COMMIT",
  "END",
  "ROLLBACK",
  "SAVEPOINT",
  "RELEASE",
  "ANALYZE",
  "VACUUM",
  "REINDEX",
  "ATTACH",
  "DETACH",
]);

/** How a statement's result shape can be learnt before it runs. */
export type Shape =
  /** Returns rows and is read-only: may run when the portal is described. */
  | "query"
  /** Writes and returns rows (RETURNING): describe it without running. */
  | "returning"
  /** Never returns rows. */
  | "none"
  /** Unknown: ask the engine. */
  | "unknown";

/** Classifies a single statement by its keywords. */
export function shapeOf(sql: string): Shape {
  const ws = words(sql);
  const first = ws[0] ?? "";
  if (first === "SELECT" || first === "VALUES" || first === "EXPLAIN") return "query";
  if (first === "WITH") {
    const writes = ws.some((w) => DML.has(w));
    if (!writes) return "query";
    return ws.includes("RETURNING") ? "returning" : "unknown";
  }
  if (DML.has(first)) return ws.includes("RETURNING") ? "returning" : "none";
  if (NO_ROWS.has(first)) return "none";
  return "unknown";
}
