/**
 * The replication wire format: one {@link ChangeSet} per committed transaction, JSON, a superset
 * of the README's format (`node`, `changes[]`, `timestamp_ns`) with exact values
 * (see `values.ts`), a hybrid logical clock per change and a stable `id` used as `Nats-Msg-Id`.
 *
 * @example
 * ```ts
 * const cs = decodeChangeSet(encodeChangeSet({
 *   id: "ha.db:node1:1", node: "node1", incarnation: "x", db: "ha.db", hlc: 1,
 *   timestamp_ns: 0, changes: [],
 * }));
 * ```
 * @module
 */
import type { WireValue } from "./values.ts";

/** What a change does. `SQL` carries a DDL statement in `command`. */
export type Operation = "INSERT" | "UPDATE" | "DELETE" | "SQL";

/** One row change or one DDL statement. */
export interface Change {
  /** Schema name on the origin (`main`). */
  database: string;
  /** Table name (empty for `SQL`). */
  table: string;
  /** Column names in table order (generated columns excluded). */
  columns: string[];
  /** Declared primary-key columns in key order (empty: rowid identifies the row). */
  pk_columns: string[];
  operation: Operation;
  /** Rowid before (UPDATE, DELETE); null for WITHOUT ROWID tables. */
  old_rowid?: WireValue;
  /** Rowid after (INSERT, UPDATE); null for WITHOUT ROWID tables. */
  new_rowid?: WireValue;
  /** Row image before (UPDATE, DELETE), in `columns` order. */
  old_values?: WireValue[];
  /** Row image after (INSERT, UPDATE), in `columns` order. */
  new_values?: WireValue[];
  /**
   * UPDATE: the columns the origin's statement set (its `UPDATE OF` triggers fired), on the first
   * change of each row per statement; replicas set these and the columns that differ.
   */
  updated_columns?: string[];
  /** `REPLACE`: the origin's statement resolved conflicts by REPLACE; replicas do the same. */
  on_conflict?: "REPLACE";
  /** DDL statement text (operation `SQL`), already made idempotent. */
  command?: string;
  /** Hybrid logical clock of the transaction that made the change. */
  hlc: number;
}

/** All changes of one committed transaction on one database. */
export interface ChangeSet {
  /** Stable, unique id (`<db>:<node>:<incarnation>:<hlc>`), sent as `Nats-Msg-Id`. */
  id: string;
  /** Origin node name. */
  node: string;
  /** Origin process incarnation (random per start). */
  incarnation: string;
  /** Origin database id (file base name, e.g. `ha.db`). */
  db: string;
  /** Hybrid logical clock of the transaction. */
  hlc: number;
  /** Wall clock at commit, ns since the epoch (informational). */
  timestamp_ns: number;
  changes: Change[];
}

/** Serialises a changeset. */
export function encodeChangeSet(cs: ChangeSet): string {
  return JSON.stringify(cs);
}

const utf8 = new TextDecoder();

/**
 * Parses and validates a changeset; throws `TypeError` with a reason on malformed input.
 *
 * @example
 * ```ts
 * decodeChangeSet('{"node":"n"}'); // throws: changeset: "id" must be a string
 * ```
 */
export function decodeChangeSet(text: string | Uint8Array): ChangeSet {
  const raw = typeof text === "string" ? text : utf8.decode(text);
  const v = JSON.parse(raw) as Record<string, unknown>;
  if (v === null || typeof v !== "object") throw new TypeError("changeset: not an object");
  for (const k of ["id", "node", "db"]) {
    if (typeof v[k] !== "string") throw new TypeError(`changeset: "${k}" must be a string`);
  }
  if (typeof v.hlc !== "number") throw new TypeError(`changeset: "hlc" must be a number`);
  if (!Array.isArray(v.changes)) throw new TypeError(`changeset: "changes" must be an array`);
  for (const [i, c] of (v.changes as Record<string, unknown>[]).entries()) {
    if (c === null || typeof c !== "object") throw new TypeError(`change ${i}: not an object`);
    const op = c.operation;
    if (op !== "INSERT" && op !== "UPDATE" && op !== "DELETE" && op !== "SQL") {
      throw new TypeError(`change ${i}: bad operation ${JSON.stringify(op)}`);
    }
    if (op === "SQL") {
      if (typeof c.command !== "string") throw new TypeError(`change ${i}: "command" missing`);
      continue;
    }
    if (typeof c.table !== "string" || !Array.isArray(c.columns)) {
      throw new TypeError(`change ${i}: "table" and "columns" required`);
    }
    if (op !== "DELETE" && !Array.isArray(c.new_values)) {
      throw new TypeError(`change ${i}: "new_values" required`);
    }
    if (op !== "INSERT" && !Array.isArray(c.old_values)) {
      throw new TypeError(`change ${i}: "old_values" required`);
    }
    const upd = c.updated_columns;
    if (upd !== undefined && !(Array.isArray(upd) && upd.every((x) => typeof x === "string"))) {
      throw new TypeError(`change ${i}: "updated_columns" must be an array of strings`);
    }
    if (c.on_conflict !== undefined && c.on_conflict !== "REPLACE") {
      throw new TypeError(`change ${i}: bad on_conflict ${JSON.stringify(c.on_conflict)}`);
    }
  }
  return v as unknown as ChangeSet;
}
