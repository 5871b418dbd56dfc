/**
 * Three ha nodes whose embedded nats-servers form one JetStream cluster by flags alone
 * (`--nats-cluster-port`, `--nats-routes` listing every member, itself included), with
 * credentials on clients and routes and a stream of `--replicas 3`. Each node in turn is killed
 * with its nats-server (SIGKILL, like a crash), the two others keep writing and replicating, and
 * the node comes back on its data directory and catches up: all three end with the same rows.
 */
import assert from "node:assert/strict";
import { jetstreamManager } from "@nats-io/jetstream";
import { createLogger } from "../../src/log/mod.ts";
import { connectNats } from "../../src/nats/mod.ts";
import { Cluster, freePort, type HaNode } from "./helpers/cluster.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };
const USER = "ha";
const PASS = "route s3cret";

/**
 * Inserts a row. A 503 "committed locally" is a write that is stored and will be published
 * later (the stream has no leader for a moment): accepted, as documented.
 */
function write(n: HaNode, id: number): Promise<void> {
  return n.write("INSERT INTO t(id, origin) VALUES (?, ?)", [id, n.name]);
}

Deno.test("a NATS cluster formed by flags survives the loss of any one node", opts, async () => {
  const cluster = new Cluster();
  try {
    const members = [1, 2, 3].map((i) => ({ name: `node${i}`, route: freePort() }));
    const routes = members.map((m) => `nats://127.0.0.1:${m.route}`).join(",");
    const argsOf = (m: (typeof members)[number]) => [
      "--nats-cluster-port",
      String(m.route),
      "--nats-routes",
      routes,
      "--nats-cluster-name",
      "ha_test",
      "--nats-user",
      USER,
      "--nats-pass",
      PASS,
      "--replicas",
      "3",
      "--replication-timeout",
      "3s",
    ];
    const start = (m: (typeof members)[number], reuse?: HaNode) =>
      cluster.start(m.name, {
        embeddedNats: true,
        memory: false,
        dsns: [`${cluster.root}/${m.name}/app.db`],
        args: argsOf(m),
        reuse,
      });
    // Started together: JetStream answers only once a quorum of servers has met.
    const nodes = await Promise.all(members.map((m) => start(m)));
    await nodes[0].sql("CREATE TABLE t(id INTEGER PRIMARY KEY, origin TEXT)");
    for (const [k, n] of nodes.entries()) await write(n, k);
    await cluster.waitConverged(nodes, ["t"], 60_000);

    const nc = await connectNats({
      servers: [nodes[0].natsUrl!],
      user: USER,
      pass: PASS,
      name: "test",
      logger: createLogger("error"),
    });
    try {
      const info = await (await jetstreamManager(nc.nc)).streams.info("ha_replication");
      assert.equal(info.config.num_replicas, 3);
      assert.equal(info.cluster?.name, "ha_test");
      assert.equal(info.cluster?.replicas?.length, 2, "a leader and two followers");
    } finally {
      await nc.close();
    }

    let expected = 3;
    for (let round = 0; round < 3; round++) {
      const victim = nodes[round];
      const rest = nodes.filter((n) => n !== victim);
      await cluster.kill(victim, "SIGKILL");
      for (let i = 0; i < 5; i++) {
        for (const [k, n] of rest.entries()) await write(n, 1000 * (round + 1) + 10 * k + i);
      }
      expected += 10;
      await cluster.waitConverged(rest, ["t"], 90_000);
      nodes[round] = await start(members[round], victim);
      await cluster.waitConverged(nodes, ["t"], 90_000);
      for (const n of nodes) {
        assert.deepEqual((await n.sql("SELECT count(*) FROM t")).rows, [[expected]], n.name);
      }
    }
    const origins = await nodes[2].sql("SELECT origin, count(*) FROM t GROUP BY 1 ORDER BY 1");
    assert.deepEqual(origins.rows, [["node1", 11], ["node2", 11], ["node3", 11]]);
  } finally {
    await cluster.stop();
  }
});
