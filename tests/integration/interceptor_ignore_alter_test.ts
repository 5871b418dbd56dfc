/**
 * `interceptors/ignore_alter_table_errors.ts` on a real cluster: an ALTER TABLE that fails on a
 * replica (there the table is a local view) is swallowed, and replication goes on.
 */
import assert from "node:assert/strict";
import { Cluster, waitFor } from "./helpers/cluster.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };

Deno.test(
  "ignore_alter_table_errors: a failing replicated ALTER TABLE is skipped",
  opts,
  async () => {
    const cluster = new Cluster();
    try {
      const n1 = await cluster.start("node1", { embeddedNats: true });
      // node2's own DDL stays local: it gets a view where node1 has a table.
      const n2 = await cluster.start("node2", {
        natsUrl: n1.natsUrl!,
        args: ["--disable-ddl-sync", "--interceptor", "interceptors/ignore_alter_table_errors.ts"],
      });
      await n1.sql("CREATE TABLE u(id INTEGER PRIMARY KEY, v TEXT)");
      await cluster.waitConverged([n1, n2], ["u"]);
      await n2.sql("CREATE VIEW w AS SELECT 1 AS x");
      await n1.sql("CREATE TABLE w(id INTEGER PRIMARY KEY)");
      await n1.sql("ALTER TABLE w ADD COLUMN y INTEGER"); // node2: "Cannot add a column to a view"
      await n1.sql("INSERT INTO u VALUES (1, 'after the alter')");
      await waitFor("the insert after the ALTER on node2", async () => {
        const r = await n2.sql("SELECT v FROM u WHERE id = 1");
        return r.rows.length === 1;
      });
      assert.deepEqual((await n2.sql("SELECT v FROM u")).rows, [["after the alter"]]);
      const status = JSON.stringify((await n2.get("/replications")).body);
      assert.doesNotMatch(status, /"failing":\{/);
      // the log is flushed when the process ends
      await cluster.kill(n2);
      await waitFor("the error logged", () => /Cannot add a column to a view/.test(n2.log()));
      assert.match(n2.log(), /ignoring error of a replicated ALTER TABLE/);
    } finally {
      await cluster.stop();
    }
  },
);
