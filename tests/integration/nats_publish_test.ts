/**
 * JetStreamPublisher against a real nats-server: acks with stream sequences, de-duplication by
 * message id, a subject no stream listens on, a payload over max_payload, and a closed connection.
 */
import assert from "node:assert/strict";
import { jetstreamManager } from "@nats-io/jetstream";
import { headers } from "@nats-io/transport-node";
import { HaError } from "../../src/errors/mod.ts";
import { isPayloadTooLarge, JetStreamPublisher } from "../../src/nats/mod.ts";
import { rawConnect } from "../../src/nats/transport.ts";
import { Cluster, freePort } from "./helpers/cluster.ts";

Deno.test("JetStreamPublisher: acks, duplicates, no stream, too large, closed", async () => {
  const cluster = new Cluster();
  const port = freePort();
  const nats = await cluster.natsServer("pub", port);
  await nats.start();
  const nc = await rawConnect({ servers: [`127.0.0.1:${port}`] });
  try {
    await (await jetstreamManager(nc)).streams.add({ name: "P", subjects: ["P.>"] });
    const pub = new JetStreamPublisher(nc);
    const opts = (id: string) => ({ msgID: id, timeout: 5000, headers: headers() });
    const acks = await Promise.all(["a", "b", "c"].map((id) => pub.publish("P.x", id, opts(id))));
    assert.deepEqual(acks.map((a) => [a.seq, a.duplicate]), [[1, false], [2, false], [3, false]]);
    const again = await pub.publish("P.x", "b", opts("b"));
    assert.deepEqual([again.seq, again.duplicate], [2, true]);

    await assert.rejects(pub.publish("nowhere", "x", opts("d")), (e) => {
      return e instanceof HaError && e.code === "unavailable";
    });
    const max = nc.info!.max_payload;
    await assert.rejects(pub.publish("P.x", "x".repeat(max + 1), opts("e")), isPayloadTooLarge);

    await nc.close();
    await assert.rejects(pub.publish("P.x", "f", opts("f")), (e) => e instanceof HaError);
  } finally {
    await nc.close().catch(() => {});
    await nats.stop();
    await cluster.stop();
  }
});
