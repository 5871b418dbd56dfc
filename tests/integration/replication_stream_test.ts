/** The replication stream follows the flags: an existing stream is updated on start. */
import assert from "node:assert/strict";
import { jetstreamManager } from "@nats-io/jetstream";
import { createLogger } from "../../src/log/mod.ts";
import { connectNats } from "../../src/nats/mod.ts";
import { Cluster, waitFor } from "./helpers/cluster.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };

Deno.test("a restart with another --replication-max-age updates the stream", opts, async () => {
  const cluster = new Cluster();
  try {
    let n1 = await cluster.start("node1", {
      embeddedNats: true,
      args: ["--replication-max-age", "24h"],
    });
    await cluster.kill(n1);
    n1 = await cluster.start("node1", {
      embeddedNats: true,
      reuse: n1,
      args: ["--replication-max-age", "90m"],
    });
    // The stream is updated once replication runs (the node serves before that).
    await waitFor("node1 ready", async () => (await n1.get("/readyz")).status === 200);
    const client = await connectNats({
      servers: [n1.natsUrl!],
      name: "probe",
      logger: createLogger("error"),
    });
    try {
      const jsm = await jetstreamManager(client.nc);
      const info = await jsm.streams.info("ha_replication");
      assert.equal(info.config.max_age, 90 * 60 * 1_000_000_000);
      assert.deepEqual(info.config.subjects, ["ha_replication.>"]);
    } finally {
      await client.close();
    }
  } finally {
    await cluster.stop();
  }
});
