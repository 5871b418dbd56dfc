/**
 * A changeset that cannot be applied is retried, visible in /readyz and /replications, blocks
 * later changesets of that database on that node (order), and the operator can skip it.
 */
import assert from "node:assert/strict";
import { Cluster, type HaNode, waitFor } from "./helpers/cluster.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };

/** Two nodes whose table `t` differs: node2 refuses the value 'bad' that node1 accepts. */
async function checkedPair(cluster: Cluster): Promise<[HaNode, HaNode]> {
  const n1 = await cluster.start("node1", { embeddedNats: true, args: ["--disable-ddl-sync"] });
  const n2 = await cluster.start("node2", { natsUrl: n1.natsUrl! });
  await n1.sql("CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)");
  await n2.sql("CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT CHECK (v <> 'bad'))");
  return [n1, n2];
}

Deno.test("failing changeset: reported, retried, skippable", opts, async () => {
  const cluster = new Cluster();
  try {
    const [n1, n2] = await checkedPair(cluster);
    await n1.sql("INSERT INTO t VALUES (1, 'bad')");
    await n1.sql("INSERT INTO t VALUES (2, 'ok')");
    await waitFor("failure reported", async () => (await n2.get("/readyz")).status === 503);
    const ready = (await n2.get("/readyz")).body as { problems: string[] };
    assert.match(ready.problems.join("\n"), /fails to apply.*CHECK constraint/);
    const status = (await n2.get("/replications")).body as {
      status: { subscriber: { failing: { seq: number; attempts: number } | null } }[];
    };
    const failing = status.status[0].subscriber.failing!;
    assert.ok(failing.seq > 0);
    assert.equal((await n2.sql("SELECT count(*) FROM t")).rows[0][0], 0, "order kept");
    const res = await fetch(`${n2.url}/replications/ha_db_node2/skip`, { method: "POST" });
    assert.equal(res.status, 200);
    assert.deepEqual(await res.json(), { skipped_through: failing.seq });
    await waitFor(
      "later changeset applied",
      async () => (await n2.sql("SELECT v FROM t")).rows.length === 1,
    );
    assert.deepEqual((await n2.sql("SELECT id, v FROM t")).rows, [[2, "ok"]]);
    await waitFor("ready again", async () => (await n2.get("/readyz")).status === 200);
  } finally {
    await cluster.stop();
  }
});

Deno.test(
  "writes keep coming behind a failing changeset: none applied before it, each once after the skip",
  opts,
  async () => {
    const cluster = new Cluster();
    try {
      const [n1, n2] = await checkedPair(cluster);
      await n1.sql("INSERT INTO t VALUES (0, 'bad')");
      // Changesets arrive while the failing one is retried: a batch sent behind one in flight
      // must not apply when that one failed.
      let id = 1;
      const burst = async () => {
        const writes = [];
        for (let i = 0; i < 8; i++) writes.push(n1.sql("INSERT INTO t VALUES (?, 'ok')", [id++]));
        await Promise.all(writes);
      };
      const deadline = Date.now() + 1500;
      while (Date.now() < deadline) await burst();
      await waitFor("failure reported", async () => (await n2.get("/readyz")).status === 503);
      assert.equal((await n2.sql("SELECT count(*) FROM t")).rows[0][0], 0, "order kept");
      const res = await fetch(`${n2.url}/replications/ha_db_node2/skip`, { method: "POST" });
      assert.equal(res.status, 200);
      const total = id - 1;
      await waitFor(
        "later changesets applied",
        async () => (await n2.sql("SELECT count(*) FROM t")).rows[0][0] === total,
      );
      assert.deepEqual(
        (await n2.sql("SELECT count(*), min(id), max(id), sum(v = 'ok') FROM t")).rows,
        [[total, 1, total, total]],
      );
      await waitFor("ready again", async () => (await n2.get("/readyz")).status === 200);
    } finally {
      await cluster.stop();
    }
  },
);
