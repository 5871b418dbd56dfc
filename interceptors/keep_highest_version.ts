/**
 * Conflict resolver: of two concurrent versions of a row, keep the one whose `version` column
 * holds the larger number. Equal versions, a missing column, a non-numeric value or a deleted
 * side fall back to the default (last writer wins by hybrid logical clock, then node name).
 *
 * Deterministic: both nodes of a conflict compare the same two rows and keep the same one.
 *
 * Run: `ha --interceptor interceptors/keep_highest_version.ts`
 * @module
 */
import type { ResolveConflict, SqlValue } from "./mod.ts";

/** The column compared; change it to suit your schema. */
const VERSION_COLUMN = "version";

function numeric(v: SqlValue | undefined): v is bigint | number {
  return typeof v === "bigint" || (typeof v === "number" && !Number.isNaN(v));
}

/** Keeps the row with the larger `version`; ties and deletes → last writer wins. */
export const resolveConflict: ResolveConflict = (conflict) => {
  const i = conflict.columns.indexOf(VERSION_COLUMN);
  if (i < 0) return undefined;
  const local = conflict.local.values?.[i];
  const remote = conflict.remote.values?.[i];
  if (!numeric(local) || !numeric(remote)) return undefined;
  // `<`/`>` compare bigint and number exactly, also across the two types.
  if (local > remote) return "local";
  if (remote > local) return "remote";
  return undefined;
};
