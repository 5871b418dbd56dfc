/**
 * The replicated-writes row of `compare.ts` alone, for A/B runs and profiles: three ha nodes
 * (file databases, synchronous replication), `wrk` single-row inserts with BENCH_CONNS (32)
 * connections spread over the nodes, then 1 connection on node1. Prints writes/s, latency and the
 * CPU per write of every ha and nats-server process together (from `/proc`, steadier than
 * writes/s on a shared machine).
 *
 * Env: BENCH_SECONDS (3); BENCH_NODES (3, or 1); BENCH_THREADS=1 (CPU per process and thread);
 * BENCH_COUNTS=1 (published and applied changesets per node: group sizes); BENCH_SKIP_C1=1;
 * BENCH_DSN_QUERY (appended to each `file:` DSN); PROF_DIR=dir (each node under `--cpu-prof`,
 * one subdirectory per node; summarise with `bench/profile_summary.ts`).
 *
 * Run: `deno task bench repl-writes`.
 * @module
 */
import { Cluster, type HaNode, waitFor } from "../tests/integration/helpers/cluster.ts";
import { wrk, type WrkResult } from "./wrk.ts";

const SECONDS = Number(Deno.env.get("BENCH_SECONDS") ?? 3);
const CONNS = Number(Deno.env.get("BENCH_CONNS") ?? 32);
const PROF = Deno.env.get("PROF_DIR");

/** Starts a node (file database); node1 runs the NATS server the others use. */
function start(cluster: Cluster, name: string, natsUrl?: string): Promise<HaNode> {
  return cluster.start(name, {
    memory: false,
    embeddedNats: !natsUrl,
    natsUrl,
    dsns: [`file:${cluster.root}/${name}/ha.db${Deno.env.get("BENCH_DSN_QUERY") ?? ""}`],
    args: ["--log-level", "warn"],
    denoFlags: PROF ? ["--cpu-prof", `--cpu-prof-dir=${PROF}/${name}`] : [],
  });
}

function insertLoad(urls: string[], conns: number): Promise<WrkResult> {
  return wrk(urls, {
    script: "insert.lua",
    conns,
    seconds: SECONDS,
    args: () => ["ha", `k${crypto.randomUUID().slice(0, 8)}`],
  });
}

/** CPU time (user + system, ms) per process and thread name, of `pids` and descendants. */
export function cpuByThread(pids: number[]): Map<string, number> {
  const out = new Map<string, number>();
  const seen = new Set<number>();
  const visit = (pid: number, label: string) => {
    if (seen.has(pid)) return;
    seen.add(pid);
    try {
      for (const t of Deno.readDirSync(`/proc/${pid}/task`)) {
        const dir = `/proc/${pid}/task/${t.name}`;
        const stat = Deno.readTextFileSync(`${dir}/stat`);
        const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
        const comm = Deno.readTextFileSync(`${dir}/comm`).trim().replace(/[0-9]+$/, "");
        const key = `${label} ${comm}`;
        out.set(key, (out.get(key) ?? 0) + (Number(f[11]) + Number(f[12])) * 10);
        const kids = Deno.readTextFileSync(`${dir}/children`).trim();
        for (const k of kids ? kids.split(" ") : []) visit(Number(k), "nats");
      }
    } catch { /* exited */ }
  };
  pids.forEach((p, i) => visit(p, `node${i + 1}`));
  return out;
}

const total = (m: Map<string, number>) => [...m.values()].reduce((a, b) => a + b, 0);

/** Waits until `probe` holds (an error counts as not yet). */
async function ready(what: string, probe: () => Promise<boolean>): Promise<void> {
  await waitFor(what, () => probe().catch(() => false), 60_000);
}

/** Runs the benchmark and prints one JSON line (and the optional breakdowns). */
export async function main(): Promise<void> {
  const cluster = new Cluster();
  try {
    const nodes = [await start(cluster, "node1")];
    await ready("node1 ready", async () => (await nodes[0].get("/readyz")).status === 200);
    if (Number(Deno.env.get("BENCH_NODES") ?? 3) > 1) {
      const nats = nodes[0].natsUrl!;
      nodes.push(await start(cluster, "node2", nats), await start(cluster, "node3", nats));
    }
    for (const n of nodes) {
      await ready("ready", async () => (await n.get("/readyz")).status === 200);
    }
    await nodes[0].sql("CREATE TABLE model (key TEXT, value TEXT, UNIQUE(key))");
    for (const n of nodes) {
      await ready("table", async () => (await n.checksum("model")) !== "missing");
    }
    const pids = nodes.map((n) => n.pid);
    const before = cpuByThread(pids);
    const many = await insertLoad(nodes.map((n) => n.url), CONNS);
    const after = cpuByThread(pids);
    const cpuMsPerWrite = +((total(after) - total(before)) / (many.ok * SECONDS)).toFixed(2);
    if (Deno.env.get("BENCH_THREADS")) {
      const rows = [...after].map(([k, v]) => [k, v - (before.get(k) ?? 0)] as const)
        .filter(([, v]) => v > 0).sort((a, b) => b[1] - a[1]);
      for (const [k, v] of rows) console.log(`${k.padEnd(32)} ${v} ms`);
    }
    const one = Deno.env.get("BENCH_SKIP_C1") ? null : await insertLoad([nodes[0].url], 1);
    const c1 = one ? { c1: one } : {};
    console.log(JSON.stringify({ [`c${CONNS}`]: { ...many, cpuMsPerWrite }, ...c1 }));
    if (Deno.env.get("BENCH_COUNTS")) {
      for (const n of nodes) {
        const text = await (await fetch(`${n.url}/metrics`)).text();
        const counts =
          /^ha_(replication_(published|applied)_total|http_requests_total\{route="\/")/;
        console.log(text.split("\n").filter((l) => counts.test(l)).join("\n"));
      }
    }
  } finally {
    await cluster.stop(); // SIGTERM first: --cpu-prof writes its profiles on exit
  }
}

if (import.meta.main) await main();
