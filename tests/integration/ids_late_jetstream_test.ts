/**
 * A node that reaches NATS while JetStream does not answer (here a server without JetStream,
 * later replaced by one with it; in a cluster, a restarted member waiting for a metadata leader)
 * keeps claiming its id slot in the background, however long that takes: once JetStream answers
 * it is ready and its INSERTs get ids from its slot.
 */
import assert from "node:assert/strict";
import { findNatsServer } from "../../src/nats/mod.ts";
import { Cluster, freePort, pidAlive, waitFor } from "./helpers/cluster.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };

Deno.test("the id slot is claimed once JetStream answers, however late", opts, async () => {
  const cluster = new Cluster();
  const natsPort = freePort();
  // A plain NATS server: connections work, JetStream requests get no answer.
  const plain = new Deno.Command(await findNatsServer({ flag: null }), {
    args: ["-a", "127.0.0.1", "-p", String(natsPort)],
    stdout: "null",
    stderr: "null",
  }).spawn();
  const withJs = await cluster.natsServer("late", natsPort);
  try {
    const n = await cluster.start("node1", { natsUrl: `nats://127.0.0.1:${natsPort}` });
    // One claim's own retries are over (about ten seconds) and it failed.
    await waitFor("a failed claim", () => n.log().includes("cannot claim an id slot"), 60_000);
    assert.equal((await n.get("/readyz")).status, 503);

    Deno.kill(plain.pid, "SIGTERM");
    await plain.status;
    await withJs.start();
    await waitFor("node1 ready", async () => (await n.get("/readyz")).status === 200, 90_000);
    await n.sql("CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)");
    await n.sql("INSERT INTO t(v) VALUES ('x')");
    const [[id]] = (await n.sql("SELECT id FROM t")).rows as [[number]];
    // A `cluster` id (time | slot | sequence), not SQLite's 1.
    assert.ok(id > 1 << 22, `id ${id}`);
    assert.ok(pidAlive(n.pid));
  } finally {
    if (pidAlive(plain.pid)) {
      Deno.kill(plain.pid, "SIGKILL");
      await plain.status;
    }
    await cluster.stop();
    await withJs.stop();
  }
});
