/**
 * The engine's public data types: values, statements, results, sessions.
 * Front ends (http/, pgwire/) and replication/ speak only these types.
 */

/**
 * A SQLite value as the engine hands it out, one JS type per storage class:
 * NULL → `null`, INTEGER → `bigint` (always, so no digit is ever lost),
 * REAL → `number`, TEXT → `string`, BLOB → `Uint8Array`.
 *
 * As a parameter a `number` binds as INTEGER when it is a safe integer and as
 * REAL otherwise; `boolean` binds as INTEGER 0/1.
 */
export type SqlValue = null | bigint | number | string | Uint8Array;

/** A value accepted as a parameter. */
export type ParamValue = SqlValue | boolean;

/**
 * Statement parameters: an array binds positionally (`?`, `?NNN`, `$N`);
 * an object binds by name. Object keys may be given with or without their
 * prefix: `name`, `:name`, `@name` and `$name` all bind `:name`/`@name`/`$name`.
 * Keys `$1`, `$2`, … (or `1`, `2`, …) bind positionally.
 */
export type Params = ParamValue[] | Record<string, ParamValue>;

/** One statement to execute. `sql` may hold several statements separated by `;`. */
export interface Statement {
  sql: string;
  params?: Params;
}

/** A result column. `declType` is the declared type of a table column, else null. */
export interface ColumnInfo {
  name: string;
  declType: string | null;
}

/**
 * The result of one statement. `columns` is empty when the statement returns
 * no columns (plain INSERT/UPDATE/DELETE/DDL); then `rows` is empty too.
 */
export interface StatementResult {
  columns: ColumnInfo[];
  rows: SqlValue[][];
  /** Rows changed by an INSERT/UPDATE/DELETE (also with RETURNING), else 0. */
  rowsAffected: number;
  /** `last_insert_rowid()` of the connection after the statement. */
  lastInsertId: bigint;
  /** Upper-case leading keyword(s): `SELECT`, `INSERT`, `CREATE TABLE`, `BEGIN`, … */
  command: string;
}

/** Options for {@link Database.execute}. */
export interface ExecuteOptions {
  /** Aborting stops the statement (PG CancelRequest, HTTP client gone): error `cancelled`. */
  signal?: AbortSignal;
  /**
   * Statement timeout in ms for this call (PG `SET statement_timeout`): it can lower the node's
   * `--statement-timeout`, not raise it; 0 or absent = the node's. Error `timeout`.
   */
  timeoutMs?: number;
  /** Refuse statements that would write (they are never run). */
  readOnly?: boolean;
  /**
   * Milliseconds the statement already ran on the main thread (`Database.executeNow` stopped
   * by its budget): taken off the timeout.
   */
  spentMs?: number;
}

/** A stateful connection-like session (PostgreSQL wire): supports BEGIN … COMMIT. */
export interface Session {
  /** Executes one statement (no multi-statement strings: split them first). */
  execute(stmt: Statement, opts?: ExecuteOptions): Promise<StatementResult>;
  /**
   * Prepares `sql` without running it: result columns and parameter count. Inside a
   * transaction it is prepared on the writer, so tables the transaction created are known.
   */
  describe(sql: string): Promise<{
    columns: ColumnInfo[];
    paramCount: number;
    command: string;
  }>;
  /** True between BEGIN and COMMIT/ROLLBACK. */
  readonly inTransaction: boolean;
  /** Rolls back an open transaction and releases the writer. Idempotent. */
  close(): Promise<void>;
}
