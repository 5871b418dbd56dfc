/**
 * Where replication resumes, with real processes and an external nats-server the tests kill and
 * restart (issue 9, scenarios 1, 4, 5, 7 and the policy on first start):
 * - a file replica SIGKILLed while idle gets every write made while it was down, over and over;
 * - a replica's own consumer deleted (on itself or on another node) is recreated from the
 *   progress recorded in SQLite: the node is never deaf;
 * - `--replication-policy new` is evaluated once: a restarted file node gets what was written
 *   while it was down;
 * - a node started while NATS is down serves at once (reads; sync writes 503 "committed locally,
 *   queued"; async writes 200), is not ready with the reason, and publishes and catches up when
 *   NATS comes;
 * - an async memory node restarted while NATS is down gets back its own queued write.
 */
import assert from "node:assert/strict";
import { Cluster, freePort, type HaNode, HttpError, waitFor } from "./helpers/cluster.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };

/** An external nats-server with JetStream that a test stops and starts again on one port. */
class NatsServer {
  readonly port = freePort();
  private child: Deno.ChildProcess | null = null;
  constructor(private readonly dir: string) {}

  get url(): string {
    return `nats://127.0.0.1:${this.port}`;
  }

  async start(): Promise<void> {
    this.child = new Deno.Command("nats-server", {
      args: ["-a", "127.0.0.1", "-p", String(this.port), "-js", "-sd", this.dir],
      stdout: "null",
      stderr: "null",
      stdin: "null",
    }).spawn();
    await waitFor("nats-server listening", async () => {
      const c = await Deno.connect({ hostname: "127.0.0.1", port: this.port }).catch(() => null);
      c?.close();
      return c !== null;
    });
  }

  /** SIGKILL, waits for the exit. */
  async kill(): Promise<void> {
    if (!this.child) return;
    try {
      this.child.kill("SIGKILL");
    } catch { /* gone */ }
    await this.child.status;
    this.child = null;
  }
}

async function count(n: HaNode, table = "t"): Promise<number> {
  return Number((await n.sql(`SELECT count(*) FROM ${table}`)).rows[0][0]);
}

async function ready(n: HaNode): Promise<boolean> {
  return (await n.get("/readyz")).status === 200;
}

Deno.test(
  "a file replica SIGKILLed while idle gets every write made while it was down",
  opts,
  async () => {
    const cluster = new Cluster();
    const nats = new NatsServer(`${cluster.root}/nats`);
    try {
      await nats.start();
      const a = await cluster.start("a", { natsUrl: nats.url });
      const bOpts = { natsUrl: nats.url, memory: false, dsns: [`${cluster.root}/b/ha.db`] };
      let b = await cluster.start("b", bOpts);
      await a.sql("CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)");
      await a.sql("INSERT INTO t VALUES (0, 'before')");
      await cluster.waitConverged([a, b], ["t"]);
      let id = 1;
      for (let round = 1; round <= 5; round++) {
        // Insert while the killed process is torn down: its pull requests are still waiting.
        const killed = cluster.kill(b, "SIGKILL");
        for (let i = 0; i < 20; i++, id++) await a.sql("INSERT INTO t VALUES (?, 'x')", [id]);
        await killed;
        b = await cluster.start("b", { ...bOpts, reuse: b });
        await waitFor(`round ${round}: b ready`, () => ready(b), 30_000);
        await waitFor(`round ${round}: b has ${id} rows`, async () => await count(b) >= id, 30_000)
          .catch(async (e) => {
            const have = new Set((await b.sql("SELECT id FROM t")).rows.map((r) => Number(r[0])));
            const missing = [...Array(id).keys()].filter((k) => !have.has(k));
            throw new Error(`${(e as Error).message}; missing ids ${missing.join(",")}`);
          });
        await cluster.waitConverged([a, b], ["t"]);
      }
    } finally {
      await cluster.stop();
      await nats.kill();
    }
  },
);

Deno.test("a deleted consumer is recreated from local progress: never deaf", opts, async () => {
  const cluster = new Cluster();
  try {
    const a = await cluster.start("a", { embeddedNats: true });
    const b = await cluster.start("b", {
      natsUrl: a.natsUrl!,
      memory: false,
      dsns: [`${cluster.root}/b/ha.db`],
    });
    await a.sql("CREATE TABLE t(id INTEGER PRIMARY KEY)");
    await a.sql("INSERT INTO t VALUES (1)");
    await waitFor("b has t", async () => await count(b).catch(() => 0) === 1);

    const own = await b.get("/replications/ha_db_b");
    assert.equal(own.status, 200);
    const body = own.body as { replications: { name: string }; status: { appliedSeq: number } };
    assert.equal(body.replications.name, "ha_db_b");
    assert.ok(body.status.appliedSeq >= 2, JSON.stringify(body));

    // On the node itself: a reset from local progress, logged.
    const del = await fetch(`${b.url}/replications/ha_db_b`, { method: "DELETE" });
    assert.equal(del.status, 204);
    await a.sql("INSERT INTO t VALUES (2)");
    await waitFor("b gets row 2", async () => await count(b) === 2);
    const reset = (await b.get("/replications/ha_db_b")).body as {
      status: { lastRestart: { reason: string }; appliedSeq: number };
    };
    assert.equal(reset.status.lastRestart.reason, "DELETE /replications by the operator");

    // On another node: the JetStream consumer is deleted; its node notices and recreates it.
    const other = await fetch(`${a.url}/replications/ha_db_b`, { method: "DELETE" });
    assert.equal(other.status, 204);
    await a.sql("INSERT INTO t VALUES (3)");
    await waitFor("b gets row 3", async () => await count(b) === 3, 30_000);
    await waitFor("b ready", () => ready(b));
    const list = (await a.get("/replications")).body as { replications: { name: string }[] };
    assert.ok(list.replications.some((c) => c.name === "ha_db_b"), JSON.stringify(list));
    const st = (await b.get("/replications")).body as {
      status: { subscriber: { restarts: number; running: boolean } }[];
    };
    assert.ok(st.status[0].subscriber.restarts >= 2, JSON.stringify(st));
    assert.equal(st.status[0].subscriber.running, true);
  } finally {
    await cluster.stop();
  }
});

Deno.test("--replication-policy new is evaluated once, on the first start", opts, async () => {
  const cluster = new Cluster();
  try {
    const a = await cluster.start("a", { embeddedNats: true });
    await a.sql("CREATE TABLE t(id INTEGER PRIMARY KEY)");
    await a.sql("INSERT INTO t VALUES (1)");
    const bOpts = {
      natsUrl: a.natsUrl!,
      memory: false,
      dsns: [`${cluster.root}/b/ha.db`],
      args: ["--replication-policy", "new"],
    };
    let b = await cluster.start("b", bOpts);
    await waitFor("b ready", () => ready(b));
    await b.sql("CREATE TABLE t(id INTEGER PRIMARY KEY)");
    await a.sql("INSERT INTO t VALUES (2)");
    await waitFor("b gets the new row 2 only", async () => await count(b) === 1);
    await cluster.kill(b, "SIGKILL");
    await a.sql("INSERT INTO t VALUES (3)");
    b = await cluster.start("b", { ...bOpts, reuse: b });
    await waitFor("b gets row 3, written while it was down", async () => await count(b) === 2);
    assert.deepEqual((await b.sql("SELECT id FROM t ORDER BY id")).rows, [[2], [3]]);
  } finally {
    await cluster.stop();
  }
});

Deno.test("a node started while NATS is down serves, queues, then catches up", opts, async () => {
  const cluster = new Cluster();
  const nats = new NatsServer(`${cluster.root}/nats`);
  try {
    await nats.start();
    const a = await cluster.start("a", { natsUrl: nats.url });
    await a.sql("CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)");
    await nats.kill();
    const args = ["--replication-timeout", "2s"];
    const sync = await cluster.start("s", {
      natsUrl: nats.url,
      memory: false,
      dsns: [`${cluster.root}/s/ha.db`],
      args,
    });
    const readyz = await sync.get("/readyz");
    assert.equal(readyz.status, 503);
    assert.match(JSON.stringify(readyz.body), /NATS not connected yet/);
    assert.deepEqual((await sync.sql("SELECT 1 + 1")).rows, [[2]]);
    await sync.sql("CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)").then(
      () => assert.fail("a synchronous write cannot be confirmed while NATS is down"),
      (e) => {
        assert.ok(e instanceof HttpError && e.status === 503, String(e));
        assert.match(e.message, /committed locally .* queued/);
      },
    );
    await sync.sql("INSERT INTO t VALUES (1, 'sync')").catch((e) => {
      assert.ok(e instanceof HttpError && e.status === 503, String(e));
    });
    const asyncNode = await cluster.start("x", {
      natsUrl: nats.url,
      memory: false,
      dsns: [`${cluster.root}/x/ha.db`],
      args: ["--async-replication"],
    });
    await asyncNode.sql("CREATE TABLE IF NOT EXISTS t(id INTEGER PRIMARY KEY, v TEXT)");
    await asyncNode.sql("INSERT INTO t VALUES (2, 'async')");
    assert.equal((await asyncNode.get("/readyz")).status, 503);

    await nats.start();
    for (const n of [a, sync, asyncNode]) await waitFor(`${n.name} ready`, () => ready(n), 30_000);
    await cluster.waitConverged([a, sync, asyncNode], ["t"], 30_000);
    assert.deepEqual((await a.sql("SELECT id, v FROM t ORDER BY id")).rows, [
      [1, "sync"],
      [2, "async"],
    ]);
  } finally {
    await cluster.stop();
    await nats.kill();
  }
});

Deno.test(
  "an async memory node restarted while NATS is down keeps its own write",
  opts,
  async () => {
    const cluster = new Cluster();
    const nats = new NatsServer(`${cluster.root}/nats`);
    try {
      await nats.start();
      const mOpts = { natsUrl: nats.url, args: ["--async-replication"] };
      let m = await cluster.start("m", mOpts);
      const peer = await cluster.start("p", { natsUrl: nats.url });
      await m.sql("CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)");
      await m.sql("INSERT INTO t VALUES (1, 'before')");
      await cluster.waitConverged([m, peer], ["t"]);
      await nats.kill();
      await m.sql("INSERT INTO t VALUES (2, 'queued')");
      const stopped = Date.now();
      await cluster.kill(m, "SIGTERM");
      const stopMs = Date.now() - stopped;
      await waitFor("m logged its stop", () => /node stopped/.test(m.log()));
      m = await cluster.start("m", { ...mOpts, reuse: m });
      assert.equal((await m.get("/readyz")).status, 503, "not ready before NATS is back");
      await nats.start();
      await waitFor("m ready", () => ready(m), 30_000);
      await cluster.waitConverged([m, peer], ["t"], 30_000);
      assert.deepEqual((await m.sql("SELECT id, v FROM t ORDER BY id")).rows, [
        [1, "before"],
        [2, "queued"],
      ]);
      console.log(`SIGTERM with NATS down took ${stopMs} ms`);
    } finally {
      await cluster.stop();
      await nats.kill();
    }
  },
);

/** Writers inserting unique ids into t through `nodes()` until `stop.v`; what was acknowledged. */
function load(
  nodes: () => HaNode[],
  stop: { v: boolean },
): { acked: number[]; run: Promise<void> } {
  const acked: number[] = [];
  const run = Promise.all([0, 1, 2, 3, 4, 5].map(async (w) => {
    for (let i = 0; !stop.v; i++) {
      const n = nodes()[w % 3];
      const id = w * 1_000_000 + i;
      try {
        await n.sql("INSERT INTO t(id, v) VALUES (?, ?)", [id, n.name]);
        acked.push(id);
      } catch (e) {
        if (e instanceof HttpError) {
          assert.equal(e.status, 503, e.message);
          assert.match(e.message, /committed locally/);
          acked.push(id);
        } // else the node is down: the outcome of this write is unknown, it is not counted
        else await new Promise((r) => setTimeout(r, 20));
      }
    }
  })).then(() => {});
  return { acked, run };
}

Deno.test(
  "file nodes SIGKILLed under load: every acknowledged write on every node",
  opts,
  async () => {
    const cluster = new Cluster();
    const nats = new NatsServer(`${cluster.root}/nats`);
    try {
      await nats.start();
      const fileOpts = (name: string) => ({
        natsUrl: nats.url,
        memory: false,
        dsns: [`${cluster.root}/${name}/ha.db`],
      });
      const nodes = [
        await cluster.start("m", { natsUrl: nats.url }),
        await cluster.start("f1", fileOpts("f1")),
        await cluster.start("f2", fileOpts("f2")),
      ];
      await nodes[0].sql("CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)");
      await cluster.waitConverged(nodes, ["t"]);
      const stop = { v: false };
      const l = load(() => nodes, stop);
      for (let round = 0; round < 4; round++) {
        const k = 1 + round % 2;
        const before = l.acked.length;
        await waitFor("writes acknowledged", () => l.acked.length >= before + 40, 30_000);
        await cluster.kill(nodes[k], "SIGKILL");
        nodes[k] = await cluster.start(nodes[k].name, {
          ...fileOpts(nodes[k].name),
          reuse: nodes[k],
        });
      }
      const before = l.acked.length;
      await waitFor("writes acknowledged", () => l.acked.length >= before + 40, 30_000);
      stop.v = true;
      await l.run;
      await cluster.waitConverged(nodes, ["t"], 60_000).catch(() => {});
      for (const n of nodes) {
        const have = new Set((await n.sql("SELECT id FROM t")).rows.map((r) => Number(r[0])));
        const missing = l.acked.filter((id) => !have.has(id));
        assert.deepEqual(missing, [], `${n.name} misses ${missing.length} of ${l.acked.length}`);
      }
      await cluster.waitConverged(nodes, ["t"]);
    } finally {
      await cluster.stop();
      await nats.kill();
    }
  },
);
