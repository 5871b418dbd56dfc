/**
 * Replication benchmark with real processes (file databases, WAL): HTTP single-row INSERT
 * throughput of a standalone node, of one replicating node and of three (clients spread over all
 * three, each node also applying the others' writes), synchronous and `--async-replication`, at
 * several concurrencies, beside the in-process node:sqlite ceiling; and replication lag: from a
 * write request sent to node1 until the row is visible on node2 (polled), p50/p99.
 *
 * Run: `deno task bench replication` (`BENCH_SECONDS` per measurement, default 3).
 * @module
 */
import { DatabaseSync } from "node:sqlite";
import { Cluster, type HaNode, waitFor } from "../tests/integration/helpers/cluster.ts";
import { load, percentile, table } from "./stats.ts";

const SECONDS = Number(Deno.env.get("BENCH_SECONDS") ?? 3);
const LEVELS = [1, 8, 32];
const SCHEMA = "CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)";

/** In-process ceiling: the same INSERTs on node:sqlite directly (file, WAL, synchronous NORMAL). */
function ceiling(dir: string): number {
  const db = new DatabaseSync(`${dir}/ceiling.db`);
  db.exec("PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;");
  db.exec(SCHEMA);
  const ins = db.prepare("INSERT INTO t(id, v) VALUES (?, ?)");
  const end = performance.now() + SECONDS * 1000;
  let n = 0;
  const t0 = performance.now();
  while (performance.now() < end) ins.run(++n, `value ${n}`);
  const ops = n / ((performance.now() - t0) / 1000);
  db.close();
  return ops;
}

/** A POST of one statement; throws on a non-2xx answer. */
async function post(n: HaNode, sql: string, params: unknown[]): Promise<void> {
  const r = await fetch(n.url, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ sql, params }),
  });
  if (!r.ok) throw new Error(`${n.name}: HTTP ${r.status} ${await r.text()}`);
  await r.arrayBuffer();
}

async function count(n: HaNode, table: string): Promise<number> {
  return Number((await n.sql(`SELECT count(*) FROM ${table}`)).rows[0][0]);
}

/**
 * Probes replication lag while `run` executes: every 20 ms a row is written to node1 and node2
 * is polled until it shows it. Returns the lag of each probe in ms.
 */
async function withLag(from: HaNode, to: HaNode, run: () => Promise<void>): Promise<number[]> {
  const sent = new Map<number, number>();
  const lags: number[] = [];
  let done = false;
  let next = await count(from, "probe");
  const writer = (async () => {
    while (!done) {
      const id = ++next;
      sent.set(id, performance.now());
      await post(from, "INSERT INTO probe(id) VALUES (?)", [id]);
      await new Promise((r) => setTimeout(r, 20));
    }
  })();
  let seen = next;
  const poll = async () => {
    const r = await to.sql("SELECT id FROM probe WHERE id > ? ORDER BY id", [seen]);
    const now = performance.now();
    for (const [id] of r.rows as number[][]) {
      lags.push(now - sent.get(id)!);
      seen = id;
    }
  };
  const poller = (async () => {
    while (!done) await poll();
  })();
  await run();
  done = true;
  await writer;
  await poller;
  await waitFor("probes replicated", async () => {
    await poll();
    return seen === next;
  }, 60_000);
  return lags;
}

/** One cluster configuration measured at every level. */
async function scenario(
  nodes: number,
  mode: "standalone" | "sync" | "async",
  rows: (string | number)[][],
  lagRows: (string | number)[][],
  top: number,
  standalone: Map<number, number>,
): Promise<void> {
  const cluster = new Cluster();
  try {
    const args = ["--log-level", "warn", ...(mode === "async" ? ["--async-replication"] : [])];
    const start = (name: string, extra: { embeddedNats?: boolean; natsUrl?: string }) =>
      cluster.start(name, {
        memory: false,
        dsns: [`${cluster.root}/${name}/bench.db`],
        args,
        ...extra,
      });
    const n1 = await start("node1", { embeddedNats: mode !== "standalone" });
    const ns = [n1];
    for (let i = 2; i <= nodes; i++) ns.push(await start(`node${i}`, { natsUrl: n1.natsUrl! }));
    await post(n1, SCHEMA, []);
    await post(n1, "CREATE TABLE probe(id INTEGER PRIMARY KEY)", []);
    await waitFor(`schema everywhere (${nodes} ${mode})`, async () => {
      for (const n of ns) if ((await n.checksum("probe")) === "missing") return false;
      return true;
    });
    let base = 0;
    for (const c of LEVELS) {
      base += 1e9;
      const measure = () =>
        load(c, SECONDS * 1000, (i) => {
          const n = ns[i % ns.length];
          return post(n, "INSERT INTO t(id, v) VALUES (?, ?)", [base + i, `value ${i}`]);
        });
      let r!: Awaited<ReturnType<typeof load>>;
      if (nodes > 1) {
        const lags = await withLag(n1, ns[1], async () => void (r = await measure()));
        lags.sort((a, b) => a - b);
        lagRows.push([nodes, mode, c, percentile(lags, 0.5), percentile(lags, 0.99), lags.length]);
        const want = await count(n1, "t");
        await waitFor("writes replicated", async () => {
          for (const n of ns) if ((await count(n, "t")) !== want) return false;
          return true;
        }, 120_000);
      } else r = await measure();
      if (mode === "standalone") standalone.set(c, r.ops);
      const alone = standalone.get(c) ?? NaN;
      rows.push([
        nodes,
        mode,
        c,
        r.ops,
        r.p50,
        r.p99,
        `${(r.ops / alone * 100).toFixed(0)}%`,
        `${(r.ops / top * 100).toFixed(1)}%`,
      ]);
    }
  } finally {
    await cluster.stop();
  }
}

/** Runs every scenario and prints the tables. */
export async function main(): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "ha-bench-" });
  try {
    const top = ceiling(dir);
    const rows: (string | number)[][] = [];
    const lagRows: (string | number)[][] = [];
    const standalone = new Map<number, number>();
    await scenario(1, "standalone", rows, lagRows, top, standalone);
    for (const mode of ["sync", "async"] as const) {
      for (const nodes of [1, 3]) await scenario(nodes, mode, rows, lagRows, top, standalone);
    }
    console.log(
      `\nHTTP INSERT throughput (${SECONDS}s per row, file DBs in WAL mode; ` +
        `in-process node:sqlite ceiling ${top.toFixed(0)} inserts/s)`,
    );
    table(
      ["nodes", "mode", "conc", "ops/s", "p50 ms", "p99 ms", "vs standalone", "vs ceiling"],
      rows,
    );
    console.log("\nReplication lag node1 → node2 during the load above (write sent → row visible)");
    table(["nodes", "mode", "conc", "lag p50 ms", "lag p99 ms", "probes"], lagRows);
  } finally {
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}

if (import.meta.main) await main();
