/**
 * `GET /replications` while NATS is down answers from the node's own state at once (it used to
 * wait 5 s for JetStream and answer 500 "timeout"): the consumers (stream positions) are null,
 * `nats` says "disconnected", this node's status and conflicts are there.
 */
import assert from "node:assert/strict";
import { Cluster, freePort, waitFor } from "./helpers/cluster.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };

interface Replications {
  replications: { name: string }[] | null;
  status: { database: string; subscriber: { appliedSeq: number } | null }[];
  conflicts: Record<string, Record<string, number>>;
  nats: string;
}

Deno.test("GET /replications answers from local state while NATS is down", opts, async () => {
  const cluster = new Cluster();
  const natsPort = freePort();
  const nats = await cluster.natsServer("down", natsPort);
  try {
    await nats.start();
    const n = await cluster.start("node1", {
      natsUrl: `nats://127.0.0.1:${natsPort}`,
      args: ["--async-replication"],
    });
    await waitFor("node1 ready", async () => (await n.get("/readyz")).status === 200, 60_000);
    await n.sql("CREATE TABLE t(a)");
    await n.sql("INSERT INTO t VALUES (1)");
    const up = (await n.get("/replications")).body as Replications;
    assert.equal(up.nats, "connected");
    assert.deepEqual(up.replications!.map((c) => c.name), ["ha_db_node1"]);

    await nats.stop();
    let down: { status: number; body: unknown } = { status: 0, body: null };
    await waitFor("NATS seen disconnected", async () => {
      down = await n.get("/replications");
      return (down.body as Replications | null)?.nats === "disconnected";
    }, 30_000);
    assert.equal(down.status, 200);
    const body = down.body as Replications;
    assert.equal(body.replications, null);
    assert.equal(body.status[0].database, "ha.db");
    assert.ok(body.status[0].subscriber!.appliedSeq >= 2);
    assert.deepEqual(body.conflicts, { "ha.db": {} });
    // Still served while down, and the outbox shows what waits.
    await n.sql("INSERT INTO t VALUES (2)");
    const again = await n.get("/replications");
    assert.equal(again.status, 200);
    const pending = (again.body as { status: { publisher: { pending: number } }[] }).status[0]
      .publisher.pending;
    assert.equal(pending, 1);
  } finally {
    await cluster.stop();
    await nats.stop();
  }
});
