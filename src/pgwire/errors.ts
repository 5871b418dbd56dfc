/**
 * The one mapping from {@link HaError} (and anything else thrown) to a
 * PostgreSQL ErrorResponse: SQLSTATE, severity, message.
 *
 * @example
 * ```ts
 * const e = toPgError(new HaError("constraint", "UNIQUE constraint failed: t.id", { sqliteCode: 2067 }));
 * e.code; // "23505"
 * ```
 */
import { HaError } from "../errors/mod.ts";

/** ErrorResponse / NoticeResponse fields. */
export interface ErrorFields {
  severity: string;
  code: string;
  message: string;
  detail?: string;
  hint?: string;
  position?: number;
}

/** Options of a {@link PgError}. */
export interface PgErrorOptions {
  /** FATAL: the connection is closed after sending the error. */
  fatal?: boolean;
  detail?: string;
  hint?: string;
  cause?: unknown;
}

/** An error to send to the client as an ErrorResponse with a SQLSTATE. */
export class PgError extends Error {
  readonly fatal: boolean;
  readonly detail?: string;
  readonly hint?: string;

  constructor(readonly code: string, message: string, opts: PgErrorOptions = {}) {
    super(message, { cause: opts.cause });
    this.name = "PgError";
    this.fatal = opts.fatal ?? false;
    this.detail = opts.detail;
    this.hint = opts.hint;
  }

  /** The ErrorResponse fields. */
  fields(): ErrorFields {
    return {
      severity: this.fatal ? "FATAL" : "ERROR",
      code: this.code,
      message: this.message,
      detail: this.detail,
      hint: this.hint,
    };
  }
}

/** SQLite extended result codes of constraint violations → SQLSTATE. */
const CONSTRAINT_CODES: Record<number, string> = {
  2067: "23505", // SQLITE_CONSTRAINT_UNIQUE
  1555: "23505", // SQLITE_CONSTRAINT_PRIMARYKEY
  1299: "23502", // SQLITE_CONSTRAINT_NOTNULL
  787: "23503", // SQLITE_CONSTRAINT_FOREIGNKEY
  275: "23514", // SQLITE_CONSTRAINT_CHECK
  3091: "42804", // SQLITE_CONSTRAINT_DATATYPE (STRICT tables): datatype_mismatch
};

/** Primary SQLite result codes (extended & 0xff) → SQLSTATE, for non-constraint errors. */
const PRIMARY_CODES: Record<number, string> = {
  5: "55P03", // SQLITE_BUSY: lock_not_available
  6: "55P03", // SQLITE_LOCKED
  7: "53200", // SQLITE_NOMEM: out_of_memory
  8: "25006", // SQLITE_READONLY: read_only_sql_transaction
  9: "57014", // SQLITE_INTERRUPT: query_canceled
  10: "58030", // SQLITE_IOERR: io_error
  11: "XX001", // SQLITE_CORRUPT: data_corrupted
  13: "53100", // SQLITE_FULL: disk_full
  18: "54000", // SQLITE_TOOBIG: program_limit_exceeded
  20: "42804", // SQLITE_MISMATCH: datatype_mismatch
  23: "42501", // SQLITE_AUTH (a denied ATTACH, PRAGMA...): insufficient_privilege
  25: "42P02", // SQLITE_RANGE: undefined_parameter
  26: "XX001", // SQLITE_NOTADB
};

/** Message patterns of generic SQLite errors (code 1) → SQLSTATE, first match wins. */
const MESSAGE_CODES: [RegExp, string][] = [
  [/no such table|no such view/i, "42P01"],
  [/no such column/i, "42703"],
  [/no such function/i, "42883"],
  [/no such (index|trigger)/i, "42704"],
  [/no such savepoint/i, "3B001"],
  [/syntax error|incomplete input|unrecognized token|near ".*":/i, "42601"],
  [/table .* already exists|view .* already exists/i, "42P07"],
  [/(index|trigger) .* already exists/i, "42710"],
  [/duplicate column name/i, "42701"],
  [/ambiguous column name/i, "42702"],
  [/cannot start a transaction within a transaction/i, "25001"],
  [/no transaction is active/i, "25P01"],
  [/datatype mismatch/i, "42804"],
  [/wrong number of arguments/i, "42883"],
  [/too many (terms|columns|arguments|SQL variables)/i, "54001"],
  [/string or blob too big/i, "54000"],
  [/interrupted/i, "57014"],
  [/readonly|read-only/i, "25006"],
  [/database is locked|database table is locked/i, "55P03"],
  [/out of memory/i, "53200"],
  [/constraint failed/i, "23000"],
];

function sqlState(e: HaError): string {
  const sqlite = typeof e.details.sqliteCode === "number" ? e.details.sqliteCode : undefined;
  switch (e.code) {
    case "constraint": {
      const c = sqlite !== undefined ? CONSTRAINT_CODES[sqlite] : undefined;
      if (c) return c;
      if (/UNIQUE|PRIMARY KEY/.test(e.message)) return "23505";
      if (/NOT NULL/.test(e.message)) return "23502";
      if (/FOREIGN KEY/.test(e.message)) return "23503";
      if (/CHECK/.test(e.message)) return "23514";
      return "23000";
    }
    case "sql": {
      if (sqlite !== undefined && CONSTRAINT_CODES[sqlite]) return CONSTRAINT_CODES[sqlite];
      for (const [re, code] of MESSAGE_CODES) if (re.test(e.message)) return code;
      if (sqlite !== undefined && PRIMARY_CODES[sqlite & 0xff]) return PRIMARY_CODES[sqlite & 0xff];
      return "42000";
    }
    case "bad_request":
      if (/^missing parameter /.test(e.message)) return "42P02";
      if (/ is internal to ha: /.test(e.message)) return "42501";
      return "22023";
    case "not_found":
      return "3D000";
    case "unauthorized":
      return "28P01";
    case "too_large":
      return "54000";
    case "unavailable":
      return "08006";
    case "cancelled":
      return "57014";
    case "config":
      return "F0000";
    default:
      return "XX000";
  }
}

/** Maps anything thrown to a {@link PgError}; PgErrors pass through unchanged. */
export function toPgError(e: unknown): PgError {
  if (e instanceof PgError) return e;
  if (e instanceof HaError) {
    const code = sqlState(e);
    const message = code === "57014" ? "canceling statement due to user request" : e.message;
    return new PgError(code, message, { cause: e });
  }
  if (e instanceof Error && e.name === "AbortError") {
    return new PgError("57014", "canceling statement due to user request", { cause: e });
  }
  const message = e instanceof Error ? e.message : String(e);
  return new PgError("XX000", message, { cause: e });
}

/** The 25P02 error of a statement sent while the transaction is failed. */
export function abortedTransaction(): PgError {
  return new PgError(
    "25P02",
    "current transaction is aborted, commands ignored until end of transaction block",
  );
}
