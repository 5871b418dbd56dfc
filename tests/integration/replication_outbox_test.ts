/**
 * The outbox: with NATS down a synchronous write answers 503 "committed locally and queued", and
 * is published once NATS is back; with --async-replication writes succeed while NATS is down and
 * their durable outbox survives a restart of the writing node.
 */
import assert from "node:assert/strict";
import { Cluster, HttpError } from "./helpers/cluster.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };

Deno.test("sync write with NATS down: 503 committed locally, published later", opts, async () => {
  const cluster = new Cluster();
  try {
    let n1 = await cluster.start("node1", { embeddedNats: true });
    const n2 = await cluster.start("node2", {
      natsUrl: n1.natsUrl!,
      args: ["--replication-timeout", "1s"],
    });
    await n2.sql("CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)");
    await cluster.waitConverged([n1, n2], ["t"]);
    await cluster.kill(n1);
    const err = await n2.sql("INSERT INTO t VALUES (1, 'queued')").catch((e) => e);
    assert.ok(err instanceof HttpError, String(err));
    assert.equal(err.status, 503);
    assert.match(err.message, /committed locally/);
    assert.equal((await n2.sql("SELECT count(*) FROM t")).rows[0][0], 1);
    assert.equal((await n2.get("/readyz")).status, 503);
    n1 = await cluster.start("node1", { embeddedNats: true, reuse: n1 });
    await cluster.waitConverged([n1, n2], ["t"], 40_000);
    assert.deepEqual((await n1.sql("SELECT v FROM t")).rows, [["queued"]]);
  } finally {
    await cluster.stop();
  }
});

Deno.test("async replication: outbox survives NATS outage and a restart", opts, async () => {
  const cluster = new Cluster();
  try {
    let n1 = await cluster.start("node1", { embeddedNats: true });
    const asyncArgs = ["--async-replication"];
    let n2 = await cluster.start("node2", { natsUrl: n1.natsUrl!, args: asyncArgs });
    await n2.sql("CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)");
    await n2.sql("INSERT INTO t VALUES (1, 'before')");
    await cluster.waitConverged([n1, n2], ["t"]);
    await cluster.kill(n1);
    // Async writes succeed without NATS (a sync node answers 503, which `sql` throws).
    for (let i = 2; i <= 50; i++) await n2.sql("INSERT INTO t VALUES (?, 'during')", [i]);
    // restart the writer while NATS is still down: the durable outbox keeps its changesets
    await cluster.kill(n2);
    n1 = await cluster.start("node1", { embeddedNats: true, reuse: n1 });
    n2 = await cluster.start("node2", { natsUrl: n1.natsUrl!, args: asyncArgs, reuse: n2 });
    const sums = await cluster.waitConverged([n1, n2], ["t"], 40_000);
    assert.ok(sums[0].startsWith("50:"), sums[0]);
  } finally {
    await cluster.stop();
  }
});
