/**
 * `--from-latest-snapshot` on a node that restarts (issue 9, scenario 3): a restore never drops
 * the database's own writes made after the snapshot, and a node whose database file was lost
 * gets its own later changesets back from the stream after restoring the snapshot.
 */
import assert from "node:assert/strict";
import { Cluster, type HaNode, waitFor } from "./helpers/cluster.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };

async function snapshot(n: HaNode): Promise<number> {
  const r = await fetch(`${n.url}/snapshot`, { method: "POST" });
  const body = await r.json();
  assert.equal(r.status, 200, JSON.stringify(body));
  return body.sequence;
}

async function ids(n: HaNode): Promise<unknown[]> {
  return (await n.sql("SELECT id FROM t ORDER BY id")).rows.map((r) => r[0]);
}

/** A node with rows 1 (in the snapshot) and 2 and 3 (after it, in the stream only). */
async function writeAroundSnapshot(
  cluster: Cluster,
  path: string,
  memory = false,
): Promise<HaNode> {
  const n = await cluster.start("node1", { embeddedNats: true, memory, dsns: [path] });
  await n.sql("CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)");
  await n.sql("INSERT INTO t VALUES (1, 'before')");
  await waitFor("a snapshot reflecting row 1", async () => await snapshot(n) >= 2);
  await n.sql("INSERT INTO t VALUES (2, 'after')");
  await n.sql("UPDATE t SET v = 'changed after' WHERE id = 1");
  await n.sql("INSERT INTO t VALUES (3, 'after')");
  await cluster.kill(n);
  return n;
}

Deno.test(
  "restart with --from-latest-snapshot keeps the database's own newer writes",
  opts,
  async () => {
    const cluster = new Cluster();
    try {
      const path = `${cluster.root}/app.db`;
      const first = await writeAroundSnapshot(cluster, path);
      const n = await cluster.start("node1", {
        reuse: first,
        embeddedNats: true,
        memory: false,
        dsns: [path],
        args: ["--from-latest-snapshot"],
      });
      assert.deepEqual(await ids(n), [1, 2, 3]);
      assert.deepEqual((await n.sql("SELECT v FROM t WHERE id = 1")).rows, [["changed after"]]);
      await cluster.kill(n); // the log is flushed when the process ends
      await waitFor("the log line", () => /snapshot does not reflect; not restoring/.test(n.log()));
      assert.doesNotMatch(n.log(), /replacing the local database/);
    } finally {
      await cluster.stop();
    }
  },
);

Deno.test(
  "a lost database file is restored and gets its own later changesets back",
  opts,
  async () => {
    const cluster = new Cluster();
    try {
      const path = `${cluster.root}/app.db`;
      const first = await writeAroundSnapshot(cluster, path);
      for (const s of ["", "-wal", "-shm"]) await Deno.remove(path + s).catch(() => {});
      const n = await cluster.start("node1", {
        reuse: first,
        embeddedNats: true,
        memory: false,
        dsns: [path],
        args: ["--from-latest-snapshot"],
      });
      await waitFor("rows 2 and 3 replayed", async () => (await ids(n)).length === 3);
      assert.deepEqual(await ids(n), [1, 2, 3]);
      assert.deepEqual((await n.sql("SELECT v FROM t WHERE id = 1")).rows, [["changed after"]]);
      // The node keeps writing and replicating after the replay.
      await n.sql("INSERT INTO t VALUES (4, 'new')");
      const m = await cluster.start("node2", {
        natsUrl: n.natsUrl!,
        memory: true,
        dsns: ["app.db"],
      });
      await cluster.waitConverged([n, m], ["t"]);
    } finally {
      await cluster.stop();
    }
  },
);

Deno.test(
  "a memory node restarted from its snapshot replays its own later writes",
  opts,
  async () => {
    const cluster = new Cluster();
    try {
      const first = await writeAroundSnapshot(cluster, "app.db", true);
      const n = await cluster.start("node1", {
        reuse: first,
        embeddedNats: true,
        memory: true,
        dsns: ["app.db"],
        args: ["--from-latest-snapshot"],
      });
      await waitFor("rows 2 and 3 replayed", async () => (await ids(n)).length === 3);
      assert.deepEqual((await n.sql("SELECT v FROM t WHERE id = 1")).rows, [["changed after"]]);
      await cluster.kill(n); // the log is flushed when the process ends
      await waitFor("the log line", () => /snapshot restored/.test(n.log()));
    } finally {
      await cluster.stop();
    }
  },
);
