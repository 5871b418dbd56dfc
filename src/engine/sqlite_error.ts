/** Maps errors thrown by node:sqlite to {@link HaError}s carrying the SQLite result code. */
import { HaError } from "../errors/mod.ts";

const SQLITE_CONSTRAINT = 19;
const SQLITE_BUSY = 5;
const SQLITE_LOCKED = 6;
const SQLITE_INTERRUPT = 9;
const SQLITE_TOOBIG = 18;
const SQLITE_RANGE = 25;

/** Names of the extended constraint codes worth telling apart. */
const CODE_NAMES: Record<number, string> = {
  275: "SQLITE_CONSTRAINT_CHECK",
  531: "SQLITE_CONSTRAINT_COMMITHOOK",
  787: "SQLITE_CONSTRAINT_FOREIGNKEY",
  1043: "SQLITE_CONSTRAINT_FUNCTION",
  1299: "SQLITE_CONSTRAINT_NOTNULL",
  1555: "SQLITE_CONSTRAINT_PRIMARYKEY",
  1811: "SQLITE_CONSTRAINT_TRIGGER",
  2067: "SQLITE_CONSTRAINT_UNIQUE",
  2323: "SQLITE_CONSTRAINT_VTAB",
  2579: "SQLITE_CONSTRAINT_ROWID",
};

/** Converts an error from node:sqlite (or a bind TypeError) into an HaError. */
export function fromSqliteError(e: unknown, context: Record<string, unknown> = {}): HaError {
  if (e instanceof HaError) return e;
  const err = e as { message?: string; errcode?: number; code?: string };
  const message = err?.message ?? String(e);
  const code = typeof err?.errcode === "number" ? err.errcode : undefined;
  const details = { ...context, sqliteCode: code, sqliteName: code ? CODE_NAMES[code] : undefined };
  if (code === undefined) {
    // Binding errors are TypeErrors / RangeErrors raised before SQLite runs.
    if (e instanceof TypeError || e instanceof RangeError || err?.code === "ERR_INVALID_ARG_TYPE") {
      return new HaError("bad_request", message, details, { cause: e });
    }
    if (/constraint failed/i.test(message)) return new HaError("constraint", message, details);
    return new HaError("sql", message, details, { cause: e });
  }
  const primary = code & 0xff;
  if (primary === SQLITE_CONSTRAINT) return new HaError("constraint", message, details);
  if (primary === SQLITE_RANGE) {
    return new HaError("bad_request", "parameter count mismatch: " + message, details);
  }
  if (primary === SQLITE_INTERRUPT) return new HaError("cancelled", message, details);
  if (primary === SQLITE_TOOBIG) return new HaError("too_large", message, details);
  if (primary === SQLITE_BUSY || primary === SQLITE_LOCKED) {
    return new HaError("unavailable", message, details);
  }
  return new HaError("sql", message, details);
}
