/**
 * Restarts: a memory node that restarts replays the stream (never comes back empty, including its
 * own earlier writes); kill -9 under load loses no acknowledged write, on the killed node's peers
 * and on the killed node after it restarts.
 */
import assert from "node:assert/strict";
import { Cluster, type HaNode, waitFor } from "./helpers/cluster.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };

async function ids(n: HaNode): Promise<Set<number>> {
  const r = await n.sql("SELECT id FROM t");
  return new Set(r.rows.map((x) => Number(x[0])));
}

/** Concurrent writers inserting distinct ids until `stop`; returns the acknowledged ids. */
function load(n: HaNode, base: number, stop: { v: boolean }) {
  const acked: number[] = [];
  const run = Promise.all([0, 1, 2, 3, 4, 5, 6, 7].map(async (w) => {
    for (let i = 0; !stop.v; i++) {
      const id = base + w * 100_000 + i;
      try {
        await n.sql("INSERT INTO t(id, v) VALUES (?, ?)", [id, `w${w}`]);
        acked.push(id);
      } catch {
        return; // the node died: this write was not acknowledged
      }
    }
  }));
  return { acked, run };
}

Deno.test("memory node restarts and replays the stream, own writes included", opts, async () => {
  const cluster = new Cluster();
  try {
    const n1 = await cluster.start("node1", { embeddedNats: true });
    let n2 = await cluster.start("node2", { natsUrl: n1.natsUrl! });
    await n1.sql("CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)");
    await n1.sql("INSERT INTO t VALUES (1, 'one')");
    await n2.sql("INSERT INTO t VALUES (2, 'two')");
    await cluster.waitConverged([n1, n2], ["t"]);
    await cluster.kill(n2);
    await n1.sql("INSERT INTO t VALUES (3, 'three')");
    await n1.sql("DELETE FROM t WHERE id = 1");
    n2 = await cluster.start("node2", { natsUrl: n1.natsUrl!, reuse: n2 });
    await cluster.waitConverged([n1, n2], ["t"]);
    assert.deepEqual([...await ids(n2)].sort(), [2, 3]);
  } finally {
    await cluster.stop();
  }
});

Deno.test("kill -9 under load: no acknowledged write missing", opts, async () => {
  const cluster = new Cluster();
  try {
    let n1 = await cluster.start("node1", {
      embeddedNats: true,
      memory: false,
      dsns: [`${cluster.root}/node1.db`],
    });
    let n2 = await cluster.start("node2", { natsUrl: n1.natsUrl!, dsns: ["node1.db"] });
    await n1.sql("CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)");
    await cluster.waitConverged([n1, n2], ["t"]);

    // 1. kill -9 the node that does not host NATS, while it takes writes.
    let stop = { v: false };
    let l = load(n2, 0, stop);
    await waitFor("writes acknowledged", () => l.acked.length >= 60, 60_000);
    await cluster.kill(n2, "SIGKILL");
    stop.v = true;
    await l.run;
    const first = l.acked;
    let missing1: number[] = first;
    await waitFor("node1 to have every acknowledged write", async () => {
      const have = await ids(n1);
      missing1 = first.filter((id) => !have.has(id));
      return missing1.length === 0;
    }).catch(() => {});
    assert.deepEqual(missing1, [], `node1 misses ${missing1.length} acknowledged writes`);

    // 2. kill -9 the node hosting NATS (and its nats-server) while it takes writes.
    n2 = await cluster.start("node2", { natsUrl: n1.natsUrl!, reuse: n2, dsns: ["node1.db"] });
    stop = { v: false };
    l = load(n1, 1_000_000, stop);
    const acked = l.acked;
    await waitFor("writes acknowledged", () => acked.length >= 60, 60_000);
    await cluster.kill(n1, "SIGKILL");
    stop.v = true;
    await l.run;
    n1 = await cluster.start("node1", {
      embeddedNats: true,
      memory: false,
      dsns: [`${cluster.root}/node1.db`],
      reuse: n1,
    });
    await cluster.waitConverged([n1, n2], ["t"], 60_000);
    for (const n of [n1, n2]) {
      const have = await ids(n);
      const missing = [...first, ...l.acked].filter((id) => !have.has(id));
      assert.deepEqual(missing, [], `${n.name} misses ${missing.length} acknowledged writes`);
    }
  } finally {
    await cluster.stop();
  }
});
