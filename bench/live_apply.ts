/**
 * CPU of a replica per live-applied remote changeset (issue 13): node1 (file database, embedded
 * nats-server, synchronous replication) takes single-row HTTP INSERTs at a fixed rate (open loop,
 * raw keep-alive client, at most 32 in flight); node2 and node3 only replicate. Over the load
 * window each replica's CPU is read by thread from `/proc` (main thread, writer worker, V8 helper
 * threads, …) and divided by the remote changesets it applied (`ha_replication_applied_total`),
 * with its commit → visible lag (p50 / p99 of its `ha_replication_lag_seconds` histogram) and
 * nats-server's CPU per changeset (a child of node1).
 *
 * A/B in one run: with BENCH_BASELINE=<checkout>, one replica runs that checkout's `main.ts`
 * (node3 in odd rounds, node2 in even ones), the other this one's; both receive the same stream
 * at the same time on the same loaded machine.
 *
 * Env: BENCH_RATES (comma list, default "200,500,1000"), BENCH_SECONDS (4), BENCH_ROUNDS (1),
 * BENCH_WARMUP (2 s of load before each measured window), BENCH_BASELINE, PROF_DIR (replicas
 * under `--cpu-prof`, profiles in dir/<node>; summarise with `bench/profile_summary.ts`),
 * BENCH_THREADS=1 (system time and sleeps too), BENCH_V8_FLAGS (this checkout's replicas only),
 * BENCH_NATS_LOGS=1 and BENCH_LOG_LEVEL (node logs, kept with HA_IT_KEEP=1).
 *
 * Run: `deno task bench live-apply`.
 * @module
 */
import { Cluster, type HaNode, waitFor } from "../tests/integration/helpers/cluster.ts";
import { RawHttpPool } from "./raw_http.ts";
import { bucketQuantile } from "./stats.ts";

const RATES = (Deno.env.get("BENCH_RATES") ?? "200,500,1000").split(",").map(Number);
const SECONDS = Number(Deno.env.get("BENCH_SECONDS") ?? 4);
const ROUNDS = Number(Deno.env.get("BENCH_ROUNDS") ?? 1);
const WARMUP = Number(Deno.env.get("BENCH_WARMUP") ?? 2);
const BASELINE = Deno.env.get("BENCH_BASELINE");
const PROF = Deno.env.get("PROF_DIR");
/** BENCH_THREADS=1: every thread name of a replica on its own (else grouped). */
const THREADS = Deno.env.get("BENCH_THREADS") === "1";
/** BENCH_V8_FLAGS: V8 flags of the replica(s) running this checkout (not the baseline's). */
const V8_FLAGS = Deno.env.get("BENCH_V8_FLAGS");
/** BENCH_NATS_LOGS=1: node1 forwards nats-server's log lines into its own. */
const NATS_LOGS = Deno.env.get("BENCH_NATS_LOGS") === "1" ? ["--nats-logs"] : [];
/** Requests in flight on node1 at most. */
const CONNS = 32;

/** Node metrics: remote changesets applied, and the lag histogram's cumulative buckets. */
async function scrape(n: HaNode): Promise<{ applied: number; lag: Map<number, number> }> {
  const text = await (await fetch(`${n.url}/metrics`)).text();
  let applied = 0;
  for (const m of text.matchAll(/^ha_replication_applied_total\{[^}]*\} (\S+)$/gm)) {
    applied += Number(m[1]);
  }
  const lag = new Map<number, number>();
  for (const m of text.matchAll(/^ha_replication_lag_seconds_bucket\{.*le="([^"]+)"\} (\S+)$/gm)) {
    const le = m[1] === "+Inf" ? Infinity : Number(m[1]);
    lag.set(le, (lag.get(le) ?? 0) + Number(m[2]));
  }
  return { applied, lag };
}

/** The q-quantile (ms) of the difference of two cumulative histograms. */
function quantile(a: Map<number, number>, b: Map<number, number>, q: number): number {
  const cum = [...b].map(([le, c]) => [le, c - (a.get(le) ?? 0)] as [number, number])
    .sort((x, y) => x[0] - y[0]);
  return bucketQuantile(cum, q);
}

/**
 * CPU ms (user + system) per process and thread of `pids` and their children (nats-server), keyed
 * `<node> <thread name>` with the names' digits kept (`worker-1`: the writer, opened first).
 */
function cpuByThread(pids: number[]): Map<string, number> {
  const out = new Map<string, number>();
  const visit = (pid: number, label: string) => {
    try {
      for (const t of Deno.readDirSync(`/proc/${pid}/task`)) {
        const dir = `/proc/${pid}/task/${t.name}`;
        const stat = Deno.readTextFileSync(`${dir}/stat`);
        const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
        const key = `${label} ${Deno.readTextFileSync(`${dir}/comm`).trim()}`;
        out.set(key, (out.get(key) ?? 0) + (Number(f[11]) + Number(f[12])) * 10);
        // BENCH_THREADS=1: also the kernel's share (system time) of each thread.
        if (THREADS) {
          out.set(`${key}:sys`, (out.get(`${key}:sys`) ?? 0) + Number(f[12]) * 10);
          // Sleeps (voluntary context switches): each one is a wake-up later.
          const st = Deno.readTextFileSync(`${dir}/status`);
          const cs = Number(/voluntary_ctxt_switches:\s+(\d+)/.exec(st)?.[1] ?? 0);
          out.set(`${key}:wakes`, (out.get(`${key}:wakes`) ?? 0) + cs);
        }
        const kids = Deno.readTextFileSync(`${dir}/children`).trim();
        for (const k of kids ? kids.split(" ") : []) visit(Number(k), "nats");
      }
    } catch { /* exited */ }
  };
  pids.forEach((p, i) => visit(p, `node${i + 1}`));
  return out;
}

/** Thread groups printed per replica (by `/proc` comm name). */
function group(comm: string): string {
  if (comm.endsWith(":sys")) return `${group(comm.slice(0, -4))}:sys`;
  if (comm.endsWith(":wakes")) return `${group(comm.slice(0, -6))}:wakes`;
  if (comm === "deno" || comm === "main") return "main";
  if (/^V8|^v8/i.test(comm)) return "v8";
  if (comm === "worker-1") return "writer";
  if (/^worker-/.test(comm)) return "workers";
  return THREADS ? comm : "other";
}

function uptime(): string {
  return Deno.readTextFileSync("/proc/loadavg").split(" ").slice(0, 3).join(" ");
}

/** Sends `count` single-row INSERTs to `pool` at `rate`/s from id `first`; awaits all answers. */
async function drive(pool: RawHttpPool, first: number, count: number, rate: number) {
  let free = CONNS, errors = 0;
  const waiting: (() => void)[] = [];
  const inflight: Promise<void>[] = [];
  const write = async (i: number) => {
    if (free === 0) await new Promise<void>((r) => waiting.push(r));
    else free--;
    const body = JSON.stringify({
      sql: "INSERT INTO t(id, v) VALUES (?, ?)",
      params: [i, `v${i}`],
    });
    const r = await pool.postJson("/query", body).catch(() => null);
    const next = waiting.shift();
    if (next) next();
    else free++;
    if (r?.status !== 200) errors++;
  };
  const t0 = performance.now();
  for (let i = 0; i < count; i++) {
    const wait = t0 + i * 1000 / rate - performance.now();
    if (wait > 1) await new Promise((r) => setTimeout(r, wait));
    inflight.push(write(first + i));
  }
  await Promise.all(inflight);
  return { errors, secs: (performance.now() - t0) / 1000 };
}

/** One round: a fresh cluster, each rate in turn; prints a line per replica and rate. */
async function round(k: number): Promise<void> {
  const cluster = new Cluster();
  try {
    const baseOn = BASELINE ? (k % 2 === 1 ? "node3" : "node2") : null;
    const start = (name: string, natsUrl?: string) =>
      cluster.start(name, {
        memory: false,
        embeddedNats: !natsUrl,
        natsUrl,
        dsns: [`${cluster.root}/${name}/bench.db`],
        args: [
          "--log-level",
          Deno.env.get("BENCH_LOG_LEVEL") ?? "warn",
          ...(natsUrl ? [] : NATS_LOGS),
        ],
        denoFlags: [
          ...(PROF && natsUrl ? ["--cpu-prof", `--cpu-prof-dir=${PROF}/${name}`] : []),
          ...(V8_FLAGS && natsUrl && name !== baseOn ? [`--v8-flags=${V8_FLAGS}`] : []),
        ],
        checkout: name === baseOn ? BASELINE : undefined,
      });
    const n1 = await start("node1");
    const ns = [n1, await start("node2", n1.natsUrl!), await start("node3", n1.natsUrl!)];
    const label = (i: number) =>
      `${ns[i].name}${baseOn ? (ns[i].name === baseOn ? " (baseline)" : " (this)") : ""}`;
    await n1.sql("CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)");
    await waitFor("table t everywhere", async () => {
      for (const n of ns) if ((await n.checksum("t")) === "missing") return false;
      return true;
    });
    const pool = new RawHttpPool("127.0.0.1", n1.port);
    let next = 0;
    for (const rate of RATES) {
      const warm = Math.round(WARMUP * rate);
      if (warm > 0) await drive(pool, next, warm, rate);
      next += warm;
      const m0 = await Promise.all(ns.map(scrape));
      const c0 = cpuByThread(ns.map((n) => n.pid));
      const count = Math.round(SECONDS * rate);
      const { errors, secs } = await drive(pool, next, count, rate);
      next += count;
      // Wait until the replicas applied the window's writes, then read CPU and metrics.
      await waitFor("replicas caught up", async () => {
        for (const n of ns.slice(1)) {
          const c = Number((await n.sql("SELECT count(*) FROM t")).rows[0][0]);
          if (c !== next - errors) return false;
        }
        return true;
      }, 120_000).catch(() => {});
      const c1 = cpuByThread(ns.map((n) => n.pid));
      const m1 = await Promise.all(ns.map(scrape));
      const load = uptime();
      for (let i = 1; i < ns.length; i++) {
        const applied = m1[i].applied - m0[i].applied;
        const byGroup = new Map<string, number>();
        let all = 0;
        for (const [key, v] of c1) {
          const [proc, comm] = [key.split(" ")[0], key.slice(key.indexOf(" ") + 1)];
          if (proc !== `node${i + 1}`) continue;
          const d = v - (c0.get(key) ?? 0);
          const g = group(comm);
          byGroup.set(g, (byGroup.get(g) ?? 0) + d);
          if (!g.endsWith(":sys") && !g.endsWith(":wakes")) all += d;
        }
        const us = (ms: number) => (ms / Math.max(1, applied) * 1000).toFixed(0);
        // Wake-ups per changeset are printed as-is (×1000 undone).
        for (const [g, v] of byGroup) if (g.endsWith(":wakes")) byGroup.set(g, v / 1000);
        console.log(
          `round ${k} rate ${rate} ${label(i)}: applied ${applied} (${
            (count / Math.max(1, applied)).toFixed(2)
          } writes each), µs CPU per changeset: all ${us(all)}, ` +
            [...byGroup].sort((a, b) => b[1] - a[1]).map(([g, v]) =>
              g.endsWith(":wakes")
                ? `${g} ${(v * 1000 / Math.max(1, applied)).toFixed(2)}`
                : `${g} ${us(v)}`
            ).join(", ") +
            `; lag p50 ${quantile(m0[i].lag, m1[i].lag, 0.5).toFixed(1)} p99 ${
              quantile(m0[i].lag, m1[i].lag, 0.99).toFixed(1)
            } ms`,
        );
      }
      let nats = 0, origin = 0;
      for (const [key, v] of c1) {
        if (key.startsWith("nats ") && !/:(sys|wakes)$/.test(key)) nats += v - (c0.get(key) ?? 0);
        else if (key.startsWith("node1 ") && !key.endsWith(":sys")) {
          origin += v - (c0.get(key) ?? 0);
        }
      }
      const applied2 = m1[1].applied - m0[1].applied;
      console.log(
        `round ${k} rate ${rate}: sent ${(count / secs).toFixed(0)}/s, errors ${errors}, ` +
          `origin node1 ${(origin / count * 1000).toFixed(0)} µs/write, nats-server ${
            (nats / Math.max(1, applied2) * 1000).toFixed(0)
          } µs/changeset; load ${load}`,
      );
    }
    pool.close();
  } finally {
    await cluster.stop(); // SIGTERM first: --cpu-prof writes its profiles on exit
  }
}

/** Runs BENCH_ROUNDS rounds. */
export async function main(): Promise<void> {
  for (let k = 1; k <= ROUNDS; k++) await round(k);
}

if (import.meta.main) await main();
