/**
 * Replication lag at a fixed write rate (issue 13): three nodes (file databases, synchronous
 * replication), an open-loop client sending single-row HTTP INSERTs at RATE writes/s spread
 * round-robin over the nodes for SECONDS (each write is due on schedule whether or not the
 * earlier ones were answered, so a slow node cannot slow the load down; at most 32 requests are
 * in flight per node, within its connection cap, a write due meanwhile waits for one).
 *
 * What is measured, per applied remote changeset on each node, is **commit → visible**: from the
 * changeset's hybrid logical clock (stamped by its origin's writer just before COMMIT; wall time,
 * ms resolution) to the COMMIT of the transaction that applied it on the other node (wall time
 * taken in that node's writer right after COMMIT, ms resolution; all nodes share this machine's
 * clock). No polling is involved: every node puts each lag into its `ha_replication_lag_seconds`
 * histogram, which is scraped before and after the load; the difference holds exactly the
 * changesets of the load. Percentiles are interpolated inside the histogram's buckets (0.5 ms
 * wide up to 2 ms); "max" is the upper bound of the highest non-empty bucket. With group commit
 * one changeset may carry several writes: their lag is their changeset's. Also printed: the
 * client's write latency (from when the write was due → 200, i.e. JetStream stored it).
 *
 * Run: `deno task bench lag`. Env: BENCH_SECONDS (default 5), BENCH_RATE (default 1000);
 * BENCH_WARMUP (default 0): seconds of the same load first, not measured (fresh nodes run their
 * first writes unoptimized); BENCH_THREADS=1: also print CPU during the load by process and
 * thread (the nodes, nats-server,
 * this bench's own client), the whole machine's busy share (`/proc/stat`), and CPU per write.
 * @module
 */
import { Cluster, type HaNode, waitFor } from "../tests/integration/helpers/cluster.ts";
import { bucketQuantile, percentile, table } from "./stats.ts";
import { cpuByThread } from "./repl_writes.ts";
import { RawHttpPool } from "./raw_http.ts";

const SECONDS = Number(Deno.env.get("BENCH_SECONDS") ?? 5);
const RATE = Number(Deno.env.get("BENCH_RATE") ?? 1000);
/** Requests in flight per node at most. */
const CONNS = 32;
/**
 * BENCH_CLIENT=fetch: the writes go through `fetch` (as before 2026-12) instead of the raw
 * keep-alive client (`raw_http.ts`), which costs the machine a fraction of the CPU per write.
 */
const FETCH = Deno.env.get("BENCH_CLIENT") === "fetch";
/** BENCH_WARMUP: seconds of load at RATE before the measured SECONDS (default 0). */
const WARMUP = Number(Deno.env.get("BENCH_WARMUP") ?? 0);
/** BENCH_THREADS=1: CPU during the load by process and thread. */
const THREADS = Deno.env.get("BENCH_THREADS") === "1";

/** Busy and total jiffies of the whole machine (`/proc/stat`'s cpu line). */
function machineJiffies(): { busy: number; total: number } {
  const f = Deno.readTextFileSync("/proc/stat").split("\n")[0].trim().split(/\s+/).slice(1)
    .map(Number);
  const total = f.reduce((a, b) => a + b, 0);
  return { busy: total - f[3] - f[4], total }; // idle, iowait
}

/** CPU ms of this process's own threads (the load client), by thread name. */
function ownCpu(): Map<string, number> {
  const out = new Map<string, number>();
  for (const t of Deno.readDirSync(`/proc/${Deno.pid}/task`)) {
    try {
      const dir = `/proc/${Deno.pid}/task/${t.name}`;
      const stat = Deno.readTextFileSync(`${dir}/stat`);
      const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      const key = `client ${Deno.readTextFileSync(`${dir}/comm`).trim().replace(/[0-9]+$/, "")}`;
      out.set(key, (out.get(key) ?? 0) + (Number(f[11]) + Number(f[12])) * 10);
    } catch { /* exited */ }
  }
  return out;
}

/** Cumulative counts of the lag histogram by bucket bound (s), summed over origins. */
async function lagBuckets(n: HaNode): Promise<Map<number, number>> {
  const text = await (await fetch(`${n.url}/metrics`)).text();
  const out = new Map<number, number>();
  for (const m of text.matchAll(/^ha_replication_lag_seconds_bucket\{.*le="([^"]+)"\} (\S+)$/gm)) {
    const le = m[1] === "+Inf" ? Infinity : Number(m[1]);
    out.set(le, (out.get(le) ?? 0) + Number(m[2]));
  }
  return out;
}

/** What {@link measureLag} found. */
export interface LagResult {
  /** Writes per second actually sent, and answered 200 per second. */
  sent: number;
  ok: number;
  errors: number;
  /** Remote changesets applied over all nodes during the load. */
  applied: number;
  /** Commit → visible on another node, ms. */
  p50: number;
  p99: number;
  /** Upper bound of the highest non-empty bucket, ms. */
  max: number;
  /** Client latency, request sent → 200, ms. */
  writeP50: number;
  writeP99: number;
}

/**
 * Starts 3 nodes, drives them at RATE writes/s for SECONDS (after `warmupSeconds` of the same
 * load, not measured), returns the lag figures.
 */
export async function measureLag(
  seconds = SECONDS,
  rate = RATE,
  warmupSeconds = WARMUP,
): Promise<LagResult> {
  const cluster = new Cluster();
  try {
    const start = (name: string, natsUrl?: string) =>
      cluster.start(name, {
        memory: false,
        embeddedNats: !natsUrl,
        natsUrl,
        dsns: [`${cluster.root}/${name}/bench.db`],
        args: ["--log-level", "warn"],
      });
    const n1 = await start("node1");
    const ns = [n1, await start("node2", n1.natsUrl!), await start("node3", n1.natsUrl!)];
    await n1.sql("CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)");
    await waitFor("table t everywhere", async () => {
      for (const n of ns) if ((await n.checksum("t")) === "missing") return false;
      return true;
    });
    let latencies: number[] = [];
    let errors = 0;
    const errorKinds = new Set<string>();
    const inflight: Promise<void>[] = [];
    // At most CONNS requests in flight per node (its connection cap must not refuse them): a
    // write waits for a free connection, its latency counted from when it was due.
    const free = ns.map(() => CONNS);
    const waiting: (() => void)[][] = ns.map(() => []);
    const pools = ns.map((n) => new RawHttpPool("127.0.0.1", n.port));
    const post = async (k: number, body: string) => {
      if (!FETCH) return await pools[k].postJson("/query", body);
      const r = await fetch(`${ns[k].url}/query`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body,
      });
      return { status: r.status, body: await r.text() };
    };
    const write = async (i: number, due: number) => {
      const k = i % ns.length;
      if (free[k] === 0) await new Promise<void>((r) => waiting[k].push(r));
      else free[k]--;
      const sql = { sql: "INSERT INTO t(id, v) VALUES (?, ?)", params: [i, `v${i}`] };
      const r = await post(k, JSON.stringify(sql)).catch((e) => {
        errorKinds.add(String(e));
        return null;
      });
      const body = r?.body;
      const next = waiting[k].shift();
      if (next) next();
      else free[k]++;
      if (r?.status === 200) latencies.push(performance.now() - due);
      else {
        errors++;
        if (r) errorKinds.add(`${r.status} ${body?.slice(0, 200)}`);
      }
    };
    /** Sends `count` writes from id `first` on schedule; resolves once all are answered. */
    const drive = async (first: number, count: number) => {
      const t0 = performance.now();
      for (let i = 0; i < count; i++) {
        const due = t0 + i * 1000 / rate;
        const wait = due - performance.now();
        if (wait > 1) await new Promise((r) => setTimeout(r, wait));
        inflight.push(write(first + i, due));
      }
      const sent = (performance.now() - t0) / 1000;
      await Promise.all(inflight.splice(0));
      return { sentSecs: sent, okSecs: (performance.now() - t0) / 1000 };
    };
    // Warm-up (BENCH_WARMUP s, not measured): fresh nodes run their first writes on code not
    // yet optimized, with V8 compiling on its helper threads.
    const warm = Math.round(warmupSeconds * rate);
    let done = 0;
    if (warm > 0) {
      await drive(1_000_000_000, warm);
      done = latencies.length;
      await waitFor("warm-up writes on every node", async () => {
        for (const n of ns) {
          if (Number((await n.sql("SELECT count(*) FROM t")).rows[0][0]) !== done) return false;
        }
        return true;
      }, 120_000);
      latencies = [];
      errors = 0;
    }
    const before = await Promise.all(ns.map(lagBuckets));
    const cpu0 = THREADS
      ? [cpuByThread(ns.map((n) => n.pid)), ownCpu(), machineJiffies()] as const
      : null;
    const total = Math.round(seconds * rate);
    const { sentSecs, okSecs } = await drive(0, total);
    for (const p of pools) p.close();
    if (cpu0) {
      printCpu(
        cpu0,
        [cpuByThread(ns.map((n) => n.pid)), ownCpu(), machineJiffies()],
        latencies.length,
        okSecs,
      );
    }
    if (errors) console.error(`lag: ${errors} writes failed:`, [...errorKinds].slice(0, 5));
    await waitFor("every write on every node", async () => {
      for (const n of ns) {
        const c = Number((await n.sql("SELECT count(*) FROM t")).rows[0][0]);
        if (c !== done + latencies.length) return false;
      }
      return true;
    }, 120_000);
    const after = await Promise.all(ns.map(lagBuckets));
    const diff = new Map<number, number>();
    ns.forEach((_, k) => {
      for (const [le, c] of after[k]) {
        diff.set(le, (diff.get(le) ?? 0) + c - (before[k].get(le) ?? 0));
      }
    });
    const cum = [...diff].sort((a, b) => a[0] - b[0]);
    const applied = cum[cum.length - 1][1];
    let max = 0;
    for (let i = cum.length - 1; i >= 0; i--) {
      if (cum[i][1] > (i > 0 ? cum[i - 1][1] : 0)) {
        max = cum[i][0] * 1000;
        break;
      }
    }
    latencies.sort((a, b) => a - b);
    return {
      sent: total / sentSecs,
      ok: latencies.length / okSecs,
      errors,
      applied,
      p50: bucketQuantile(cum, 0.5),
      p99: bucketQuantile(cum, 0.99),
      max,
      writeP50: percentile(latencies, 0.5),
      writeP99: percentile(latencies, 0.99),
    };
  } finally {
    await cluster.stop();
  }
}

type CpuSnap = readonly [Map<string, number>, Map<string, number>, { busy: number; total: number }];

/** Prints CPU by process and thread between two snapshots (BENCH_THREADS=1). */
function printCpu(a: CpuSnap, b: CpuSnap, writes: number, secs: number): void {
  const rows = new Map<string, number>();
  for (const i of [0, 1] as const) {
    for (const [k, v] of b[i]) rows.set(k, v - (a[i].get(k) ?? 0));
  }
  const busy = (b[2].busy - a[2].busy) / (b[2].total - a[2].total);
  const byProc = new Map<string, number>();
  for (const [k, v] of rows) {
    const p = k.split(" ")[0];
    byProc.set(p, (byProc.get(p) ?? 0) + v);
  }
  const all = [...rows.values()].reduce((x, y) => x + y, 0);
  console.log(
    `cpu: machine ${(busy * 100).toFixed(0)} % busy over ${secs.toFixed(1)} s; ` +
      `${(all / writes * 1000).toFixed(0)} µs per write (all listed); by process: ` +
      [...byProc].map(([k, v]) => `${k} ${(v / secs / 10).toFixed(0)} %`).join(", "),
  );
  for (const [k, v] of [...rows].filter(([, v]) => v > 0).sort((x, y) => y[1] - x[1])) {
    console.log(`  ${k.padEnd(32)} ${v} ms  ${(v / writes * 1000).toFixed(0)} µs/write`);
  }
}

/** Runs the measurement and prints it. */
export async function main(): Promise<void> {
  const r = await measureLag();
  console.log(
    `\nCommit → visible on the other nodes, 3 nodes, sync, ${RATE} writes/s open loop for ` +
      `${SECONDS}s (sent ${r.sent.toFixed(0)}/s, ${r.errors} errors)`,
  );
  table(
    ["applied", "lag p50 ms", "lag p99 ms", "lag max ms ≤", "write p50 ms", "write p99 ms"],
    [[r.applied, r.p50, r.p99, r.max, r.writeP50, r.writeP99]],
  );
}

if (import.meta.main) await main();
