/**
 * Snapshots end to end with real `ha` processes: periodic snapshots (`--snapshot-interval`),
 * `POST`/`GET /snapshot`, and new nodes started with `--from-latest-snapshot` (file and memory
 * databases) reaching the cluster's state after the stream history before the snapshot is gone.
 */
import assert from "node:assert/strict";
import { jetstreamManager } from "@nats-io/jetstream";
import { createLogger } from "../../src/log/mod.ts";
import { connectNats } from "../../src/nats/mod.ts";
import { Cluster, type HaNode, waitFor } from "./helpers/cluster.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };
const STREAM = "ha_replication";

async function snapshotHead(n: HaNode, db = "app.db"): Promise<number | null> {
  const r = await fetch(`${n.url}/databases/${db}/snapshot`);
  await r.body?.cancel();
  if (r.status === 404) return null;
  assert.equal(r.status, 200);
  return Number(r.headers.get("x-sequence"));
}

Deno.test("a new node bootstraps from the latest snapshot when history is gone", opts, async () => {
  const cluster = new Cluster();
  const nats = { client: null as Awaited<ReturnType<typeof connectNats>> | null };
  try {
    Deno.mkdirSync(`${cluster.root}/d1`);
    Deno.mkdirSync(`${cluster.root}/d2`);
    const n1 = await cluster.start("node1", {
      embeddedNats: true,
      memory: false,
      dsns: [`${cluster.root}/d1/app.db`],
      args: ["--snapshot-interval", "500ms"],
    });
    await n1.sql("CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT, r REAL, b BLOB)");
    await n1.batch(
      Array.from({ length: 200 }, (_, i) => ({
        sql: "INSERT INTO t VALUES (?, ?, ?, randomblob(16))",
        params: [i + 1, `row ${i + 1}`, i + 0.5],
      })),
    );
    await n1.sql("INSERT INTO t VALUES (9007199254740993, 'big', 1.0, x'00ff')");

    nats.client = await connectNats({
      servers: [n1.natsUrl!],
      name: "test",
      logger: createLogger("error"),
    });
    const jsm = await jetstreamManager(nats.client.nc);
    const last = (await jsm.streams.info(STREAM)).state.last_seq;
    assert.ok(last >= 3);

    // The periodic snapshot catches up with the stream (own changesets included).
    await waitFor(
      "a snapshot at the stream's last sequence",
      async () => (await snapshotHead(n1) ?? -1) >= last,
    );
    const r = await fetch(`${n1.url}/snapshot`, { method: "POST" });
    const taken = await r.json();
    assert.equal(r.status, 200, JSON.stringify(taken));
    assert.equal(taken.database, "app.db");
    assert.equal(taken.sequence, last);
    assert.equal(typeof taken.skipped, "boolean");

    // History up to the snapshot disappears (as when --replication-max-age expires it).
    await jsm.streams.purge(STREAM, { seq: last + 1 });
    assert.equal((await jsm.streams.info(STREAM)).state.messages, 0);

    // Changes after the snapshot stay in the stream.
    await n1.sql("UPDATE t SET v = 'changed' WHERE id = 1");
    await n1.sql("DELETE FROM t WHERE id = 2");
    await n1.sql("INSERT INTO t(id, v) VALUES (1000, 'after snapshot')");

    const n2 = await cluster.start("node2", {
      natsUrl: n1.natsUrl!,
      memory: false,
      dsns: [`${cluster.root}/d2/app.db`],
      args: ["--from-latest-snapshot"],
    });
    const n3 = await cluster.start("node3", {
      natsUrl: n1.natsUrl!,
      memory: true,
      dsns: ["app.db"],
      args: ["--from-latest-snapsot"], // the README's spelling
    });
    await cluster.waitConverged([n1, n2, n3], ["t"]);
    const c = await n2.sql("SELECT count(*), CAST(max(id) AS TEXT) FROM t");
    assert.deepEqual(c.rows, [[201, "9007199254740993"]]);
    // Without the snapshot, rows 3..200 (whose changesets were purged) could not be there.

    // Replication keeps working in both directions from the restored nodes.
    await n2.sql("INSERT INTO t(id, v) VALUES (2000, 'from node2')");
    await n3.sql("INSERT INTO t(id, v) VALUES (3000, 'from node3')");
    await cluster.waitConverged([n1, n2, n3], ["t"]);

    // The snapshot can be downloaded from any node. First node1's periodic snapshot catches up
    // with the two inserts above: a replacement during the download would end it early.
    const end = (await jsm.streams.info(STREAM)).state.last_seq;
    await waitFor(
      "the periodic snapshot at the stream's end",
      async () => (await snapshotHead(n1) ?? -1) >= end,
    );
    const g = await fetch(`${n3.url}/snapshot`);
    assert.equal(g.status, 200);
    assert.match(
      g.headers.get("content-disposition")!,
      /^attachment; filename="app\.db-snapshot-\d+\.db"$/,
    );
    const bytes = new Uint8Array(await g.arrayBuffer());
    assert.equal(new TextDecoder().decode(bytes.subarray(0, 15)), "SQLite format 3");
  } finally {
    await nats.client?.close();
    await cluster.stop();
  }
});
