/**
 * A first line of defence for `ctx.query`: accept one statement that only reads (SELECT, VALUES,
 * WITH … SELECT, EXPLAIN, a reading PRAGMA). The host additionally runs it on a read-only
 * connection, so this check only has to be strict, not complete.
 *
 * @module
 */

/** PRAGMAs that may take an argument in parentheses and still only read. */
const READ_PRAGMAS_WITH_ARG = new Set([
  "table_info",
  "table_xinfo",
  "table_list",
  "index_info",
  "index_xinfo",
  "index_list",
  "foreign_key_list",
  "foreign_key_check",
  "integrity_check",
  "quick_check",
]);

/** PRAGMAs that change something even without an argument. */
const WRITING_PRAGMAS = new Set([
  "optimize",
  "shrink_memory",
  "incremental_vacuum",
  "wal_checkpoint",
  "analysis_limit",
]);

const WRITE_WORDS = new Set(["INSERT", "UPDATE", "DELETE", "CREATE", "DROP", "ALTER"]);

interface Token {
  kind: "word" | "punct" | "quoted";
  text: string;
}

/**
 * Why `sql` is not an acceptable read-only statement, or null when it is.
 *
 * @example
 * ```ts
 * readOnlyViolation("SELECT 1"); // null
 * readOnlyViolation("DELETE FROM t"); // "only SELECT, VALUES, WITH … SELECT, EXPLAIN and …"
 * ```
 */
export function readOnlyViolation(sql: string): string | null {
  let tokens: Token[];
  try {
    tokens = tokenize(sql);
  } catch (e) {
    return (e as Error).message;
  }
  while (tokens.length && tokens[tokens.length - 1].text === ";") tokens.pop();
  if (tokens.length === 0) return "empty statement";
  if (tokens.some((t) => t.text === ";")) return "only one statement per query";
  const first = tokens[0].kind === "word" ? tokens[0].text.toUpperCase() : "";
  switch (first) {
    case "SELECT":
    case "VALUES":
    case "EXPLAIN":
      return null;
    case "WITH": {
      for (let i = 1; i < tokens.length; i++) {
        const t = tokens[i];
        if (t.kind !== "word") continue;
        const w = t.text.toUpperCase();
        if (
          WRITE_WORDS.has(w) || (w === "REPLACE" && tokens[i + 1]?.text.toUpperCase() === "INTO")
        ) {
          return `WITH … ${w} writes: only reading statements are allowed`;
        }
      }
      return null;
    }
    case "PRAGMA":
      return pragmaViolation(tokens.slice(1));
    default:
      return "only SELECT, VALUES, WITH … SELECT, EXPLAIN and reading PRAGMAs are allowed";
  }
}

function pragmaViolation(rest: Token[]): string | null {
  // PRAGMA [schema.]name [(arg)] — never `= value`.
  let i = 0;
  if (rest[1]?.text === ".") i = 2;
  const name = rest[i]?.text.toLowerCase() ?? "";
  if (!name || rest[i].kind !== "word") return "PRAGMA without a name";
  if (rest.some((t) => t.text === "=")) return "PRAGMA assignments write: not allowed";
  if (WRITING_PRAGMAS.has(name)) return `PRAGMA ${name} writes: not allowed`;
  if (rest.length > i + 1 && !READ_PRAGMAS_WITH_ARG.has(name)) {
    return `PRAGMA ${name}(…) may write: only reading it without an argument is allowed`;
  }
  return null;
}

function tokenize(sql: string): Token[] {
  const out: Token[] = [];
  let i = 0;
  const n = sql.length;
  while (i < n) {
    const c = sql[i];
    if (/\s/.test(c)) {
      i++;
    } else if (c === "-" && sql[i + 1] === "-") {
      const end = sql.indexOf("\n", i);
      i = end < 0 ? n : end + 1;
    } else if (c === "/" && sql[i + 1] === "*") {
      const end = sql.indexOf("*/", i + 2);
      i = end < 0 ? n : end + 2;
    } else if (c === "'" || c === '"' || c === "`" || c === "[") {
      const close = c === "[" ? "]" : c;
      let j = i + 1;
      for (;;) {
        const k = sql.indexOf(close, j);
        if (k < 0) throw new SyntaxError("unterminated quoted text");
        if (close !== "]" && sql[k + 1] === close) {
          j = k + 2;
          continue;
        }
        j = k + 1;
        break;
      }
      out.push({ kind: "quoted", text: sql.slice(i, j) });
      i = j;
    } else if (/[A-Za-z_\u0080-\uffff]/.test(c)) {
      let j = i + 1;
      while (j < n && /[A-Za-z0-9_$\u0080-\uffff]/.test(sql[j])) j++;
      out.push({ kind: "word", text: sql.slice(i, j) });
      i = j;
    } else {
      out.push({ kind: "punct", text: c });
      i++;
    }
  }
  return out;
}
