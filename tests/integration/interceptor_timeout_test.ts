/**
 * A hook that never returns (an endless loop) on a real cluster: the call times out, the error is
 * logged, the default applies, and the node keeps serving and replicating both ways.
 */
import assert from "node:assert/strict";
import { Cluster, waitFor } from "./helpers/cluster.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };

Deno.test("an endless-loop hook times out; the default applies", opts, async () => {
  const cluster = new Cluster();
  try {
    const file = `${cluster.root}/loop.ts`;
    Deno.writeTextFileSync(
      file,
      `export const beforeApply = () => { while (true) { /* stuck */ } };
export const resolveConflict = () => { for (;;) { /* stuck */ } };
`,
    );
    const n1 = await cluster.start("node1", { embeddedNats: true });
    const n2 = await cluster.start("node2", {
      natsUrl: n1.natsUrl!,
      args: ["--interceptor", file, "--interceptor-timeout", "500ms"],
    });
    await n1.sql("CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)");
    await n1.sql("INSERT INTO t VALUES (1, 'a')");
    await cluster.waitConverged([n1, n2], ["t"], 30_000);
    assert.deepEqual((await n2.sql("SELECT v FROM t")).rows, [["a"]]);
    // node2 serves and its own writes replicate
    await n2.sql("INSERT INTO t VALUES (2, 'b')");
    await cluster.waitConverged([n1, n2], ["t"], 30_000);
    assert.equal((await n2.get("/readyz")).status, 200);
    // the log is flushed when the process ends
    await cluster.kill(n2);
    await waitFor("timeout logged", () => /beforeApply failed \(timeout\)/.test(n2.log()), 5_000);
    assert.match(n2.log(), /changeset applied unchanged/);
  } finally {
    await cluster.stop();
  }
});
