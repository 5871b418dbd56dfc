/**
 * Runs the benchmarks named on the command line (all when none):
 * `deno task bench [http] [replication] [pgbench] [compare] …`. Never part of `deno task test`.
 */
const ALL: Record<string, string> = {
  http: "./http.ts",
  replication: "./replication.ts",
  lag: "./lag.ts",
  catchup: "./catchup.ts",
  pgbench: "./pgbench.ts",
  interceptor: "./interceptor.ts",
  snapshot: "./snapshot.ts",
  ids: "./ids.ts",
  interrupt: "./interrupt.ts",
  metrics: "./metrics.ts",
  compare: "./compare.ts",
  footprint: "./footprint.ts",
  "repl-writes": "./repl_writes.ts",
  "pg-insert": "./pg_insert.ts",
  "nats-hop": "./nats_hop.ts",
  "nats-transport": "./nats_transport.ts",
  "apply-wait": "./apply_wait.ts",
  "apply-batch": "./apply_batch.ts",
  "writer-cost": "./writer_cost.ts",
  "wake-cost": "./wake_cost.ts",
  "live-apply": "./live_apply.ts",
  "apply-cost": "./apply_cost.ts",
};

const names = Deno.args.length ? Deno.args : Object.keys(ALL);
for (const name of names) {
  const path = ALL[name];
  if (!path) {
    console.error(`unknown benchmark "${name}" (have: ${Object.keys(ALL).join(", ")})`);
    Deno.exit(2);
  }
  try {
    const mod = await import(path) as { main: () => Promise<void> };
    console.log(`== ${name}`);
    await mod.main();
  } catch (e) {
    console.error(`benchmark ${name} unavailable: ${(e as Error).message}`);
  }
}
