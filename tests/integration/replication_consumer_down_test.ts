/**
 * Recreating a consumer whose server is down: deleting it gets no answer (the metadata leader
 * removes it, but only that server would answer), and the new consumer is created all the same,
 * without a failed attempt and its wait. Simulated on one server: every delete of an existing
 * consumer is carried out, then reported as a timeout.
 */
import assert from "node:assert/strict";
import { jetstream, type JetStreamManager } from "@nats-io/jetstream";
import { errors } from "@nats-io/transport-node";
import { createLogger } from "../../src/log/mod.ts";
import { waitFor } from "./helpers/cluster.ts";
import { subscriberRig } from "./helpers/subscriber_rig.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };
const COUNT = 10;

Deno.test("a consumer whose delete is unanswered is recreated at once", opts, async () => {
  const rig = await subscriberRig("consumer-down");
  const { nc } = rig;
  let unanswered = 0;
  const real = rig.jsm;
  const jsm = {
    streams: real.streams,
    consumers: {
      add: real.consumers.add.bind(real.consumers),
      info: real.consumers.info.bind(real.consumers),
      delete: async (stream: string, name: string) => {
        await real.consumers.delete(stream, name); // not found: thrown as it is
        unanswered++;
        throw new errors.TimeoutError();
      },
    },
  } as unknown as JetStreamManager;
  const lines: string[] = [];
  const sub = rig.subscriber({ jsm, logger: createLogger("info", (l) => lines.push(l)) });
  const js = jetstream(nc);
  try {
    await sub.start();
    // Not changesets: each is dead-lettered, which advances the applied sequence all the same.
    for (let i = 0; i < COUNT; i++) await js.publish("S.db", "x");
    await waitFor("first half", () => Promise.resolve(sub.status().appliedSeq === COUNT), 60_000);

    await sub.reset("test");
    await waitFor("recreated", () => Promise.resolve(sub.status().restarts === 1), 60_000);
    for (let i = 0; i < COUNT; i++) await js.publish("S.db", "x");
    await waitFor("all", () => Promise.resolve(sub.status().appliedSeq === 2 * COUNT), 60_000);

    assert.equal(unanswered, 1, "the first consumer's delete went unanswered");
    assert.equal(sub.status().restarts, 1);
    const failed = lines.filter((l) => l.includes("replication consumer failed"));
    assert.deepEqual(failed, []);
  } finally {
    await sub.stop();
    await rig.close();
  }
});
