/**
 * Snapshot and restore throughput against a real nats-server: a file database of
 * `BENCH_SNAPSHOT_MB` MiB (default 300; random BLOBs and text, so nothing compresses), taken
 * into the object store and restored into a new file. Prints MiB/s of each phase beside the
 * local file-copy ceiling, the time of a skipped (unchanged) snapshot and the peak RSS.
 *
 * Run: `deno run -A --unstable-worker-options bench/snapshot.ts`.
 */
import { DatabaseSync } from "node:sqlite";
import { openEngine } from "../src/engine/mod.ts";
import { createLogger } from "../src/log/mod.ts";
import { connectNats, EmbeddedNatsServer } from "../src/nats/mod.ts";
import { Snapshotter } from "../src/snapshot/mod.ts";
import { freePort } from "../tests/integration/helpers/ha.ts";
import { table } from "./stats.ts";

const MB = 1024 * 1024;
const SIZE_MB = Number(Deno.env.get("BENCH_SNAPSHOT_MB") ?? 300);

function build(path: string, mb: number): void {
  const db = new DatabaseSync(path);
  db.exec("PRAGMA journal_mode=WAL; PRAGMA synchronous=OFF");
  db.exec("CREATE TABLE blobs(id INTEGER PRIMARY KEY, name TEXT, data BLOB)");
  const rows = Math.ceil((mb * MB) / 4200);
  db.exec(`WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < ${rows})
           INSERT INTO blobs SELECT i, 'blob number ' || i, randomblob(4000) FROM s`);
  db.exec("CREATE INDEX blobs_name ON blobs(name)");
  db.exec("PRAGMA wal_checkpoint(TRUNCATE)");
  db.close();
}

async function timed<T>(f: () => Promise<T>): Promise<[T, number]> {
  const t0 = performance.now();
  const r = await f();
  return [r, (performance.now() - t0) / 1000];
}

/** Runs the benchmark and prints a table. */
export async function main(): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "ha-bench-snapshot-" });
  const logger = createLogger("warn");
  const server = new EmbeddedNatsServer({
    bin: "/usr/sbin/nats-server",
    host: "127.0.0.1",
    port: freePort(),
    storeDir: `${dir}/nats`,
    serverName: "bench",
    logger,
  });
  await server.start();
  const client = await connectNats({ servers: [server.url!], name: "bench", logger });
  const path = `${dir}/big.db`;
  build(path, SIZE_MB);
  const size = (await Deno.stat(path)).size;
  const engine = await openEngine({ dsns: [path], memory: false, concurrentQueries: 4, logger });
  const snaps = new Snapshotter({
    nc: client.nc,
    stream: "bench",
    replicas: 1,
    nodeName: "bench",
    logger,
  });
  let peakRss = Deno.memoryUsage().rss;
  const sampler = setInterval(() => {
    peakRss = Math.max(peakRss, Deno.memoryUsage().rss);
  }, 50);
  try {
    const db = engine.get("big.db");
    const [, cp] = await timed(() => Deno.copyFile(path, `${dir}/plain-copy.db`));
    await Deno.remove(`${dir}/plain-copy.db`);
    const [, vac] = await timed(() => db.backupTo(`${dir}/vacuum.db`));
    await Deno.remove(`${dir}/vacuum.db`);
    const [taken, take] = await timed(() => snaps.take(db));
    if (taken.skipped) throw new Error("first snapshot skipped");
    await new Promise((r) => setTimeout(r, 200));
    const [skip1, skipFast] = await timed(() => snaps.take(db));
    await db.execute([{ sql: "SELECT count(*) FROM blobs" }]);
    const [restored, restore] = await timed(() => snaps.restore("big.db", `${dir}/restored.db`));
    if (!skip1.skipped || !restored) throw new Error("unexpected result");
    const rate = (s: number) => Math.round(size / MB / s);
    const rows: (string | number)[][] = [
      ["file copy (ceiling)", (cp * 1000).toFixed(0), rate(cp), "1.00"],
      ["VACUUM INTO copy", (vac * 1000).toFixed(0), rate(vac), (cp / vac).toFixed(2)],
      ["take (copy+hash+upload)", (take * 1000).toFixed(0), rate(take), (cp / take).toFixed(2)],
      ["take, unchanged (skipped)", (skipFast * 1000).toFixed(0), "-", "-"],
      [
        "restore (download+verify)",
        (restore * 1000).toFixed(0),
        rate(restore),
        (cp / restore).toFixed(2),
      ],
    ];
    console.log(`database ${(size / MB).toFixed(0)} MiB, chunks of 1 MiB, nats-server file store`);
    table(["phase", "ms", "MiB/s", "vs copy"], rows);
    console.log(`peak RSS ${(peakRss / MB).toFixed(0)} MiB`);
  } finally {
    clearInterval(sampler);
    await snaps.stop();
    await engine.close();
    await client.close();
    await server.stop();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}

if (import.meta.main) await main();
