/**
 * Conversion between the replication wire format (`cdc/`: JSON-safe encoded values) and the
 * changesets hooks see (exact values: bigint, number, string, Uint8Array, null).
 *
 * @module
 */
import {
  type CdcValue,
  type Change as WireChange,
  type ChangeSet as WireChangeSet,
  decodeValue,
  encodeValue,
  type WireValue,
} from "../cdc/mod.ts";
import type { Change, ChangeSet, SqlValue } from "../../interceptors/types.ts";

// The two value types must stay the same set.
const _sameValues: [SqlValue] extends [CdcValue] ? [CdcValue] extends [SqlValue] ? true : never
  : never = true;
void _sameValues;

/** Where a changeset came from in the stream (filled into the hook's view). */
export interface StreamMeta {
  /** Stream sequence of the message. */
  stream_seq?: number;
  /** Subject the message arrived on. */
  subject?: string;
}

/**
 * The hook's view of a wire changeset.
 *
 * @example
 * ```ts
 * const cs = toHookChangeSet(wire, { stream_seq: 42, subject: "ha_replication.ha_db" });
 * cs.changes[0].new_values; // [1n, "a", 1.5, Uint8Array, null]
 * ```
 */
export function toHookChangeSet(cs: WireChangeSet, meta: StreamMeta = {}): ChangeSet {
  const out: ChangeSet = {
    node: cs.node,
    changes: cs.changes.map((c) => toHookChange(c, cs.hlc)),
    timestamp_ns: cs.timestamp_ns,
    hlc: cs.hlc,
    database: cs.db,
    id: cs.id,
  };
  if (meta.stream_seq !== undefined) out.stream_seq = meta.stream_seq;
  if (meta.subject !== undefined) out.subject = meta.subject;
  return out;
}

/** One wire change as hooks see it. */
export function toHookChange(c: WireChange, hlc?: number): Change {
  const out: Change = {
    database: c.database ?? "main",
    table: c.table ?? "",
    columns: c.columns ?? [],
    pk_columns: c.pk_columns ?? [],
    operation: c.operation,
    old_rowid: rowid(c.old_rowid),
    new_rowid: rowid(c.new_rowid),
    old_values: c.old_values ? c.old_values.map(decodeValue) : null,
    new_values: c.new_values ? c.new_values.map(decodeValue) : null,
  };
  if (c.command !== undefined) out.command = c.command;
  const h = typeof c.hlc === "number" ? c.hlc : hlc;
  if (h !== undefined) out.hlc = h;
  return out;
}

/**
 * The wire changeset to apply after `beforeApply` rewrote `changes` (already validated):
 * every other field comes from `original`.
 *
 * @example
 * ```ts
 * const wire = toWireChangeSet(outcome.changeset, original);
 * ```
 */
export function toWireChangeSet(cs: ChangeSet, original: WireChangeSet): WireChangeSet {
  return { ...original, changes: cs.changes.map((c) => toWireChange(c, original.hlc)) };
}

/** One hook change in the wire format. */
export function toWireChange(c: Change, hlc: number): WireChange {
  const out: WireChange = {
    database: c.database ?? "main",
    table: c.table ?? "",
    columns: c.columns ?? [],
    pk_columns: c.pk_columns ?? [],
    operation: c.operation,
    hlc: typeof c.hlc === "number" ? c.hlc : hlc,
  };
  if (c.old_rowid != null) out.old_rowid = encodeValue(c.old_rowid);
  if (c.new_rowid != null) out.new_rowid = encodeValue(c.new_rowid);
  if (c.old_values) out.old_values = c.old_values.map(encodeValue);
  if (c.new_values) out.new_values = c.new_values.map(encodeValue);
  if (c.command !== undefined) out.command = c.command;
  return out;
}

function rowid(w: WireValue | undefined): bigint | null {
  if (w === undefined || w === null) return null;
  const v = decodeValue(w);
  return typeof v === "bigint" ? v : null;
}
