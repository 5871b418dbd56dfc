/**
 * Three ha nodes, each with its own embedded nats-server, joined into one NATS cluster by
 * `--nats-config` files with routes on free loopback ports, and a stream with `--replicas 3`.
 * Writes on any node replicate; after one ha node stops (its nats-server with it), the other two
 * keep replicating between themselves through the remaining quorum.
 */
import assert from "node:assert/strict";
import { jetstreamManager } from "@nats-io/jetstream";
import { createLogger } from "../../src/log/mod.ts";
import { connectNats } from "../../src/nats/mod.ts";
import { Cluster, freePort, type HaNode, waitFor } from "./helpers/cluster.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };

/** Inserts a row; a 503 "committed locally" is a write that will be published later. */
function write(n: HaNode, id: number): Promise<void> {
  return n.write("INSERT INTO t(id, origin) VALUES (?, ?)", [id, n.name]);
}

Deno.test("three ha nodes on a 3-server NATS cluster, one stops", opts, async () => {
  const cluster = new Cluster();
  try {
    const ports = [1, 2, 3].map((i) => ({ i, client: freePort(), route: freePort() }));
    const files = await Promise.all(ports.map(async (p) => {
      const routes = ports.filter((o) => o !== p).map((o) => `nats://127.0.0.1:${o.route}`);
      const file = `${cluster.root}/nats${p.i}.conf`;
      await Deno.writeTextFile(
        file,
        `listen: 127.0.0.1:${p.client}
cluster {
  name: ha_test
  listen: 127.0.0.1:${p.route}
  routes: [ ${routes.join(", ")} ]
}
`,
      );
      return file;
    }));
    // Started together: JetStream answers only once a quorum of servers has met.
    const nodes = await Promise.all(ports.map((p, k) =>
      cluster.start(`node${p.i}`, {
        args: ["--nats-config", files[k], "--replicas", "3", "--replication-timeout", "3s"],
      })
    ));
    const [n1, , n3] = nodes;
    await n1.sql("CREATE TABLE t(id INTEGER PRIMARY KEY, origin TEXT)");
    await cluster.waitConverged(nodes, ["t"], 60_000);
    for (const [k, n] of nodes.entries()) {
      for (let i = 0; i < 5; i++) await write(n, k * 100 + i);
    }
    await cluster.waitConverged(nodes, ["t"], 60_000);
    assert.deepEqual((await n3.sql("SELECT count(*), count(DISTINCT origin) FROM t")).rows, [[
      15,
      3,
    ]]);
    const nc = await connectNats({
      servers: [`nats://127.0.0.1:${ports[0].client}`],
      name: "test",
      logger: createLogger("error"),
    });
    let leader: string | undefined;
    try {
      const info = await (await jetstreamManager(nc.nc)).streams.info("ha_replication");
      assert.equal(info.config.num_replicas, 3);
      assert.equal(info.cluster?.replicas?.length, 2, "a leader and two followers");
      leader = info.cluster?.leader;
    } finally {
      await nc.close();
    }

    // The node whose server leads the stream stops, its nats-server with it: the other two
    // elect a new leader and keep replicating through 2 of 3 servers.
    const victim = nodes.find((n) => n.name === leader);
    assert.ok(victim, `stream leader ${leader} is one of the nodes`);
    const rest = nodes.filter((n) => n !== victim);
    await cluster.kill(victim);
    for (let i = 0; i < 10; i++) {
      for (const [k, n] of rest.entries()) await write(n, 1000 * (k + 1) + i);
    }
    await cluster.waitConverged(rest, ["t"], 60_000);
    assert.deepEqual((await rest[1].sql("SELECT count(*) FROM t")).rows, [[35]]);
    await waitFor("both ready", async () => {
      const r = await Promise.all(rest.map((n) => n.get("/readyz")));
      return r.every((x) => x.status === 200);
    }, 30_000);
  } finally {
    await cluster.stop();
  }
});
