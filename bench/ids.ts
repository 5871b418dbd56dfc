/**
 * Cost of cluster-chosen ids: HTTP single-row INSERTs that let the database choose the id (one
 * replicating node, synchronous, file database in WAL mode) with `--id-scheme sqlite` (SQLite's
 * own ids), `cluster` and `js-safe`, side by side in one run, at several concurrencies. With
 * `BENCH_BASE=<dir>` (a checkout of an older commit, e.g. `git worktree add /tmp/base <commit>`)
 * the same load also runs against that code, as "before".
 *
 * Run: `deno task bench ids` (`BENCH_SECONDS` per measurement, default 3; `BENCH_ROUNDS`, 3).
 * @module
 */
import { type Engine, openEngine } from "../src/engine/mod.ts";
import { createLogger } from "../src/log/mod.ts";
import { load, table } from "./stats.ts";
import type { Cluster as ClusterType, HaNode } from "../tests/integration/helpers/cluster.ts";

const SECONDS = Number(Deno.env.get("BENCH_SECONDS") ?? 3);
const LEVELS = [1, 8, 32];
const ROUNDS = Number(Deno.env.get("BENCH_ROUNDS") ?? 3);

async function post(n: HaNode, sql: string, params: unknown[]): Promise<void> {
  const r = await fetch(n.url, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ sql, params }),
  });
  if (!r.ok) throw new Error(`${n.name}: HTTP ${r.status} ${await r.text()}`);
  await r.arrayBuffer();
}

/** One configuration: a started node. */
interface Config {
  label: string;
  cluster: ClusterType;
  node: HaNode;
}

/** Starts a node of the code whose cluster helper is `helpers`, with `args`. */
async function start(label: string, helpers: string, args: string[]): Promise<Config> {
  const { Cluster } = await import(helpers) as { Cluster: new () => ClusterType };
  const cluster = new Cluster();
  const node = await cluster.start("node1", {
    embeddedNats: true,
    memory: false,
    dsns: [`${cluster.root}/node1/bench.db`],
    args: ["--log-level", "warn", ...args],
  });
  await post(node, "CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)", []);
  return { label, cluster, node };
}

/** Engines in one process: without plugins (SQLite's ids) and with the id plugin. */
export async function inProcess(): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "ha-bench-ids-" });
  const plugin = new URL("../src/ids/plugin.ts", import.meta.url).href;
  const engines: [string, Engine][] = [];
  try {
    for (
      const [label, plugins] of [
        ["sqlite ids", []],
        ["cluster ids", [{
          name: "ids",
          url: plugin,
          options: { scheme: "cluster", slot: 1, node: "bench" },
        }]],
      ] as const
    ) {
      const e = await openEngine({
        dsns: [`${dir}/${label.replace(" ", "_")}.db`],
        memory: false,
        concurrentQueries: 8,
        plugins: [...plugins],
        logger: createLogger("warn"),
      });
      await e.defaultDb.execute([{ sql: "CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)" }]);
      engines.push([label, e]);
    }
    const best = new Map<string, number>();
    for (let round = 0; round < ROUNDS; round++) {
      for (const [label, e] of engines) {
        const r = await load(
          1,
          SECONDS * 1000,
          (i) =>
            e.defaultDb.execute([{ sql: "INSERT INTO t(v) VALUES (?)", params: [`value ${i}`] }])
              .then(() => {}),
        );
        best.set(label, Math.max(best.get(label) ?? 0, r.ops));
      }
    }
    const ref = best.get("sqlite ids")!;
    console.log(`\nEngine.execute INSERT without an id, in process (best of ${ROUNDS} rounds)`);
    table(
      ["ids", "ops/s", "µs/insert", "vs sqlite ids"],
      [...best].map(([label, ops]) => [label, ops, 1e6 / ops, `${(ops / ref * 100).toFixed(0)}%`]),
    );
  } finally {
    for (const [, e] of engines) await e.close();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}

export async function main(): Promise<void> {
  await inProcess();
  const own = new URL("../tests/integration/helpers/cluster.ts", import.meta.url).href;
  const base = Deno.env.get("BENCH_BASE");
  const configs: Config[] = [];
  try {
    if (base) {
      const helpers = new URL(`file://${base}/tests/integration/helpers/cluster.ts`).href;
      configs.push(await start("before (BENCH_BASE)", helpers, []));
    }
    for (const scheme of ["sqlite", "cluster", "js-safe"]) {
      configs.push(await start(`--id-scheme ${scheme}`, own, ["--id-scheme", scheme]));
    }
    // Rounds alternate the configurations; the best round of each counts (a shared, noisy
    // machine only ever makes a run slower).
    const best = new Map<string, { ops: number; p50: number; p99: number }>();
    for (let round = 0; round < ROUNDS; round++) {
      for (const c of configs) {
        for (const conc of LEVELS) {
          const r = await load(
            conc,
            SECONDS * 1000,
            (i) => post(c.node, "INSERT INTO t(v) VALUES (?)", [`value ${i}`]),
          );
          const key = `${c.label}\u0000${conc}`;
          if ((best.get(key)?.ops ?? 0) < r.ops) best.set(key, r);
        }
      }
    }
    const ref = (conc: number) => best.get(`--id-scheme sqlite\u0000${conc}`)!.ops;
    console.log(
      `\nHTTP INSERT without an id, 1 replicating node, sync (best of ${ROUNDS} rounds of ` +
        `${SECONDS}s, file DB, WAL)`,
    );
    table(
      ["ids", "conc", "ops/s", "p50 ms", "p99 ms", "vs sqlite ids"],
      configs.flatMap((c) =>
        LEVELS.map((conc) => {
          const r = best.get(`${c.label}\u0000${conc}`)!;
          return [c.label, conc, r.ops, r.p50, r.p99, `${(r.ops / ref(conc) * 100).toFixed(0)}%`];
        })
      ),
    );
  } finally {
    for (const c of configs) await c.cluster.stop();
  }
}

if (import.meta.main) await main();
