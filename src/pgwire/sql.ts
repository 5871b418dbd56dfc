/**
 * What the wire layer must know about a statement without parsing it, from
 * the engine's lexer: its leading keywords, whether it is blank, and whether
 * it returns rows.
 *
 * @example
 * ```ts
 * words("insert into t values (1) returning id"); // ["INSERT", "INTO", "T", "VALUES", "RETURNING", "ID"]
 * shapeOf("insert into t values (1) returning id"); // "returning"
 * ```
 */
import { type Token, tokenize } from "../engine/mod.ts";

export { type Token, tokenize };

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
