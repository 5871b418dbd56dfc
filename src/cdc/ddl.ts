/**
 * DDL helpers for replication: which authorizer actions are replicated DDL, and rewriting a DDL
 * statement so that applying it twice is harmless (`IF [NOT] EXISTS`).
 *
 * @example
 * ```ts
 * idempotentDdl("CREATE TABLE t(a)"); // "CREATE TABLE IF NOT EXISTS t(a)"
 * idempotentDdl("drop index i");      // "drop index IF EXISTS i"
 * ```
 * @module
 */
import { tokenize } from "../engine/lexer.ts";
import { splitStatements } from "../engine/split.ts";

const CREATE =
  /^(\s*CREATE\s+(?:(?:TEMP|TEMPORARY|UNIQUE|VIRTUAL)\s+)?(?:TABLE|INDEX|VIEW|TRIGGER)\s+)(?!IF\s+NOT\s+EXISTS\b)/i;
const DROP = /^(\s*DROP\s+(?:TABLE|INDEX|VIEW|TRIGGER)\s+)(?!IF\s+EXISTS\b)/i;

/** Strips leading whitespace and SQL comments. */
export function stripLeadingComments(sql: string): string {
  let s = sql;
  for (;;) {
    const t = s.trimStart();
    if (t.startsWith("--")) {
      const nl = t.indexOf("\n");
      s = nl < 0 ? "" : t.slice(nl + 1);
    } else if (t.startsWith("/*")) {
      const end = t.indexOf("*/");
      s = end < 0 ? "" : t.slice(end + 2);
    } else return t;
  }
}

/** Adds `IF NOT EXISTS` to CREATE and `IF EXISTS` to DROP; other statements are unchanged. */
export function idempotentDdl(sql: string): string {
  const s = stripLeadingComments(sql);
  if (CREATE.test(s)) return s.replace(CREATE, "$1IF NOT EXISTS ");
  if (DROP.test(s)) return s.replace(DROP, "$1IF EXISTS ");
  return s;
}

/**
 * Whether an error from re-applying an ALTER TABLE means "already done" (column already added,
 * renamed or dropped; table already renamed).
 */
export function alreadyApplied(sql: string, message: string): boolean {
  if (!/^\s*ALTER\s+TABLE\b/i.test(stripLeadingComments(sql))) return false;
  return /duplicate column name|no such column|no such table|there is already another table/i
    .test(message);
}

const OBJECTS = new Set(["TABLE", "INDEX", "VIEW", "TRIGGER"]);

/**
 * Why `sql` may not travel as a replicated DDL change, or null when it may: it must be exactly
 * one `CREATE [UNIQUE] INDEX | [VIRTUAL] TABLE | VIEW | TRIGGER`, `DROP TABLE | INDEX | VIEW |
 * TRIGGER` or `ALTER TABLE` statement on the main schema (`IF [NOT] EXISTS` allowed) — never
 * COMMIT, ATTACH, PRAGMA, DML, TEMP objects or several statements. Checked when capturing (a
 * local DDL that could not be replicated is refused) and when applying (a refused change is
 * dead-lettered).
 *
 * @example
 * ```ts
 * ddlRefusal("CREATE TABLE IF NOT EXISTS t(a)");        // null
 * ddlRefusal("CREATE TABLE t(a); ATTACH 'x' AS y");     // "DDL change must be one statement …"
 * ```
 */
export function ddlRefusal(sql: string): string | null {
  const parts = splitStatements(sql);
  if (parts.length !== 1) {
    return `DDL change must be one statement, got ${parts.length}`;
  }
  const words: string[] = [];
  const toks = tokenize(parts[0]);
  let i = 0;
  for (; i < toks.length && toks[i].kind === "word" && words.length < 4; i++) {
    words.push(toks[i].text);
  }
  const [verb, second, third] = words;
  let object: string | undefined;
  if (verb === "CREATE") {
    object = second === "UNIQUE" || second === "VIRTUAL" ? third : second;
    if (second === "UNIQUE" && object !== "INDEX") object = undefined;
    if (second === "VIRTUAL" && object !== "TABLE") object = undefined;
  } else if (verb === "DROP") object = second;
  else if (verb === "ALTER") object = second === "TABLE" ? "TABLE" : undefined;
  if (object === undefined || !OBJECTS.has(object)) {
    return `not a schema statement (CREATE/DROP/ALTER of a table, index, view or trigger): ` +
      JSON.stringify(sql.slice(0, 80));
  }
  // The object name, after IF [NOT] EXISTS: a schema qualifier must be main.
  const rest = toks.slice(verb === "ALTER" ? 2 : words.indexOf(object) + 1);
  let j = 0;
  if (rest[j]?.text === "IF") j += rest[j + 1]?.text === "NOT" ? 3 : 2;
  const name = rest[j];
  if (name === undefined) return "DDL change without an object name";
  if (rest[j + 1]?.text === ".") {
    const schema = name.kind === "ident" ? name.text.slice(1, -1) : name.text;
    if (schema.toLowerCase() !== "main") return `DDL change on schema ${schema}: only main`;
  }
  return null;
}
