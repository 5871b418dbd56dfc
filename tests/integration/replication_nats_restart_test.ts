/**
 * NATS trouble with real processes: the embedded nats-server is killed under load and restarted
 * by its supervisor (synchronous writes succeed or fail with a clear 503 and none is lost,
 * asynchronous writes all arrive), and a changeset delivered twice changes nothing.
 */
import assert from "node:assert/strict";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { createLogger } from "../../src/log/mod.ts";
import { connectNats } from "../../src/nats/mod.ts";
import {
  Cluster,
  descendants,
  type HaNode,
  HttpError,
  waitFor,
  withCluster,
} from "./helpers/cluster.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };

/** Outcomes of the writes of one node's load. */
interface Outcomes {
  /** Acknowledged (200). */
  ok: number[];
  /** 503 "committed locally ... queued". */
  queued: number[];
}

/** 4 writers inserting distinct ids into t until `stop.v`, into `out`; other errors fail. */
function load(n: HaNode, base: number, stop: { v: boolean }, out: Outcomes): Promise<void> {
  return Promise.all([0, 1, 2, 3].map(async (w) => {
    for (let i = 0; !stop.v; i++) {
      const id = base + w * 100_000 + i;
      try {
        await n.sql("INSERT INTO t(id, v) VALUES (?, ?)", [id, n.name]);
        out.ok.push(id);
      } catch (e) {
        if (!(e instanceof HttpError && e.status === 503)) throw e;
        assert.match(
          e.message,
          /committed locally but JetStream did not confirm it within 1000 ms/,
        );
        out.queued.push(id);
      }
    }
  })).then(() => {});
}

/** The pid of a node's nats-server child. */
function natsServerPid(n: HaNode): number {
  const pid = descendants(n.pid).find((p) => {
    try {
      return Deno.readTextFileSync(`/proc/${p}/cmdline`).includes("nats-server");
    } catch {
      return false;
    }
  });
  if (pid === undefined) throw new Error(`no nats-server under ${n.name}`);
  return pid;
}

async function ids(n: HaNode): Promise<Set<number>> {
  return new Set((await n.sql("SELECT id FROM t")).rows.map((r) => Number(r[0])));
}

Deno.test("nats-server killed under load: no write lost, async writes arrive", opts, async () => {
  const cluster = new Cluster();
  try {
    const sync = ["--replication-timeout", "1s"];
    const n1 = await cluster.start("node1", { embeddedNats: true, args: sync });
    const n2 = await cluster.start("node2", { natsUrl: n1.natsUrl!, args: sync });
    const n3 = await cluster.start("node3", {
      natsUrl: n1.natsUrl!,
      args: ["--async-replication"],
    });
    const nodes = [n1, n2, n3];
    await n1.sql("CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)");
    await cluster.waitConverged(nodes, ["t"]);

    // Driven by what the writers observe, not by how long things take on this machine.
    const stop = { v: false };
    const outs = nodes.map((): Outcomes => ({ ok: [], queued: [] }));
    const loads = nodes.map((n, k) => load(n, (k + 1) * 1_000_000, stop, outs[k]));
    const [o1, o2, o3] = outs;
    const syncOk = (min: number[]) => () => o1.ok.length >= min[0] && o2.ok.length >= min[1];
    await waitFor("sync writes before the outage", syncOk([10, 10]), 60_000);
    const old = natsServerPid(n1);
    Deno.kill(old, "SIGKILL");
    await waitFor(
      "some sync writes hit the outage (503)",
      () => o1.queued.length + o2.queued.length > 0,
      60_000,
    );
    await waitFor("nats-server restarted", () => {
      try {
        return natsServerPid(n1) !== old;
      } catch {
        return false;
      }
    }, 60_000);
    const after = [o1.ok.length + 10, o2.ok.length + 10];
    await waitFor("sync writes after the outage", syncOk(after), 60_000);
    stop.v = true;
    await Promise.all(loads);
    assert.equal(o3.queued.length, 0, "async writes never wait for NATS");
    await cluster.waitConverged(nodes, ["t"], 60_000);
    const written = [o1, o2, o3].flatMap((o) => [...o.ok, ...o.queued]);
    for (const n of nodes) {
      const have = await ids(n);
      const missing = written.filter((id) => !have.has(id));
      assert.deepEqual(missing, [], `${n.name} misses ${missing.length} writes`);
      assert.equal(have.size, written.length, `${n.name} has no write nobody made`);
    }
    // Ready again once every subscriber has caught up with the restarted server.
    for (const n of nodes) {
      await waitFor(`${n.name} ready`, async () => (await n.get("/readyz")).status === 200, 60_000);
    }
  } finally {
    await cluster.stop();
  }
});

Deno.test("a changeset republished under a new msg id changes nothing", opts, async () => {
  const logger = createLogger("error");
  await withCluster(2, async ([n1, n2], cluster) => {
    await n1.batch([
      { sql: "CREATE TABLE t(id INTEGER PRIMARY KEY, n INTEGER)" },
      { sql: "CREATE TABLE audit(id INTEGER PRIMARY KEY AUTOINCREMENT, what TEXT)" },
      {
        sql: `CREATE TRIGGER t_ai AFTER INSERT ON t BEGIN
                INSERT INTO audit(what) VALUES ('insert ' || NEW.id); END`,
      },
      {
        sql: `CREATE TRIGGER t_au AFTER UPDATE ON t BEGIN
                INSERT INTO audit(what) VALUES ('update ' || NEW.id || ' ' || NEW.n); END`,
      },
    ]);
    await n1.sql("INSERT INTO t VALUES (1, 0), (2, 0)");
    await n1.sql("UPDATE t SET n = n + 1 WHERE id = 1");
    await n1.sql("DELETE FROM t WHERE id = 2");
    await cluster.waitConverged([n1, n2], ["t", "audit"]);
    const before = await Promise.all([n1, n2].map((n) => n.checksum("audit")));

    const nc = await connectNats({ servers: [n1.natsUrl!], name: "test", logger });
    let last = 0;
    try {
      const jsm = await jetstreamManager(nc.nc);
      const js = jetstream(nc.nc);
      const info = await jsm.streams.info("ha_replication");
      for (let seq = 1; seq <= info.state.last_seq; seq++) {
        const m = await jsm.streams.getMessage("ha_replication", { seq });
        assert.ok(m, `message ${seq}`);
        last = (await js.publish(m.subject, m.data, { msgID: `dup-${seq}` })).seq;
      }
      assert.ok(last > info.state.last_seq, "the copies were stored, not de-duplicated");
    } finally {
      await nc.close();
    }
    await waitFor("node2 processed the copies", async () => {
      const s = (await n2.get("/replications")).body as {
        status: { subscriber: { appliedSeq: number } }[];
      };
      return s.status[0].subscriber.appliedSeq >= last;
    });
    await cluster.waitConverged([n1, n2], ["t", "audit"]);
    assert.deepEqual(await Promise.all([n1, n2].map((n) => n.checksum("audit"))), before);
    assert.deepEqual((await n2.sql("SELECT id, n FROM t")).rows, [[1, 1]]);
    assert.deepEqual((await n2.sql("SELECT count(*) FROM audit")).rows, [[3]]);
  });
});
