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
