/**
 * The subscriber's backlog is bounded in bytes, not only in changesets: with the writer held (an
 * apply cannot start), large changesets stop being received once their bytes pass the limit, far
 * below the count limit; once the writer is free, every one of them is applied (dead-lettered
 * here: they are not changesets) after the paused consumer resumes.
 */
import assert from "node:assert/strict";
import { jetstream } from "@nats-io/jetstream";
import { waitFor } from "./helpers/cluster.ts";
import { subscriberRig } from "./helpers/subscriber_rig.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };
const SIZE = 100_000;
const COUNT = 40;
const LIMIT = 1_000_000;

Deno.test("subscriber pauses on the bytes of its backlog", opts, async () => {
  const rig = await subscriberRig("backlog");
  const { nc, db } = rig;
  const sub = rig.subscriber({ backlogBytes: LIMIT });
  let release = () => {};
  try {
    await sub.start();
    await waitFor("consumer running", () => Promise.resolve(sub.status().running), 30_000);
    release = await db.lockWriter();
    const js = jetstream(nc);
    for (let i = 0; i < COUNT; i++) await js.publish("S.db", "x".repeat(SIZE));
    // Without the bytes bound, all 40 (4 MB) are received and the consumer keeps running.
    await waitFor("paused on bytes", () => {
      const s = sub.status();
      return Promise.resolve(!s.running && s.pending > 0);
    }, 30_000);
    const held = sub.status();
    assert.ok(held.pendingBytes < LIMIT + SIZE, `${held.pendingBytes} bytes held`);
    assert.ok(held.pending < COUNT, `${held.pending} changesets held`);
    release();
    await waitFor(
      "all processed",
      () => Promise.resolve(sub.status().appliedSeq === COUNT),
      30_000,
    );
    assert.equal(sub.status().pendingBytes, 0);
  } finally {
    release();
    await sub.stop();
    await rig.close();
  }
});
