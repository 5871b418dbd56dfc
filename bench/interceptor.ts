/**
 * Cost of the interceptor sandbox per changeset: one no-op hook round trip (structured clone to
 * the worker and back, result validation) for changesets of 1, 10 and 100 rows, sequential
 * (one applier) and with 8 calls in flight. `resolveConflicts` sends every row as a conflict in
 * one batch. The in-process call of the same no-op function is the ceiling.
 *
 * Run: `deno run -A --unstable-worker-options bench/interceptor.ts`
 * (`BENCH_SECONDS` per figure, default 1).
 */
import { toHookChangeSet, toWireChangeSet } from "../src/interceptor/mod.ts";
import { sampleChangeSet, sampleConflicts, testInterceptor } from "../src/interceptor/testing.ts";
import type { ChangeSet as WireChangeSet } from "../src/cdc/mod.ts";
import { encodeValue } from "../src/cdc/mod.ts";
import { percentile, table } from "./stats.ts";

const SECONDS = Number(Deno.env.get("BENCH_SECONDS") ?? 1);
const ROWS = [1, 10, 100];

/** Runs `op` from `concurrency` loops for SECONDS; µs per call (wall / calls) and p50/p99. */
async function measure(
  concurrency: number,
  op: () => Promise<unknown> | unknown,
): Promise<{ us: number; p50: number; p99: number }> {
  for (let i = 0; i < 200; i++) await op(); // warm-up
  const lat: number[] = [];
  const end = performance.now() + SECONDS * 1000;
  const loop = async () => {
    while (performance.now() < end) {
      const t = performance.now();
      await op();
      lat.push((performance.now() - t) * 1000);
    }
  };
  const t0 = performance.now();
  await Promise.all(Array.from({ length: concurrency }, loop));
  const us = (performance.now() - t0) * 1000 / lat.length;
  lat.sort((a, b) => a - b);
  return { us, p50: percentile(lat, 0.5), p99: percentile(lat, 0.99) };
}

function wire(cs: ReturnType<typeof sampleChangeSet>): WireChangeSet {
  return {
    id: cs.id!,
    node: cs.node,
    incarnation: "bench",
    db: cs.database!,
    hlc: cs.hlc!,
    timestamp_ns: cs.timestamp_ns,
    changes: cs.changes.map((c) => ({
      database: c.database,
      table: c.table,
      columns: c.columns,
      pk_columns: c.pk_columns,
      operation: c.operation,
      new_rowid: encodeValue(c.new_rowid),
      new_values: c.new_values!.map(encodeValue),
      hlc: cs.hlc!,
    })),
  };
}

/** Prints the figures. */
export async function main(): Promise<void> {
  await using t = await testInterceptor(`
export function beforeApply(cs, ctx) { return undefined; }
export function afterApply(cs, error, ctx) { return undefined; }
export function resolveConflict(conflict, ctx) { return undefined; }`);
  const local = (_cs: unknown) => undefined;
  const rows: (string | number)[][] = [];
  for (const n of ROWS) {
    const cs = sampleChangeSet(n);
    const conflicts = sampleConflicts(cs);
    const w = wire(cs);
    const figures: [string, number, () => unknown][] = [
      ["in-process call (ceiling)", 1, () => local(cs)],
      ["wire→hook→wire conversion", 1, () => toWireChangeSet(toHookChangeSet(w), w)],
      ["beforeApply", 1, () => t.host.beforeApply(cs, "ha.db")],
      ["beforeApply, 8 in flight", 8, () => t.host.beforeApply(cs, "ha.db")],
      ["afterApply", 1, () => t.host.afterApply(cs, null, "ha.db")],
      [`resolveConflicts (${n} in 1 batch)`, 1, () => t.host.resolveConflicts(conflicts, "ha.db")],
    ];
    for (const [name, conc, op] of figures) {
      const r = await measure(conc, op);
      rows.push([n, name, r.us, r.p50, r.p99, r.us / n]);
    }
  }
  table(["rows", "call", "µs/call", "p50 µs", "p99 µs", "µs/row"], rows);
  if (t.host.failures) console.error(`unexpected hook failures: ${t.host.failures}`);
}

if (import.meta.main) await main();
