/**
 * pgbench single-row inserts (`bench/pgbench/insert.sql`, `-M prepared`, BENCH_CLIENTS = 8) on
 * one ha node with embedded NATS and synchronous replication, the insert row of `compare.ts`
 * alone: prints tps, inserts per published changeset (group size) and the CPU per insert of each
 * thread of ha and nats-server (from `/proc`, steadier than tps on a shared machine).
 *
 * Env: BENCH_SECONDS (5), BENCH_CLIENTS (8), BENCH_MODE (prepared), BENCH_REPLICATE=0 (no NATS),
 * BENCH_V8_FLAGS (ha's `--v8-flags`), PROF_DIR=dir (ha under
 * `--cpu-prof`; summarise with `bench/profile_summary.ts`).
 *
 * Run: `deno task bench pg-insert`.
 * @module
 */
import { pgbench, psql, SECONDS, startHaTarget } from "./pgbench.ts";
import { cpuByThread } from "./repl_writes.ts";

const PROF = Deno.env.get("PROF_DIR");
const V8_FLAGS = Deno.env.get("BENCH_V8_FLAGS");

async function published(url: string): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  return text.split("\n").filter((l) => l.startsWith("ha_replication_published_total"))
    .reduce((a, l) => a + Number(l.split(" ").at(-1)), 0);
}

/** Runs the benchmark and prints tps, group size and CPU µs per insert by thread. */
export async function main(): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "ha-pginsert-" });
  const ha = await startHaTarget(
    dir,
    Deno.env.get("BENCH_REPLICATE") !== "0",
    [
      ...(PROF ? ["--cpu-prof", `--cpu-prof-dir=${PROF}`] : []),
      ...(V8_FLAGS ? [`--v8-flags=${V8_FLAGS}`] : []),
    ],
  );
  try {
    await psql(ha, "CREATE TABLE history(id INTEGER PRIMARY KEY, aid INTEGER, delta INTEGER)");
    const pub0 = await published(ha.url);
    const before = cpuByThread([ha.pid]);
    const tps = await pgbench(ha, "insert", Deno.env.get("BENCH_MODE") ?? "prepared");
    const after = cpuByThread([ha.pid]);
    const inserts = tps * SECONDS;
    const groups = await published(ha.url) - pub0;
    console.log(`tps ${tps.toFixed(0)}, inserts per changeset ${(inserts / groups).toFixed(2)}`);
    let sum = 0;
    const rows = [...after].map(([k, v]) => [k, v - (before.get(k) ?? 0)] as const)
      .filter(([, v]) => v > 0).sort((a, b) => b[1] - a[1]);
    for (const [k, ms] of rows) {
      sum += ms;
      console.log(`${k.padEnd(32)} ${(ms * 1000 / inserts).toFixed(0).padStart(5)} µs/insert`);
    }
    console.log(`${"total".padEnd(32)} ${(sum * 1000 / inserts).toFixed(0).padStart(5)} µs/insert`);
  } finally {
    await ha.stop(); // SIGTERM: --cpu-prof writes its profiles on exit
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}

if (import.meta.main) await main();
