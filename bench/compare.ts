/**
 * ha beside its anchors, one run, same machine, same load, printed as one table of ratios
 * (the table of issue 13):
 *
 * - 3 nodes, replicated single-row HTTP writes (`INSERT OR REPLACE`, a distinct key per
 *   request), 32 connections spread over the nodes and 1 connection: ha (file databases, sync
 *   replication) vs `dqlite-demo` (Debian `go-dqlite`, 3 voters, Raft).
 * - pgbench point select by primary key (simple / extended / prepared) and single-row insert,
 *   8 clients: ha (file database, sync replication on) vs a throwaway PostgreSQL 15 with its
 *   default configuration (`synchronous_commit=on`).
 * - HTTP single-row writes on one node without replication vs a 12-line `Deno.serve` +
 *   node:sqlite server (`bench/baseline_server.ts`, same file settings).
 *
 * HTTP load comes from `wrk` (`bench/wrk/insert.lua`), the same script for every target.
 * Missing tools (wrk, dqlite-demo, PostgreSQL) skip their rows with a message saying which
 * Debian package to install (`./install.sh` installs them).
 *
 * Run: `deno task bench compare`. Env: BENCH_SECONDS (default 5), BENCH_CLIENTS (pgbench,
 * default 8), BENCH_PG_ROUNDS (pgbench runs per target and row, alternated, default 3: the rows
 * give medians, the ratio the median of the pairs'), BENCH_CONNS (HTTP, default 32),
 * BENCH_WARMUP (the lag row's unmeasured load first, default 2 s), BENCH_ONLY (sections to run).
 * @module
 */
import { Cluster, type HaNode, waitFor } from "../tests/integration/helpers/cluster.ts";
import { freePort, startHa } from "../tests/integration/helpers/ha.ts";
import { pgbench, setup, startHaTarget, startPostgres, type Target } from "./pgbench.ts";
import { percentile, table } from "./stats.ts";
import { wrk, type WrkResult } from "./wrk.ts";
import { measureLag } from "./lag.ts";
import { measureCatchUp } from "./catchup.ts";
import { singleVsCeiling, withBaseline } from "./compare_single.ts";
import { footprintRows } from "./footprint.ts";

const SECONDS = Number(Deno.env.get("BENCH_SECONDS") ?? 5);
const CONNS = Number(Deno.env.get("BENCH_CONNS") ?? 32);
const CLIENTS = Number(Deno.env.get("BENCH_CLIENTS") ?? 8);
/** pgbench runs of each target per row (alternated; medians). */
const PG_ROUNDS = Number(Deno.env.get("BENCH_PG_ROUNDS") ?? 3);
/** BENCH_ONLY=pgbench,lag runs only the sections whose name contains one of these. */
const ONLY = Deno.env.get("BENCH_ONLY")?.split(",").filter((s) => s !== "");
const MODEL = "CREATE TABLE model (key TEXT, value TEXT, UNIQUE(key))";

/** One row of the final table: ha beside its anchor. */
type Row = [string, string, string, string];

function have(cmd: string): boolean {
  try {
    return new Deno.Command("sh", { args: ["-c", `command -v ${cmd}`], stdout: "null" })
      .outputSync().success;
  } catch {
    return false;
  }
}

/** Drives `urls` with `conns` connections in total with `wrk/insert.lua` for SECONDS. */
function insertLoad(urls: string[], conns: number, mode: "ha" | "dqlite"): Promise<WrkResult> {
  return wrk(urls, {
    script: "insert.lua",
    conns,
    seconds: SECONDS,
    args: () => [mode, `${mode}${crypto.randomUUID().slice(0, 8)}`],
  });
}

/** Child processes this benchmark started, ended by pid at the end. */
const children: Deno.ChildProcess[] = [];

function spawn(cmd: string, args: string[], log: string): Deno.ChildProcess {
  const child = new Deno.Command(cmd, { args, stdout: "piped", stderr: "piped" }).spawn();
  const f = Deno.openSync(log, { write: true, create: true, append: true });
  const out = f.writable.getWriter();
  const copy = async (s: ReadableStream<Uint8Array>) => {
    for await (const chunk of s) await out.write(chunk).catch(() => {});
  };
  Promise.all([copy(child.stdout), copy(child.stderr)]).finally(() => out.close().catch(() => {}));
  children.push(child);
  return child;
}

async function stopChildren(): Promise<void> {
  for (const c of children.splice(0)) {
    try {
      c.kill("SIGTERM");
    } catch { /* already gone */ }
    await c.status;
  }
}

/** Three dqlite-demo nodes (API + Raft ports on loopback); resolves once all three are voters. */
async function startDqlite(dir: string): Promise<string[]> {
  const db = [freePort(), freePort(), freePort()].map((p) => `127.0.0.1:${p}`);
  const api = [freePort(), freePort(), freePort()].map((p) => `127.0.0.1:${p}`);
  for (let i = 0; i < 3; i++) {
    const args = ["-a", api[i], "-d", db[i], "-D", `${dir}/dqlite${i + 1}`];
    if (i > 0) args.push("-j", db[0]);
    spawn("dqlite-demo", args, `${dir}/dqlite${i + 1}.log`);
    if (i === 0) {
      await waitFor("dqlite node1 API", () => httpOk(`http://${api[0]}/probe`), 30_000);
    }
  }
  await waitFor("3 dqlite voters", async () => {
    const out = await new Deno.Command("dqlite", {
      args: ["-s", db.join(","), "demo", ".cluster"],
      stdout: "piped",
      stderr: "null",
    }).output();
    return (new TextDecoder().decode(out.stdout).match(/\|voter/g) ?? []).length === 3;
  }, 60_000);
  for (const a of api) await waitFor(`dqlite ${a}`, () => httpOk(`http://${a}/probe`), 30_000);
  return api.map((a) => `http://${a}`);
}

async function httpOk(url: string): Promise<boolean> {
  const r = await fetch(url).catch(() => null);
  await r?.body?.cancel();
  return r?.ok ?? false;
}

/** Three ha nodes, file databases, synchronous replication (node1 runs the NATS server). */
async function startHaCluster(cluster: Cluster): Promise<HaNode[]> {
  const start = (name: string, natsUrl?: string) =>
    cluster.start(name, {
      memory: false,
      embeddedNats: !natsUrl,
      natsUrl,
      dsns: [`${cluster.root}/${name}/ha.db`],
      args: ["--log-level", "warn"],
    });
  const n1 = await start("node1");
  const ns = [n1, await start("node2", n1.natsUrl!), await start("node3", n1.natsUrl!)];
  await n1.sql(MODEL);
  await waitFor("model table on every node", async () => {
    for (const n of ns) if ((await n.checksum("model")) === "missing") return false;
    return true;
  });
  return ns;
}

const fmt = (n: number) => n >= 100 ? n.toFixed(0) : n.toFixed(2);
const times = (r: number) => `${r.toFixed(2)}×`;
const ratio = (a: number, b: number) => times(a / b);
const median = (xs: number[]) => percentile([...xs].sort((a, b) => a - b), 0.5);

/** Row: replicated HTTP writes, ha 3 nodes vs dqlite-demo 3 nodes. */
async function replicatedWrites(dir: string, rows: Row[]): Promise<void> {
  if (!have("wrk")) return skip(rows, "replicated HTTP writes", "wrk (apt-get install wrk)");
  if (!have("dqlite-demo")) {
    return skip(rows, "replicated HTTP writes", "dqlite-demo (apt-get install go-dqlite)");
  }
  const dq = await startDqlite(dir);
  const dq32 = await insertLoad(dq, CONNS, "dqlite");
  const dq1 = await insertLoad([dq[0]], 1, "dqlite");
  await stopChildren();
  const cluster = new Cluster();
  try {
    const ha = (await startHaCluster(cluster)).map((n) => n.url);
    const ha32 = await insertLoad(ha, CONNS, "ha");
    const ha1 = await insertLoad([ha[0]], 1, "ha");
    // dqlite-demo answers 200 "Error: database is locked" to concurrent writers: those count
    // as failures, shown beside the successful writes per second the ratio compares.
    const errs = (r: WrkResult) =>
      r.errors
        ? ` (of ${fmt(r.ops)} answers/s, ${(100 * (1 - r.ok / r.ops)).toFixed(0)}% errors)`
        : "";
    rows.push([
      `3 nodes, replicated HTTP writes, ${CONNS} conns (ok w/s)`,
      `${fmt(ha32.ok)}${errs(ha32)}`,
      `dqlite-demo ${fmt(dq32.ok)}${errs(dq32)}`,
      ratio(ha32.ok, dq32.ok),
    ]);
    rows.push([
      "3 nodes, replicated HTTP writes, 1 conn (ok w/s)",
      `${fmt(ha1.ok)}${errs(ha1)}`,
      `dqlite-demo ${fmt(dq1.ok)}${errs(dq1)}`,
      ratio(ha1.ok, dq1.ok),
    ]);
    rows.push([
      "  latency at 1 conn, p50 / p99 (ms; lower is better)",
      `${fmt(ha1.p50)} / ${fmt(ha1.p99)}`,
      `${fmt(dq1.p50)} / ${fmt(dq1.p99)}`,
      `${ratio(dq1.p50, ha1.p50)} / ${ratio(dq1.p99, ha1.p99)}`,
    ]);
  } finally {
    await cluster.stop();
  }
}

/** Rows: pgbench, ha (sync replication) vs PostgreSQL 15 defaults. */
async function pgbenchRows(dir: string, rows: Row[]): Promise<void> {
  if (!have("pgbench")) {
    return skip(rows, "pgbench", "pgbench (apt-get install postgresql-contrib)");
  }
  const targets: Target[] = [];
  try {
    await Deno.mkdir(`${dir}/ha`);
    await Deno.mkdir(`${dir}/pg`);
    await Deno.chmod(dir, 0o755);
    targets.push(await startHaTarget(`${dir}/ha`, true));
    targets.push(await startPostgres(`${dir}/pg`, false));
    for (const t of targets) await setup(t);
    // Runs alternate between ha and PostgreSQL (the order swapped each round) and the ratio is
    // the median of each pair's: this VM's speed changes within seconds, a single pair can be
    // off by half.
    const tps: Record<string, [number, number, number]> = {};
    for (
      const [script, mode] of [["select", "simple"], ["select", "extended"], [
        "select",
        "prepared",
      ], ["insert", "prepared"]]
    ) {
      const pairs: [number, number][] = [];
      for (let r = 0; r < PG_ROUNDS; r++) {
        const [first, second] = r % 2 === 0 ? [0, 1] : [1, 0];
        const pair: [number, number] = [0, 0];
        pair[first] = await pgbench(targets[first], script, mode);
        pair[second] = await pgbench(targets[second], script, mode);
        pairs.push(pair);
      }
      tps[`${script} ${mode}`] = [
        median(pairs.map((p) => p[0])),
        median(pairs.map((p) => p[1])),
        median(pairs.map((p) => p[0] / p[1])),
      ];
    }
    const sel = ["simple", "extended", "prepared"].map((m) => tps[`select ${m}`]);
    rows.push([
      `pgbench point select, ${CLIENTS} clients, simple / extended / prepared (tps)`,
      sel.map((x) => fmt(x[0])).join(" / "),
      `PostgreSQL 15 ${sel.map((x) => fmt(x[1])).join(" / ")}`,
      sel.map((x) => times(x[2])).join(" / "),
    ]);
    const ins = tps["insert prepared"];
    rows.push([
      `pgbench single-row insert, ${CLIENTS} clients, replication on (tps)`,
      fmt(ins[0]),
      `PostgreSQL 15 ${fmt(ins[1])}`,
      times(ins[2]),
    ]);
  } finally {
    for (const t of targets) await t.stop().catch((e) => console.error(`stop ${t.name}: ${e}`));
  }
}

/** Row: one ha node (no replication) vs the 12-line Deno.serve + node:sqlite server. */
async function singleNode(dir: string, rows: Row[]): Promise<void> {
  if (!have("wrk")) return skip(rows, "HTTP single node", "wrk (apt-get install wrk)");
  const base = await withBaseline(dir, (url) => insertLoad([url], CONNS, "ha"));
  await Deno.mkdir(`${dir}/single`);
  const node = await startHa({
    cwd: `${dir}/single`,
    args: ["-n", "single", "--nats-port", "0", "--pg-port", "0", "--log-level", "warn", "ha.db"],
  });
  try {
    const r = await fetch(node.url, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ sql: MODEL }),
    });
    if (!r.ok) throw new Error(`create table: ${await r.text()}`);
    const ha = await insertLoad([node.url], CONNS, "ha");
    rows.push([
      `1 node, no replication, HTTP writes, ${CONNS} conns (ok w/s)`,
      fmt(ha.ok),
      `Deno.serve+node:sqlite ${fmt(base.ok)}`,
      ratio(ha.ok, base.ok),
    ]);
  } finally {
    await node.stop();
  }
}

/**
 * Row: commit → visible lag at 1000 writes/s on 3 nodes (`lag.ts`) vs issue 13's target, after
 * 2 s of the same load (BENCH_WARMUP): a node in service runs optimized code, and the first
 * writes of fresh nodes, still compiling, would otherwise make most of the p99.
 */
async function lagRow(_dir: string, rows: Row[]): Promise<void> {
  const r = await measureLag(undefined, undefined, Number(Deno.env.get("BENCH_WARMUP") ?? 2));
  rows.push([
    "3 nodes, commit → visible at 1000 w/s, p50 / p99 (ms; lower is better)",
    `${fmt(r.p50)} / ${fmt(r.p99)}`,
    "target 2 / 10",
    `${ratio(2, r.p50)} / ${ratio(10, r.p99)}`,
  ]);
}

/** Row: rows/s a restarted node applies (`catchup.ts`) vs issue 13's target. */
async function catchUpRow(_dir: string, rows: Row[]): Promise<void> {
  const { multi, single } = await measureCatchUp();
  rows.push([
    "catch-up of a restarted node, 1000-row / 1-row transactions (rows/s)",
    `${fmt(multi.rowsPerSec)} / ${fmt(single.rowsPerSec)}`,
    "target 50000",
    `${ratio(multi.rowsPerSec, 50_000)} / ${ratio(single.rowsPerSec, 50_000)}`,
  ]);
}

function skip(rows: Row[], what: string, missing: string): void {
  console.error(`compare: skipping ${what}: ${missing} is not installed`);
  rows.push([what, "skipped", `needs ${missing}`, "—"]);
}

/** Runs every comparison and prints the table. */
export async function main(): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "ha-compare-" });
  await Deno.chmod(dir, 0o755); // PostgreSQL runs as the postgres user below it
  const rows: Row[] = [];
  const sections: [string, (dir: string, rows: Row[]) => Promise<void>][] = [
    ["replicated HTTP writes", replicatedWrites],
    ["pgbench", pgbenchRows],
    ["HTTP single node", singleNode],
    ["replication lag", lagRow],
    ["catch-up", catchUpRow],
    ["1 node vs node:sqlite ceiling", singleVsCeiling],
    ["footprint", footprintRows],
  ];
  try {
    for (const [i, [what, run]] of sections.entries()) {
      if (ONLY && !ONLY.some((o) => what.includes(o))) continue;
      await Deno.mkdir(`${dir}/${i}`);
      await run(`${dir}/${i}`, rows).catch((e) => {
        console.error(`compare: ${what} failed: ${(e as Error).message}`);
        rows.push([what, "failed", (e as Error).message.split("\n")[0].slice(0, 60), "—"]);
      });
      await stopChildren();
    }
  } finally {
    await stopChildren();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
  const cpu = (await Deno.readTextFile("/proc/cpuinfo").catch(() => ""))
    .match(/model name\s*:\s*(.*)/)?.[1] ?? Deno.build.arch;
  console.log(
    `\nha vs anchors, one run (${SECONDS}s per measurement; ${navigator.hardwareConcurrency} ` +
      `CPUs, ${cpu}; higher ratio is better for ha)`,
  );
  table(["measure", "ha", "anchor", "ratio"], rows);
}

if (import.meta.main) await main();
