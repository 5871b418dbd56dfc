/** The stall watch's decisions, with a fake clock and a fake stream leader. */
import assert from "node:assert/strict";
import type { JetStreamManager } from "@nats-io/jetstream";
import { createLogger } from "../../src/log/mod.ts";
import { STALL_AFTER_MAX_MS, STALL_AFTER_MS, StallWatch } from "../../src/replication/stall.ts";

function setup() {
  const t = {
    now: 0,
    received: 10,
    consuming: true,
    /** The leader's last sequence of the subject; an Error: the request fails. */
    leader: 10 as number | Error,
    asked: 0,
    restarts: [] as string[],
    lines: [] as Record<string, unknown>[],
  };
  const jsm = {
    streams: {
      getMessage: (_stream: string, q: { last_by_subj: string }) => {
        assert.equal(q.last_by_subj, "s.db");
        t.asked++;
        if (t.leader instanceof Error) return Promise.reject(t.leader);
        return Promise.resolve(t.leader === 0 ? null : { seq: t.leader });
      },
    },
  } as unknown as JetStreamManager;
  const watch = new StallWatch({
    jsm,
    stream: "s",
    subject: "s.db",
    consumer: "db_node1",
    logger: createLogger("info", (l) => t.lines.push(JSON.parse(l))),
    received: () => t.received,
    consuming: () => t.consuming,
    restart: (reason) => t.restarts.push(reason),
    now: () => t.now,
  });
  /** Advances the clock by `ms` and checks. */
  const at = (ms: number) => {
    t.now += ms;
    return watch.check();
  };
  return { t, watch, at };
}

Deno.test("a silent consumer behind the stream leader is recreated", async () => {
  const { t, watch, at } = setup();
  assert.equal(await at(0), false);
  t.leader = 25;
  assert.equal(await at(STALL_AFTER_MS - 1), false);
  assert.equal(t.asked, 0, "no request before the silence lasted long enough");
  assert.equal(await at(1), false, "suspected: confirmed at the next check");
  assert.equal(await at(2_500), true);
  assert.equal(t.asked, 2);
  assert.equal(t.restarts.length, 1);
  assert.match(t.restarts[0], /stalled/);
  assert.equal(watch.stalls, 1);
  const line = t.lines.find((l) => l.msg === "replication consumer stalled; recreating it");
  assert.deepEqual([line?.receivedSeq, line?.leaderLastSeq], [10, 25]);
});

Deno.test("an idle subject never triggers a recreation", async () => {
  const { t, watch, at } = setup();
  for (let i = 0; i < 100; i++) await at(STALL_AFTER_MS / 2);
  assert.equal(t.restarts.length, 0);
  assert.equal(watch.stalls, 0);
  // Asked at most once per window, not at every tick.
  assert.ok(t.asked <= 50 && t.asked > 0, String(t.asked));
  t.leader = 0; // nothing ever published on the subject
  for (let i = 0; i < 10; i++) await at(STALL_AFTER_MS);
  assert.equal(t.restarts.length, 0);
});

Deno.test("a slow but progressing delivery is not a stall", async () => {
  const { t, at } = setup();
  t.leader = 1_000;
  for (let i = 0; i < 50; i++) {
    t.received++;
    assert.equal(await at(STALL_AFTER_MS - 1), false);
  }
  assert.equal(t.asked, 0);
});

Deno.test("no consumer receiving (being created, backlog full): no stall", async () => {
  const { t, at } = setup();
  t.leader = 99;
  t.consuming = false;
  for (let i = 0; i < 10; i++) assert.equal(await at(STALL_AFTER_MS), false);
  t.consuming = true;
  assert.equal(await at(STALL_AFTER_MS - 1), false, "the silence counts from when it consumes");
  assert.equal(await at(1), false);
  assert.equal(await at(1), true);
});

Deno.test("a leader that cannot be asked, or delivery meanwhile: no stall", async () => {
  const { t, at } = setup();
  await at(0);
  t.leader = new Error("timeout");
  assert.equal(await at(STALL_AFTER_MS), false);
  t.leader = 30;
  // The answer arrives after the consumer delivered: it was not stalled.
  const check = at(0);
  t.received += 5;
  assert.equal(await check, false);
  assert.equal(t.restarts.length, 0);
});

Deno.test("a message on its way when the leader is asked is not a stall", async () => {
  const { t, at } = setup();
  await at(0);
  t.leader = 11;
  assert.equal(await at(STALL_AFTER_MS), false);
  t.received = 11;
  assert.equal(await at(1), false);
  for (let i = 0; i < 10; i++) assert.equal(await at(STALL_AFTER_MS), false);
  assert.equal(t.restarts.length, 0);
});

Deno.test("repeated stalls wait longer each time; progress starts over", async () => {
  const { t, at } = setup();
  await at(0);
  t.leader = 50;
  const waits: number[] = [];
  for (let n = 0; n < 5; n++) {
    let waited = 0;
    while (!(await at(1_000))) waited += 1_000;
    waits.push(waited + 1_000);
  }
  // Each: the silence, then one more check to confirm.
  assert.deepEqual(waits, [
    STALL_AFTER_MS + 1_000,
    2 * STALL_AFTER_MS + 1_000,
    4 * STALL_AFTER_MS + 1_000,
    STALL_AFTER_MAX_MS + 1_000,
    STALL_AFTER_MAX_MS + 1_000,
  ]);
  t.received = 20;
  await at(1_000);
  let waited = 0;
  while (!(await at(1_000))) waited += 1_000;
  assert.equal(waited + 1_000, STALL_AFTER_MS + 1_000);
});
