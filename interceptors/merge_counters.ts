/**
 * Conflict resolver for counters: concurrent increments on different nodes add up instead of
 * one overwriting the other.
 *
 * Handled columns: every column whose name is in {@link COUNTER_COLUMNS} (case-insensitive)
 * and whose values are INTEGERs on both sides. For a conflicting remote change:
 *
 * - UPDATE: merged counter = local + (remote new − remote old), i.e. the local value plus the
 *   increment the remote node made. Node A (10 → 11) and node B (10 → 12) both end at 13.
 * - INSERT of a row that exists here (both nodes inserted the same key): the remote's inserted
 *   value counts as an increment from 0, so two concurrent `INSERT … count = 1` make 2.
 * - Every other column of the merged row comes from the newer side (hybrid logical clock, then
 *   node name), exactly as the default would choose, so all nodes converge.
 * - A remote DELETE, a row deleted here, a table without counter columns, or a counter that is
 *   not an INTEGER on both sides: the default (last writer wins).
 *
 * Increments add up only when they travel as UPDATEs of the counter (`SET count = count + 1`);
 * a client that writes absolute values (`SET count = 7`) gets its delta merged all the same.
 *
 * Run: `ha --interceptor interceptors/merge_counters.ts`
 * @module
 */
import type { Conflict, ResolveConflict, SqlValue } from "./mod.ts";

/** Names of counter columns; edit to suit your schema. */
const COUNTER_COLUMNS = ["count", "counter"];

const COUNTERS = new Set(COUNTER_COLUMNS.map((c) => c.toLowerCase()));

/** Whether the remote change is newer than the local row's last write (the default's rule). */
function remoteIsNewer(c: Conflict): boolean {
  const { local, remote } = c;
  if (local.hlc === null || local.node === null) return true;
  if (remote.hlc !== local.hlc) return remote.hlc > local.hlc;
  return remote.node > local.node;
}

/** Merges counter columns by adding the remote delta to the local value. */
export const resolveConflict: ResolveConflict = (c) => {
  const local = c.local.values;
  const remoteNew = c.remote.values;
  if (local === null || remoteNew === null) return undefined;
  if (c.remote.operation === "DELETE") return undefined;
  const counters = c.columns.flatMap((name, i) => COUNTERS.has(name.toLowerCase()) ? [i] : []);
  if (counters.length === 0) return undefined;

  const merged: SqlValue[] = [...(remoteIsNewer(c) ? remoteNew : local)];
  let mergedAny = false;
  for (const i of counters) {
    const l = local[i];
    const n = remoteNew[i];
    const o = c.remote.operation === "INSERT" ? 0n : c.remote.old_values?.[i];
    if (typeof l !== "bigint" || typeof n !== "bigint" || typeof o !== "bigint") continue;
    merged[i] = l + (n - o);
    mergedAny = true;
  }
  return mergedAny ? { values: merged } : undefined;
};
