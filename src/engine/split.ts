/**
 * A small SQLite lexer: splits multi-statement strings, counts parameters and
 * finds a statement's leading keywords, honouring quotes, comments and
 * `CREATE TRIGGER … BEGIN … END` bodies.
 *
 * @example
 * ```ts
 * splitStatements("INSERT INTO t VALUES (1); SELECT ';' -- x"); // ["INSERT INTO t VALUES (1)", "SELECT ';' -- x"]
 * ```
 */
import { rememberTokens, type Token, tokenize } from "./lexer.ts";

/** Tokens of `sql` for the splitter: `;` as its own kind, words upper-cased. */
function tokens(
  sql: string,
): { kind: "word" | "semi" | "param" | "other"; text: string; start: number; end: number }[] {
  return tokenize(sql).map((t) => ({
    kind: t.kind === "word" || t.kind === "param"
      ? t.kind
      : t.kind === "punct" && t.text === ";"
      ? "semi"
      : "other",
    text: t.text,
    start: t.start,
    end: t.end,
  }));
}

/**
 * Splits `sql` into its statements (without the separating `;`), dropping
 * empty ones. Semicolons inside strings, identifiers, comments and trigger
 * bodies do not split.
 */
export function splitStatements(sql: string): string[] {
  const ts = tokenize(sql);
  const out: string[] = [];
  let stmtStart = 0;
  let segFirst = 0; // index of the current statement's first token
  let words: string[] = [];
  let depth = 0; // BEGIN/CASE … END nesting inside CREATE TRIGGER
  let significant = false;
  // The last statement kept: its text, where it starts in `sql`, its tokens' index range.
  let part = "";
  let partStart = 0;
  let partFrom = 0;
  let partTo = 0;
  const push = (end: number, tokenEnd: number) => {
    if (significant) {
      const raw = sql.slice(stmtStart, end);
      part = raw.trim();
      partStart = stmtStart + raw.length - raw.trimStart().length;
      [partFrom, partTo] = [segFirst, tokenEnd];
      out.push(part);
    }
    words = [];
    depth = 0;
    significant = false;
  };
  for (let k = 0; k < ts.length; k++) {
    const t = ts[k];
    if (t.kind === "punct" && t.text === ";") {
      if (depth > 0) continue;
      push(t.start, k);
      stmtStart = t.end;
      segFirst = k + 1;
      continue;
    }
    significant = true;
    if (t.kind !== "word") continue;
    const w = t.text;
    if (words.length < 4) words.push(w);
    if (isTrigger(words)) {
      if (w === "BEGIN" || w === "CASE") depth++;
      else if (w === "END" && depth > 0) depth--;
    }
  }
  push(sql.length, ts.length);
  if (out.length === 1 && part !== sql) seedTokens(part, partStart, ts.slice(partFrom, partTo));
  return out;
}

/**
 * Lets the one statement of `sql` keep the tokens just lexed (shifted to its own offsets): the
 * classifier and binder lex it next, and each simple-protocol query is new text. Not when
 * trimming cut into a token (a character JavaScript's `trim` drops but the lexer keeps).
 */
function seedTokens(part: string, at: number, ts: Token[]): void {
  if (ts.length === 0 || ts[0].start < at || ts[ts.length - 1].end > at + part.length) return;
  rememberTokens(
    part,
    at === 0
      ? ts
      : ts.map((t) => ({ kind: t.kind, text: t.text, start: t.start - at, end: t.end - at })),
  );
}

function isTrigger(words: string[]): boolean {
  if (words[0] !== "CREATE") return false;
  return words[1] === "TRIGGER" ||
    ((words[1] === "TEMP" || words[1] === "TEMPORARY") && words[2] === "TRIGGER");
}

/**
 * Number of parameter slots a statement needs: the highest `?NNN`/`$N` index,
 * counting each bare `?` as the next index and each distinct named parameter once.
 */
export function countParameters(sql: string): number {
  let max = 0;
  const named = new Set<string>();
  for (const t of tokens(sql)) {
    if (t.kind !== "param") continue;
    const m = /^[?$](\d+)$/.exec(t.text);
    if (m) max = Math.max(max, Number(m[1]));
    else if (t.text === "?") max++;
    else if (!named.has(t.text)) {
      named.add(t.text);
      max++;
    }
  }
  return max;
}

const OBJECT_WORDS = new Set(["TABLE", "INDEX", "VIEW", "TRIGGER"]);

/**
 * The statement's command keyword(s), upper case: `SELECT`, `INSERT`, `CREATE TABLE`,
 * `DROP INDEX`, `ALTER TABLE`, `BEGIN`, … (`REPLACE` → `INSERT`, `VALUES` → `SELECT`,
 * `END` → `COMMIT`). `WITH` is returned as is; the engine refines it.
 */
export function leadingCommand(sql: string): string {
  const words: string[] = [];
  for (const t of tokens(sql)) {
    if (t.kind !== "word") break;
    words.push(t.text);
    if (words.length === 4) break;
  }
  const first = words[0] ?? "";
  switch (first) {
    case "REPLACE":
      return "INSERT";
    case "VALUES":
      return "SELECT";
    case "END":
      return "COMMIT";
    case "CREATE":
    case "DROP": {
      const obj = words.slice(1).find((w) => OBJECT_WORDS.has(w));
      return obj ? `${first} ${obj}` : first;
    }
    case "ALTER":
      return "ALTER TABLE";
    default:
      return first;
  }
}

/**
 * What a statement does to the transaction, read from its leading keywords:
 * `begin` (BEGIN …), `commit` (COMMIT, END), `rollback` (ROLLBACK), `savepoint`
 * (SAVEPOINT, RELEASE, ROLLBACK TO), or null for any other statement.
 */
export function transactionControl(
  sql: string,
): "begin" | "commit" | "rollback" | "savepoint" | null {
  const words: string[] = [];
  for (const t of tokens(sql)) {
    if (t.kind !== "word") break;
    words.push(t.text);
    if (words.length === 3) break;
  }
  switch (words[0]) {
    case "BEGIN":
      return "begin";
    case "COMMIT":
    case "END":
      return "commit";
    case "ROLLBACK":
      return words.slice(1).includes("TO") ? "savepoint" : "rollback";
    case "SAVEPOINT":
    case "RELEASE":
      return "savepoint";
    default:
      return null;
  }
}
