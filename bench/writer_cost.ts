/**
 * CPU per captured insert on the writer worker and the main thread, without NATS or a client
 * process (steadier than `pg_insert.ts` on a shared machine): one engine on a file database with
 * the replication writer plugin (capture, changeset, row versions, outbox), the id plugin and the
 * interrupt extension, as a node has them; waves of BENCH_CLIENTS concurrent single-row inserts
 * through `Database.execute` (group commit forms as with pgbench), then the same one at a time.
 * CPU per thread from `/proc` ("workers": the writer, idle readers and the checkpointer).
 *
 * Env: BENCH_SECONDS (3 per phase), BENCH_CLIENTS (8), BENCH_PLUGINS=0 (no plugins: the engine
 * alone), BENCH_DOLLAR=1 (`$1, $2` placeholders, as PostgreSQL drivers send, instead of `?`). Profile with `deno run -A --unstable-worker-options --cpu-prof bench/writer_cost.ts`.
 *
 * Run: `deno task bench writer-cost`.
 * @module
 */
import { openEngine } from "../src/engine/mod.ts";
import { findInterruptExtension } from "../src/engine/native/locate.ts";
import { createLogger } from "../src/log/mod.ts";
import { REPLICATION_PLUGIN, type ReplicationPluginOptions } from "../src/replication/mod.ts";
import { ID_PLUGIN } from "../src/ids/mod.ts";
import type { IdPluginOptions } from "../src/ids/plugin.ts";
import { cpuByThread } from "./repl_writes.ts";

const SECONDS = Number(Deno.env.get("BENCH_SECONDS") ?? 3);
const CLIENTS = Number(Deno.env.get("BENCH_CLIENTS") ?? 8);
const PLUGINS = Deno.env.get("BENCH_PLUGINS") !== "0";
const DOLLAR = Deno.env.get("BENCH_DOLLAR") === "1";

/** Runs the benchmark and prints, per phase, inserts/s and CPU µs per insert by thread. */
export async function main(): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "ha-writercost-" });
  const replication: ReplicationPluginOptions = {
    node: "node1",
    incarnation: crypto.randomUUID(),
    rowIdentify: "pk",
    disableDdlSync: false,
    memory: false,
    outboxDir: null,
    maxPayload: 1024 * 1024,
  };
  const ids: IdPluginOptions = { scheme: "cluster", slot: 1, node: "node1" };
  const engine = await openEngine({
    dsns: [`${dir}/bench.db`],
    memory: false,
    concurrentQueries: 16,
    interrupt: await findInterruptExtension(),
    plugins: PLUGINS
      ? [
        {
          name: REPLICATION_PLUGIN,
          url: new URL("../src/replication/writer_plugin.ts", import.meta.url).href,
          options: replication,
        },
        {
          name: ID_PLUGIN,
          url: new URL("../src/ids/plugin.ts", import.meta.url).href,
          options: ids,
        },
      ]
      : [],
    logger: createLogger("error"),
  });
  const db = engine.defaultDb;
  try {
    await db.execute([{
      sql: "CREATE TABLE history(id INTEGER PRIMARY KEY, aid INTEGER, delta INTEGER)",
    }]);
    const insert = () =>
      db.execute([{
        sql: `INSERT INTO history(aid, delta) VALUES (${DOLLAR ? "$1, $2" : "?, ?"})`,
        params: [Math.floor(Math.random() * 100_000), Math.floor(Math.random() * 10_000) - 5000],
      }]);
    for (const clients of [CLIENTS, 1]) {
      const client = async (until: number) => {
        let n = 0;
        while (performance.now() < until) {
          await insert();
          n++;
        }
        return n;
      };
      await Promise.all(Array.from({ length: clients }, () => client(performance.now() + 500)));
      const before = cpuByThread([Deno.pid]);
      const t0 = performance.now();
      const counts = await Promise.all(
        Array.from({ length: clients }, () => client(t0 + SECONDS * 1000)),
      );
      const secs = (performance.now() - t0) / 1000;
      const after = cpuByThread([Deno.pid]);
      const inserts = counts.reduce((a, b) => a + b, 0);
      const us = (k: string) => ((after.get(k) ?? 0) - (before.get(k) ?? 0)) * 1000 / inserts;
      const all = [...after.keys()].reduce((a, k) => a + us(k), 0);
      console.log(
        `${String(clients).padStart(2)} clients: ${(inserts / secs).toFixed(0)} inserts/s, ` +
          `µs/insert: main ${us("node1 deno").toFixed(0)}, workers ${
            us("node1 worker-").toFixed(0)
          }, all ${all.toFixed(0)}`,
      );
    }
  } finally {
    await engine.close();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}

if (import.meta.main) await main();
