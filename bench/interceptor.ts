/**
 * Cost of the interceptor sandbox per changeset: one no-op hook round trip (structured clone to
 * the worker and back, result validation) for changesets of 1, 10 and 100 rows, sequential
 * (one applier) and with 8 calls in flight. `resolveConflicts` sends every row as a conflict in
 * one batch. The in-process call of the same no-op function is the ceiling.
 *
 * Then the apply overhead: K remote single-row changesets applied by a real engine with the
 * replication writer plugin, as the subscriber does without an interceptor (batched, one
 * transaction per batch), one per transaction, and with a no-op interceptor (beforeApply and
 * afterApply per changeset, in flight together; conflict detection; batches of 64), and the ratio
 * (target ≤ 2x).
 *
 * Run: `deno run -A --unstable-worker-options bench/interceptor.ts`
 * (`BENCH_SECONDS` per figure, default 1; `BENCH_APPLY_K` changesets, default 500).
 */
import { type InterceptorHost, toHookChangeSet, toWireChangeSet } from "../src/interceptor/mod.ts";
import { sampleChangeSet, sampleConflicts, testInterceptor } from "../src/interceptor/testing.ts";
import type { ChangeSet as WireChangeSet } from "../src/cdc/mod.ts";
import { encodeValue } from "../src/cdc/mod.ts";
import { percentile, table } from "./stats.ts";
import { createLogger } from "../src/log/mod.ts";
import { applyIntercepted } from "../src/replication/apply_intercepted.ts";
import { type ApplyMessage, replicationClient } from "../src/replication/plugin_api.ts";
import { close, node, sql, type TestNode } from "../tests/unit/helpers/replication_nodes.ts";

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
  await using r = await testInterceptor(`export const resolveConflict = () => undefined;`);
  await applyOverhead(t.host, r.host);
}

const K = Number(Deno.env.get("BENCH_APPLY_K") ?? 500);

/**
 * Applies K remote changesets (INSERTs, then UPDATEs of the same rows) on fresh nodes: batched
 * without an interceptor, per message without one, per message through `host`. Prints ms and
 * the ratio intercepted / batched.
 */
async function applyOverhead(host: InterceptorHost, resolverOnly: InterceptorHost): Promise<void> {
  const origin = await node("origin");
  await sql(origin, "CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT, n INTEGER)");
  for (let i = 0; i < K; i++) await sql(origin, "INSERT INTO t VALUES (?, ?, 0)", [i, `row ${i}`]);
  for (let i = 0; i < K; i++) await sql(origin, "UPDATE t SET n = n + 1 WHERE id = ?", [i]);
  const msgs: ApplyMessage[] = origin.out.map((p, i) => ({
    seq: i + 1,
    subject: "s",
    data: p.data,
  }));
  const logger = createLogger("error");
  const modes: [string, (n: TestNode) => Promise<void>][] = [
    ["batched (no interceptor)", async (n) => {
      for (let i = 0; i < msgs.length; i += 500) {
        const r = await replicationClient(n.engine.defaultDb).call("apply", msgs.slice(i, i + 500));
        if (r.error) throw new Error(r.error.message);
      }
    }],
    ["one per message (no interceptor)", async (n) => {
      for (const m of msgs) {
        const r = await replicationClient(n.engine.defaultDb).call("apply", [m]);
        if (r.error) throw new Error(r.error.message);
      }
    }],
    ["no-op interceptor, all 3 hooks", (n) => intercepted(host, n)],
    ["no-op interceptor, resolveConflict only", (n) => intercepted(resolverOnly, n)],
  ];
  /** As the subscriber does with an interceptor: batches of 256. */
  const intercepted = async (h: InterceptorHost, n: TestNode) => {
    const o = { host: h, db: n.engine.defaultDb, self: { node: n.name } };
    for (let i = 0; i < msgs.length; i += 256) {
      const r = await applyIntercepted({ ...o, logger, consumer: "bench" }, msgs.slice(i, i + 256));
      if (r.error) throw new Error(r.error.message);
    }
  };
  const rows: (string | number)[][] = [];
  const ms: number[] = [];
  for (const [name, run] of modes) {
    const n = await node("replica");
    const t0 = performance.now();
    await run(n);
    const took = performance.now() - t0;
    ms.push(took);
    const count = await sql(n, "SELECT sum(n) FROM t");
    if (Number(count[0].rows[0][0]) !== K) throw new Error(`${name}: wrong result`);
    rows.push([name, msgs.length, took, took * 1000 / msgs.length]);
    await close(n);
  }
  await close(origin);
  table(["apply mode", "changesets", "ms", "µs/changeset"], rows);
  const x = (a: number, b: number) => `${(ms[a] / ms[b]).toFixed(2)}x`;
  console.log(`apply overhead vs batched: all 3 hooks ${x(2, 0)}, resolveConflict only ${x(3, 0)}`);
  console.log(`apply overhead vs one per transaction: all 3 hooks ${x(2, 1)}`);
}

if (import.meta.main) await main();
