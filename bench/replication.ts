/**
 * Replication benchmark with real processes: write throughput of a replicated node (synchronous
 * and `--async-replication`) against a standalone node, for one client and for many concurrent
 * clients (pipelining), and the time until a second node has every row.
 *
 * Run: `deno run -A --unstable-worker-options bench/replication.ts [writes]`
 * @module
 */
import { Cluster, type HaNode, waitFor } from "../tests/integration/helpers/cluster.ts";

const WRITES = Number(Deno.args[0] ?? 2000);

async function writes(n: HaNode, clients: number, total: number, base: number): Promise<number> {
  const t0 = performance.now();
  let next = 0;
  await Promise.all(Array.from({ length: clients }, async () => {
    while (next < total) {
      const id = base + next++;
      await n.sql("INSERT INTO t(id, v) VALUES (?, 'x')", [id]);
    }
  }));
  return total / ((performance.now() - t0) / 1000);
}

async function count(n: HaNode): Promise<number> {
  return Number((await n.sql("SELECT count(*) FROM t")).rows[0][0]);
}

async function scenario(label: string, extra: string[] | null): Promise<number[]> {
  const cluster = new Cluster();
  try {
    const n1 = extra === null
      ? await cluster.start("node1", {})
      : await cluster.start("node1", { embeddedNats: true, args: extra });
    const n2 = extra === null ? null : await cluster.start("node2", {
      natsUrl: n1.natsUrl!,
      args: extra,
    });
    await n1.sql("CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)");
    if (n2) await waitFor("table on node2", async () => (await n2.checksum("t")) !== "missing");
    const one = await writes(n1, 1, Math.min(WRITES, 500), 0);
    const t0 = performance.now();
    const many = await writes(n1, 32, WRITES, 1_000_000);
    let lag = 0;
    if (n2) {
      const want = await count(n1);
      await waitFor("node2 caught up", async () => (await count(n2)) === want, 120_000);
      lag = performance.now() - t0;
    }
    console.log(
      `${label.padEnd(12)} 1 client: ${one.toFixed(0).padStart(6)} writes/s   32 clients: ` +
        `${many.toFixed(0).padStart(6)} writes/s` +
        (n2 ? `   all ${WRITES} on node2 after ${lag.toFixed(0)} ms` : ""),
    );
    return [one, many];
  } finally {
    await cluster.stop();
  }
}

const alone = await scenario("standalone", null);
const sync = await scenario("sync", []);
const asyn = await scenario("async", ["--async-replication"]);
console.log(
  `ratios vs standalone (32 clients): sync ${(sync[1] / alone[1]).toFixed(2)}, ` +
    `async ${(asyn[1] / alone[1]).toFixed(2)}; pipelining gain (sync 32 vs 1 client): ` +
    `${(sync[1] / sync[0]).toFixed(1)}x`,
);
