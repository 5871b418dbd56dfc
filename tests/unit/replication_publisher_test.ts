/**
 * The publisher against a scripted JetStream client: order, and a changeset the server refuses
 * as larger than its max_payload is dropped with an error instead of blocking later ones.
 */
import assert from "node:assert/strict";
import type { JetStreamClient } from "@nats-io/jetstream";
import { InvalidArgumentError } from "@nats-io/transport-node";
import type { Database } from "../../src/engine/mod.ts";
import { HaError } from "../../src/errors/mod.ts";
import { createLogger } from "../../src/log/mod.ts";
import { INCARNATION_HEADER } from "../../src/replication/headers.ts";
import { Publisher } from "../../src/replication/publisher.ts";

Deno.test("a changeset refused as too large is dropped; later ones are published", async () => {
  const published: string[] = [];
  const deleted: number[] = [];
  const js = {
    publish(_subject: string, data: string, o: { msgID: string }) {
      // nats.js refuses before sending: "'payload' max_payload size exceeded"
      if (data.length > 100) {
        return Promise.reject(InvalidArgumentError.format("payload", "max_payload size exceeded"));
      }
      published.push(o.msgID);
      return Promise.resolve({ stream: "s", seq: published.length, duplicate: false });
    },
  } as unknown as JetStreamClient;
  const db = {
    plugin: () => ({
      call(method: string, args: unknown) {
        if (method === "outboxDelete") deleted.push(args as number);
        return Promise.resolve([]);
      },
      sendNext(method: string, args: () => unknown) {
        return this.call(method, args());
      },
    }),
  } as unknown as Database;
  const logs: string[] = [];
  const pub = new Publisher({
    subject: "s.db",
    db,
    timeoutMs: 1000,
    logger: createLogger("error", (l) => logs.push(l)),
    self: { node: "n", incarnation: "i" },
  });
  await pub.load();
  pub.attach(js);
  const results = await Promise.allSettled([
    pub.enqueue({ kind: "changeset", outboxId: 1, id: "a", data: "small" }),
    pub.enqueue({ kind: "changeset", outboxId: 2, id: "b", data: "x".repeat(200) }),
    pub.enqueue({ kind: "changeset", outboxId: 3, id: "c", data: "small too" }),
  ]);
  assert.deepEqual(results.map((r) => r.status), ["fulfilled", "rejected", "fulfilled"]);
  const err = (results[1] as PromiseRejectedResult).reason;
  assert.ok(err instanceof HaError && err.code === "too_large", String(err));
  assert.match(err.message, /committed locally but NOT replicated: the changeset b \(200 bytes\)/);
  assert.deepEqual(published, ["a", "c"]);
  const st = pub.status();
  assert.deepEqual([st.pending, st.published, st.dropped, st.lastError], [0, 2, 1, null]);
  assert.match(logs.join("\n"), /changeset too large for NATS: dropped/);
  await pub.stop(1000);
  assert.equal(deleted.at(-1), 3, "the outbox is cleared past the dropped changeset");
});

Deno.test("each message names the incarnation that committed it, not the publishing one", async () => {
  const sent: { id: string; incarnation: string | undefined }[] = [];
  const js = {
    publish(_s: string, _d: string, o: { msgID: string; headers: { get(k: string): string } }) {
      sent.push({ id: o.msgID, incarnation: o.headers.get(INCARNATION_HEADER) || undefined });
      return Promise.resolve({ stream: "s", seq: sent.length, duplicate: false });
    },
  } as unknown as JetStreamClient;
  let loaded = false;
  const db = {
    plugin: () => ({
      call(method: string) {
        if (method !== "outboxPending" || loaded) return Promise.resolve([]);
        loaded = true;
        return Promise.resolve([
          { outboxId: 1, id: "old", data: JSON.stringify({ incarnation: "earlier-run" }) },
        ]);
      },
    }),
  } as unknown as Database;
  const pub = new Publisher({
    subject: "s.db",
    db,
    timeoutMs: 1000,
    logger: createLogger("error"),
    self: { node: "n", incarnation: "this-run" },
  });
  await pub.load();
  const queued = pub.enqueue({ kind: "changeset", outboxId: 2, id: "new", data: "{}" });
  assert.deepEqual(sent, [], "nothing is published before NATS is reached");
  pub.attach(js);
  await queued;
  assert.deepEqual(sent, [
    { id: "old", incarnation: "earlier-run" },
    { id: "new", incarnation: "this-run" },
  ]);
  await pub.stop(1000);
});
