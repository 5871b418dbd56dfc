/**
 * `interceptors/keep_highest_version.ts` on a real cluster: two nodes update the same rows while
 * NATS is down (so the writes are truly concurrent); once it is back every node keeps, per row,
 * the version with the larger `version` column, whichever write was newer.
 */
import assert from "node:assert/strict";
import { Cluster } from "./helpers/cluster.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };
const ARGS = ["--async-replication", "--interceptor", "interceptors/keep_highest_version.ts"];

Deno.test(
  "keep_highest_version: concurrent updates converge to the higher version",
  opts,
  async () => {
    const cluster = new Cluster();
    try {
      let hub = await cluster.start("hub", { embeddedNats: true, args: ARGS });
      const n1 = await cluster.start("node1", { natsUrl: hub.natsUrl!, args: ARGS });
      const n2 = await cluster.start("node2", { natsUrl: hub.natsUrl!, args: ARGS });
      await n1.sql("CREATE TABLE docs(id INTEGER PRIMARY KEY, body TEXT, version INTEGER)");
      await n1.sql("INSERT INTO docs VALUES (1, 'v1', 1), (2, 'v1', 1)");
      await cluster.waitConverged([hub, n1, n2], ["docs"]);
      await cluster.kill(hub);
      // row 1: node1 writes the higher version first, node2 a lower one later (LWW would pick it)
      await n1.sql("UPDATE docs SET body = 'node1', version = 7 WHERE id = 1");
      await n2.sql("UPDATE docs SET body = 'node2', version = 5 WHERE id = 1");
      // row 2: the other way round
      await n1.sql("UPDATE docs SET body = 'node1', version = 3 WHERE id = 2");
      await n2.sql("UPDATE docs SET body = 'node2', version = 9 WHERE id = 2");
      hub = await cluster.start("hub", { embeddedNats: true, args: ARGS, reuse: hub });
      await cluster.waitConverged([hub, n1, n2], ["docs"], 40_000);
      for (const n of [hub, n1, n2]) {
        const r = await n.sql("SELECT id, body, version FROM docs ORDER BY id");
        assert.deepEqual(r.rows, [[1, "node1", 7], [2, "node2", 9]], n.name);
      }
    } finally {
      await cluster.stop();
    }
  },
);
