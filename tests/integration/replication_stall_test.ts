/**
 * A consumer that stays silent without failing (what one on a stream replica stuck behind does:
 * idle heartbeats, no message, no error) is recreated by the stall watch, and every changeset is
 * then applied. The silent consumer is a real one on a subject nothing is published to, swapped
 * in for the subscriber's first consumer: its heartbeats keep every other restart trigger quiet.
 */
import assert from "node:assert/strict";
import { AckPolicy, type ConsumerInfo, jetstream, type JetStreamClient } from "@nats-io/jetstream";
import { createLogger } from "../../src/log/mod.ts";
import { waitFor } from "./helpers/cluster.ts";
import { subscriberRig } from "./helpers/subscriber_rig.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };
const COUNT = 20;

Deno.test("a silent consumer is recreated by the stall watch", opts, async () => {
  const rig = await subscriberRig("stall");
  const { nc, jsm } = rig;
  const silent = await jsm.consumers.add("S", {
    name: "silent",
    filter_subject: "S.nothing",
    ack_policy: AckPolicy.None,
  });
  const real = jetstream(nc);
  let created = 0;
  const js = {
    consumers: {
      getConsumerFromInfo: (ci: ConsumerInfo) =>
        real.consumers.getConsumerFromInfo(created++ === 0 ? silent : ci),
    },
  } as unknown as JetStreamClient;
  const lines: string[] = [];
  const sub = rig.subscriber({ js, jsm, logger: createLogger("warn", (l) => lines.push(l)) });
  try {
    await sub.start();
    await waitFor("consumer running", () => Promise.resolve(sub.status().running), 30_000);
    for (let i = 0; i < COUNT; i++) await real.publish("S.db", "x");
    // Not changesets: each is dead-lettered, which advances the applied sequence all the same.
    await waitFor(
      "all processed",
      () => Promise.resolve(sub.status().appliedSeq === COUNT),
      60_000,
    );
    const s = sub.status();
    assert.equal(s.stalls, 1);
    assert.match(s.lastRestart?.reason ?? "", /stalled/);
    assert.ok(lines.some((l) => l.includes("replication consumer stalled; recreating it")));
  } finally {
    await sub.stop();
    await rig.close();
  }
});
