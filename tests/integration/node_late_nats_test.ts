/**
 * A node whose NATS is not reachable at start serves reads meanwhile (not ready; the snapshot
 * routes answer 503) and picks NATS up once it appears: ready, snapshots taken.
 */
import assert from "node:assert/strict";
import { Cluster, freePort, waitFor } from "./helpers/cluster.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };

Deno.test("a node serves while NATS is down and uses it once it is up", opts, async () => {
  const cluster = new Cluster();
  const natsPort = freePort();
  const nats = await cluster.natsServer("late", natsPort);
  try {
    const n = await cluster.start("node1", { natsUrl: `nats://127.0.0.1:${natsPort}` });
    // Reads are served (a write would wait for JetStream's confirmation, then answer 503).
    assert.deepEqual((await n.sql("SELECT 40 + 2")).rows, [[42]]);
    assert.equal((await n.get("/readyz")).status, 503);
    const early = await fetch(`${n.url}/snapshot`, { method: "POST" });
    assert.equal(early.status, 503);
    assert.deepEqual(await early.json(), {
      error: "snapshots unavailable: NATS not reached yet",
    });

    await nats.start();
    await waitFor("node1 ready", async () => (await n.get("/readyz")).status === 200, 60_000);
    let taken: unknown = null;
    await waitFor("a snapshot taken", async () => {
      const r = await fetch(`${n.url}/snapshot`, { method: "POST" });
      taken = await r.json();
      return r.status === 200;
    }, 60_000);
    assert.equal((taken as { database: string }).database, "ha.db");
  } finally {
    await cluster.stop();
    await nats.stop();
  }
});
