/**
 * Typed errors shared by every module. Each front end maps {@link HaError.code}
 * once: HTTP status in `http/`, SQLSTATE in `pgwire/`, exit code in `main.ts`.
 *
 * @example
 * ```ts
 * throw new HaError("not_found", `database "x.db" not found`);
 * ```
 */

/**
 * The kinds of failure a client can be told about.
 *
 * @example
 * ```ts
 * const retryable = (code: ErrorCode) => code === "unavailable" || code === "cancelled";
 * ```
 */
export type ErrorCode =
  /** Malformed request: bad JSON, wrong types, bad parameters. */
  | "bad_request"
  /** An SQL error raised by SQLite (syntax, unknown table, ...). */
  | "sql"
  /** A constraint violation (UNIQUE, NOT NULL, CHECK, FOREIGN KEY). */
  | "constraint"
  /** Unknown database, route, replication or snapshot. */
  | "not_found"
  /** Missing or wrong credentials. */
  | "unauthorized"
  /** Request body or message over the configured limit. */
  | "too_large"
  /** Replication (NATS) unavailable or a synchronous publish timed out. */
  | "unavailable"
  /** The query was cancelled (client request or shutdown). */
  | "cancelled"
  /** A statement ran longer than its statement timeout (`--statement-timeout`) and was stopped. */
  | "timeout"
  /** Invalid configuration: flag, env var or config file. */
  | "config"
  /** A bug: should never reach a client. */
  | "internal";

/**
 * Details an error may carry for precise mapping (SQLite result codes).
 *
 * @example
 * ```ts
 * const details: ErrorDetails = { sqliteCode: 2067, sqliteName: "SQLITE_CONSTRAINT_UNIQUE" };
 * ```
 */
export interface ErrorDetails {
  /** SQLite extended result code, when the error came from SQLite. */
  sqliteCode?: number;
  /** SQLite error name such as `SQLITE_CONSTRAINT_UNIQUE`. */
  sqliteName?: string;
  /** Anything else worth logging (database id, statement index, ...). */
  [key: string]: unknown;
}

/**
 * An error value with a machine-readable code and context.
 *
 * @example
 * ```ts
 * try {
 *   await db.query("INSERT INTO t VALUES (1)");
 * } catch (e) {
 *   if (e instanceof HaError && e.code === "constraint") console.warn(e.message);
 *   else throw e;
 * }
 * ```
 */
export class HaError extends Error {
  /** An error of kind `code`; `details` carry context such as SQLite's result code. */
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly details: ErrorDetails = {},
    options?: ErrorOptions,
  ) {
    super(message, options);
    this.name = "HaError";
  }
}

/** Wraps anything thrown into an {@link HaError}, keeping HaErrors as they are. */
export function toHaError(e: unknown, fallback: ErrorCode = "internal"): HaError {
  if (e instanceof HaError) return e;
  const message = e instanceof Error ? e.message : String(e);
  return new HaError(fallback, message, {}, { cause: e });
}
