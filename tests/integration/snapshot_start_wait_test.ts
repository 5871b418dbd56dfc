/**
 * `--from-latest-snapshot` while JetStream does not answer yet: the node waits and tries the
 * restore again (logging why) instead of exiting at the first failure, and starts with the
 * snapshot once JetStream is back. The NATS server first runs without JetStream (its API has no
 * responders), then with it, on the same port and store.
 */
import assert from "node:assert/strict";
import { Cluster, freePort, waitFor } from "./helpers/cluster.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };

/** A nats-server on `port` (JetStream with `storeDir`, or none), stopped by its own pid. */
async function natsServer(port: number, storeDir: string | null) {
  const child = new Deno.Command("nats-server", {
    args: ["-a", "127.0.0.1", "-p", String(port), ...(storeDir ? ["-js", "-sd", storeDir] : [])],
    stdout: "null",
    stderr: "null",
    stdin: "null",
  }).spawn();
  await waitFor("nats-server listening", async () => {
    const c = await Deno.connect({ hostname: "127.0.0.1", port }).catch(() => null);
    c?.close();
    return c !== null;
  });
  return {
    async kill() {
      try {
        child.kill("SIGKILL");
      } catch { /* gone */ }
      await child.status;
    },
  };
}

Deno.test(
  "--from-latest-snapshot waits for JetStream to answer, then restores",
  opts,
  async () => {
    const cluster = new Cluster();
    const port = freePort();
    const store = `${cluster.root}/nats`;
    let nats = await natsServer(port, store);
    try {
      const url = `nats://127.0.0.1:${port}`;
      const a = await cluster.start("a", { natsUrl: url });
      await a.sql("CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)");
      await a.sql("INSERT INTO t VALUES (1, 'in the snapshot')");
      const r = await fetch(`${a.url}/snapshot`, { method: "POST" });
      assert.equal(r.status, 200, await r.text());
      await cluster.kill(a);
      await nats.kill();

      nats = await natsServer(port, null);
      // Its start spans the server swap below: a busy machine gets a generous limit.
      const starting = cluster.start("b", {
        natsUrl: url,
        args: ["--from-latest-snapshot"],
        startTimeoutMs: 120_000,
      });
      starting.catch(() => {}); // awaited below
      // The restore failed at least once and the node waits (it has not exited: it would have
      // rejected `starting` with its log).
      const logOf = () => {
        for (const e of Deno.readDirSync(`${cluster.root}/b`)) {
          if (e.name.endsWith(".log")) return Deno.readTextFileSync(`${cluster.root}/b/${e.name}`);
        }
        return "";
      };
      await waitFor(
        "the restore's retry",
        () => /does not answer yet; trying again/.test(logOf()),
        60_000,
      );
      await nats.kill();
      nats = await natsServer(port, store);
      const b = await starting;
      assert.deepEqual((await b.sql("SELECT id, v FROM t")).rows, [[1, "in the snapshot"]]);
      assert.match(b.log(), /snapshot restored/);
    } finally {
      await cluster.stop();
      await nats.kill();
    }
  },
);
