/**
 * `interceptors/merge_counters.ts` on a real cluster: three nodes increment the same counter
 * concurrently (with NATS up, then while it is down); every node ends with the total.
 */
import assert from "node:assert/strict";
import { Cluster } from "./helpers/cluster.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };
const ARGS = ["--async-replication", "--interceptor", "interceptors/merge_counters.ts"];
const N = 10;

Deno.test("merge_counters: concurrent increments on three nodes add up", opts, async () => {
  const cluster = new Cluster();
  try {
    let hub = await cluster.start("hub", { embeddedNats: true, args: ARGS });
    const nodes = await Promise.all(
      ["node1", "node2", "node3"].map((n) =>
        cluster.start(n, { natsUrl: hub.natsUrl!, args: ARGS })
      ),
    );
    await nodes[0].sql("CREATE TABLE counters(id INTEGER PRIMARY KEY, count INTEGER, who TEXT)");
    await nodes[0].sql("INSERT INTO counters VALUES (1, 0, 'none')");
    await cluster.waitConverged([hub, ...nodes], ["counters"]);
    const bump = (reps: number) =>
      Promise.all(nodes.map(async (n) => {
        for (let i = 0; i < reps; i++) {
          await n.sql("UPDATE counters SET count = count + 1, who = ? WHERE id = 1", [n.name]);
        }
      }));
    await bump(N); // live: replication races the increments
    await cluster.kill(hub);
    await bump(N); // partitioned: every increment conflicts with the others
    hub = await cluster.start("hub", { embeddedNats: true, args: ARGS, reuse: hub });
    await cluster.waitConverged([hub, ...nodes], ["counters"], 40_000);
    for (const n of [hub, ...nodes]) {
      const r = await n.sql("SELECT count FROM counters WHERE id = 1");
      assert.deepEqual(r.rows, [[2 * N * nodes.length]], n.name);
    }
  } finally {
    await cluster.stop();
  }
});
