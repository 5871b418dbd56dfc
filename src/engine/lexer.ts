/**
 * The one SQL lexer of the project (SQLite's dialect): strings, quoted identifiers, comments,
 * parameters (`?`, `?NNN`, `:name`, `@name`, `$name`, `$N`), numbers, words and punctuation.
 * Statement splitting and classification (split.ts) and the PostgreSQL front end build on it.
 *
 * @example
 * ```ts
 * tokenize("SELECT 'a;b' FROM t WHERE x = :x").map((t) => t.kind);
 * // ["word", "string", "word", "word", "word", "word", "punct", "param"]
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

/** Texts up to this length keep their tokens in a small cache of {@link RECENT} entries. */
const CACHE_CHARS = 4096;
const RECENT = 4;
const recentSql: string[] = [];
const recentTokens: Token[][] = [];
let nextSlot = 0;

/**
 * Splits SQL into tokens (strings, quoted identifiers, words, parameters, punctuation). The
 * array is frozen and may be shared: one statement's text is lexed by the splitter, the
 * classifier, the binder and the router in turn (a new text per query in PostgreSQL's simple
 * protocol), so the last few texts' tokens are kept.
 */
export function tokenize(sql: string): Token[] {
  if (sql.length > CACHE_CHARS) return lex(sql);
  for (let k = 0; k < recentSql.length; k++) {
    if (recentSql[k] === sql) return recentTokens[k];
  }
  const out = Object.freeze(lex(sql)) as Token[];
  recentSql[nextSlot] = sql;
  recentTokens[nextSlot] = out;
  nextSlot = (nextSlot + 1) % RECENT;
  return out;
}

/**
 * Keeps `tokens` as the tokens of `sql` (a statement cut out of a text just lexed: the simple
 * query protocol's one statement without its `;` would otherwise be lexed again).
 */
export function rememberTokens(sql: string, tokens: readonly Token[]): void {
  if (sql.length > CACHE_CHARS) return;
  for (let k = 0; k < recentSql.length; k++) if (recentSql[k] === sql) return;
  recentSql[nextSlot] = sql;
  recentTokens[nextSlot] = Object.freeze(tokens) as Token[];
  nextSlot = (nextSlot + 1) % RECENT;
}

/** The tokens of `sql`, lexed afresh (not from the cache): for tests. */
export function lexUncached(sql: string): Token[] {
  return lex(sql);
}

function lex(sql: string): Token[] {
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
    } else if (c === ":" && sql[i + 1] === ":") {
      out.push({ kind: "punct", text: "::", start: i, end: i + 2 }); // a cast, not a parameter
      i += 2;
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
