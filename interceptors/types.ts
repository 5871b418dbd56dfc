/**
 * The interceptor API: the types of the hooks a user module exports and of the values they see.
 *
 * An interceptor is a TypeScript (or JavaScript) module given with `--interceptor FILE`. ha
 * bundles it at start and runs it in a Deno Worker with no permissions. It may export any subset
 * of {@link BeforeApply | beforeApply}, {@link AfterApply | afterApply} and
 * {@link ResolveConflict | resolveConflict}, as named exports or as the properties of a default
 * export object. Hooks run only for changesets that arrive from other nodes.
 *
 * Values are exact, one JS type per SQLite storage class ({@link SqlValue}): INTEGER is a
 * `bigint` (also small ones: `5n`, never `5`), REAL a `number`, TEXT a `string`, BLOB a
 * `Uint8Array`, NULL `null`. A `number` you return is written as REAL.
 *
 * @example
 * ```ts
 * import type { AfterApply, ResolveConflict } from "./types.ts";
 *
 * export const afterApply: AfterApply = (cs, error) =>
 *   error && cs.changes.some((c) => c.operation === "SQL") ? { error: null } : undefined;
 *
 * export const resolveConflict: ResolveConflict = (c) => c.local.values ? "local" : undefined;
 * ```
 * @module
 */

/**
 * One SQLite value: NULL → `null`, INTEGER → `bigint`, REAL → `number`, TEXT → `string`,
 * BLOB → `Uint8Array`.
 */
export type SqlValue = null | bigint | number | string | Uint8Array;

/** What a change does. `"SQL"` carries a DDL statement in {@link Change.command}. */
export type Operation = "INSERT" | "UPDATE" | "DELETE" | "SQL";

/** One row change (or one DDL statement) of a replicated transaction. */
export interface Change {
  /** Schema name on the origin node (`"main"`). */
  database: string;
  /** Table name (`""` for `"SQL"` changes). */
  table: string;
  /** Column names in table order; `old_values`/`new_values` follow this order. */
  columns: string[];
  /** Declared primary-key columns in key order; empty when the rowid identifies the row. */
  pk_columns: string[];
  /** What the change does. */
  operation: Operation;
  /** Rowid before the change (UPDATE, DELETE); `null` otherwise and for WITHOUT ROWID tables. */
  old_rowid: bigint | null;
  /** Rowid after the change (INSERT, UPDATE); `null` otherwise and for WITHOUT ROWID tables. */
  new_rowid: bigint | null;
  /** Row image before the change (UPDATE, DELETE), else `null`. */
  old_values: SqlValue[] | null;
  /** Row image after the change (INSERT, UPDATE), else `null`. */
  new_values: SqlValue[] | null;
  /** The DDL statement of a `"SQL"` change (e.g. `ALTER TABLE t ADD COLUMN c`). */
  command?: string;
  /** Hybrid logical clock of the change (the transaction's unless set). */
  hlc?: number;
}

/**
 * All changes of one committed transaction on one database of another node. ha fills every
 * optional field it knows; when a hook returns a rewritten changeset only its `changes` are
 * used, every other field keeps the original value.
 */
export interface ChangeSet {
  /** The node that made the transaction. */
  node: string;
  /** The row changes and DDL statements, in the order they were made. */
  changes: Change[];
  /** Wall clock at commit on the origin, nanoseconds since the epoch. */
  timestamp_ns: number;
  /** Hybrid logical clock of the transaction (orders writes for last-writer-wins). */
  hlc?: number;
  /** Database id (file base name, e.g. `ha.db`). */
  database?: string;
  /** Unique changeset id (also the NATS message id). */
  id?: string;
  /** Sequence of the message in the replication stream. */
  stream_seq?: number;
  /** NATS subject the changeset arrived on. */
  subject?: string;
}

/** Why applying a changeset failed (the transaction was rolled back). */
export interface ApplyError {
  /** The SQLite or ha error message. */
  message: string;
}

/** A query result: column names and rows of exact values. */
export interface QueryResult {
  /** Result column names. */
  columns: string[];
  /** Rows, each in `columns` order. */
  rows: SqlValue[][];
}

/** Parameters of {@link HookContext.query}: positional (`?`, `$1`) or named (`:name`). */
export type QueryParams = unknown[] | Record<string, unknown>;

/** What every hook receives besides its data. */
export interface HookContext {
  /**
   * Runs ONE read-only statement (SELECT, WITH … SELECT, VALUES, a reading PRAGMA) on the local
   * copy of {@link HookContext.database} and returns all rows. Writes are rejected. Counts
   * against the hook's time limit.
   */
  query(sql: string, params?: QueryParams): Promise<QueryResult>;
  /** Database id the changeset belongs to. */
  database: string;
  /** Name of this node (the one applying the changeset). */
  node: string;
  /** Writes an info line to ha's log (`console.*` works too and is routed to the log). */
  log(msg: string, fields?: Record<string, unknown>): void;
}

/**
 * What `beforeApply` returns: `undefined` applies the changeset as it is, `{ skip: true }` drops
 * it (acknowledged, nothing applied), `{ changeset }` applies a rewritten one (only its `changes`
 * are used).
 */
export type BeforeResult = undefined | { skip: true } | { changeset: ChangeSet };

/**
 * What `afterApply` returns: `undefined` keeps the outcome, `{ error: null }` swallows the error
 * (the changeset counts as done although its transaction was rolled back), `{ error: "…" }`
 * reports a different error (the changeset is retried).
 */
export type AfterResult = undefined | { error: null } | { error: string };

/**
 * Called before a changeset from another node is applied, outside the apply transaction.
 * Default when missing, throwing, invalid or too slow: apply the changeset unchanged.
 */
export type BeforeApply = (
  cs: ChangeSet,
  ctx: HookContext,
) => BeforeResult | Promise<BeforeResult>;

/**
 * Called after a changeset was applied (`error` null) or failed and was rolled back.
 * Default when missing, throwing, invalid or too slow: keep the original outcome.
 */
export type AfterApply = (
  cs: ChangeSet,
  error: ApplyError | null,
  ctx: HookContext,
) => AfterResult | Promise<AfterResult>;

/**
 * A remote row change that meets a local row that differs from what the remote node started
 * from: the local row is not the remote change's `old_values` (UPDATE, DELETE), exists although
 * the remote INSERTs it, or was deleted locally. Values are in {@link Conflict.columns} order.
 */
export interface Conflict {
  /** Table of the row. */
  table: string;
  /** Column names; every `values` array below follows this order. */
  columns: string[];
  /** Primary-key columns (empty: rowid). */
  pk_columns: string[];
  /** The row as it is on this node. */
  local: {
    /** Current local row; `null` when deleted here or missing. */
    values: SqlValue[] | null;
    /** Clock of the last write of the row known here; `null` when unknown (pre-replication). */
    hlc: number | null;
    /** Node of that write; `null` when unknown. */
    node: string | null;
  };
  /**
   * The incoming change; for a row the changeset changes several times, its net effect on the
   * row (the first change's `old_values`, the last change's `values`).
   */
  remote: {
    operation: "INSERT" | "UPDATE" | "DELETE";
    /** The row the remote node wrote (`new_values`); `null` for DELETE. */
    values: SqlValue[] | null;
    /** The row as the remote node saw it before its change (`old_values`); `null` for INSERT. */
    old_values: SqlValue[] | null;
    hlc: number;
    node: string;
  };
  /** Index of the change (the row's first, see `remote`) in `changeset.changes`. */
  change_index: number;
  /** The changeset being applied. */
  changeset: ChangeSet;
}

/**
 * How a conflict ends: `"local"` keeps the local row (remote change ignored), `"remote"` applies
 * the remote change, `{ values }` writes this merged row (all columns, in `columns` order),
 * `undefined` lets the default decide: last writer wins by (hybrid logical clock, node name).
 */
export type Resolution = "local" | "remote" | { values: SqlValue[] } | undefined;

/**
 * Decides one row conflict. Called for every conflicting row of a changeset (all of them in one
 * sandbox round trip), whichever side is newer. Must be deterministic — every node resolves the
 * same conflict on its own and they must end with the same row. Default when missing, throwing,
 * invalid or too slow: last writer wins.
 */
export type ResolveConflict = (
  conflict: Conflict,
  ctx: HookContext,
) => Resolution | Promise<Resolution>;

/** The hooks one module may export (each optional). */
export interface Interceptor {
  /** Rewrite or skip a remote changeset before it is applied. */
  beforeApply?: BeforeApply;
  /** Swallow or replace the outcome of applying it. */
  afterApply?: AfterApply;
  /** Decide row conflicts (all of one changeset in one round trip). */
  resolveConflict?: ResolveConflict;
}

/** Names of the hooks. */
export type HookName = keyof Interceptor;
