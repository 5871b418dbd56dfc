/** Messages between the main thread and engine workers (structured-cloned). */
import type { PluginSpec } from "./plugin.ts";
import type { OpenSpec, StatementKind } from "./connection.ts";
import type { ErrorCode, ErrorDetails } from "../errors/mod.ts";
import type { ColumnInfo, Statement, StatementResult } from "./types.ts";

/**
 * A request to a worker; `id` correlates the reply and names the request for a cancel.
 * `timeoutMs`: the statement timeout of a client request (absent or 0 = none).
 */
export type Request =
  | { t: "open"; id: number; databaseId: string; spec: OpenSpec; plugins: PluginSpec[] }
  | { t: "exec"; id: number; stmts: Statement[]; timeoutMs?: number }
  | { t: "execGroup"; id: number; items: GroupRequestItem[] }
  | { t: "txBegin"; id: number; sql: string }
  /** `readOnly`: refuse the statement if it would write (a read-only follower). */
  | { t: "txExec"; id: number; stmt: Statement; readOnly?: boolean; timeoutMs?: number }
  | { t: "txDescribe"; id: number; sql: string }
  | { t: "txRollback"; id: number }
  | { t: "describe"; id: number; sql: string }
  | { t: "backup"; id: number; path: string }
  | { t: "command"; id: number; plugin: string; method: string; args: unknown }
  /** `PRAGMA wal_checkpoint(PASSIVE)` (see checkpointer.ts). */
  | { t: "checkpoint"; id: number }
  | { t: "close"; id: number };

/** What `checkpoint` answers: frames in the WAL, and how many of them are in the database. */
export interface CheckpointReply {
  log: number;
  checkpointed: number;
}

/** What `open` answers. */
export interface OpenReply {
  /** The connection's `ha_interrupt` guard id, or null without the extension. */
  guard: number | null;
}

/** What `exec` answers. */
export interface ExecReply {
  /** One result per input statement (multi-statement strings: the last one's). */
  results: StatementResult[];
  /** Reader only: set when a statement must run on the writer instead. */
  needsWriter?: boolean;
  /** Kinds of the statements seen, for the main thread's routing cache. */
  kinds: Record<string, StatementKind>;
  /** Plugin payloads of the committed transaction, for commit listeners. */
  payloads: unknown[];
}

/**
 * One write request of a group: its statements, and the id and timeout its statements run under
 * (a cancel names that id, so it stops this request alone).
 */
export interface GroupRequestItem {
  id: number;
  stmts: Statement[];
  timeoutMs: number;
}

/**
 * What `execGroup` answers (group commit on the writer): each item's outcome, and the plugin
 * payloads of each transaction committed, in commit order. Consecutive single-statement DML
 * items share one transaction (a savepoint each); other items run alone as `exec` would.
 */
export interface GroupReply {
  items: GroupItem[];
  commits: unknown[][];
}

/** One item of a group: its results and the index of its transaction in `commits`, or its error. */
export type GroupItem =
  | { ok: true; results: StatementResult[]; kinds: Record<string, StatementKind>; commit: number }
  | { ok: false; error: WireError };

/** What `txExec` answers: the result, and whether the statement ended the transaction. */
export interface TxExecReply {
  result: StatementResult;
  /** Set when the statement was COMMIT/END (`commit`) or ROLLBACK (`rollback`). */
  ended?: "commit" | "rollback";
  /** Plugin payloads of a committed transaction. */
  payloads: unknown[];
}

/** What `describe` answers. */
export interface DescribeReply {
  columns: ColumnInfo[];
  kind: StatementKind;
  command: string;
}

/** A serialisable error. */
export interface WireError {
  code: ErrorCode;
  message: string;
  details: ErrorDetails;
}

/** A worker's reply. */
export type Reply =
  | { id: number; ok: true; value: unknown }
  | { id: number; ok: false; error: WireError };
