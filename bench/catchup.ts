/**
 * Catch-up speed (issue 13): how fast a node that was down applies what it missed. Two nodes
 * (file databases, synchronous replication, node1 runs the NATS server); node2 is stopped, node1
 * writes, node2 is started again and its row count polled every 50 ms until it has every row.
 * Measured: rows applied per second from node2's first applied row to its last (process start-up
 * excluded), the same in changesets per second, and rows per second of CPU node2 used meanwhile
 * (on a shared machine wall time swings with the other load; CPU time much less), and per
 * second of CPU of node2's main thread alone ("main": the NATS client and the batches sent to
 * the writer).
 *
 * Two loads: BENCH_ROWS rows (default 200,000) in transactions of 1,000 rows (one changeset
 * each), and BENCH_SINGLE single-row INSERTs (default 20,000), sent one at a time per
 * connection over 4 connections (group commit may merge concurrent ones: the number of
 * changesets is printed).
 *
 * Run: `deno task bench catchup`. Env: BENCH_ROWS, BENCH_SINGLE, PROF_DIR, BENCH_THREADS,
 * BENCH_REPEAT, BENCH_BASELINE, BENCH_V8_FLAGS.
 * @module
 */
import { Cluster, type HaNode, waitFor } from "../tests/integration/helpers/cluster.ts";
import { table } from "./stats.ts";

const ROWS = Number(Deno.env.get("BENCH_ROWS") ?? 200_000);
const SINGLE = Number(Deno.env.get("BENCH_SINGLE") ?? 20_000);
const PER_TX = 1_000;
const CONNS = 4;
/** PROF_DIR=dir: node2's restarted process runs under `--cpu-prof` (profiles in dir/<load>). */
const PROF = Deno.env.get("PROF_DIR");
/** BENCH_THREADS=1: also print node2's CPU during the catch-up by thread name. */
const THREADS = Deno.env.get("BENCH_THREADS") === "1";
/**
 * BENCH_REPEAT=n: after the load, node2 catches up n times from the same saved state (its
 * directory copied before the first restart), printing CPU per row by thread each time.
 */
const REPEAT = Number(Deno.env.get("BENCH_REPEAT") ?? 0);
/**
 * BENCH_BASELINE=/path/to/another/checkout (with BENCH_REPEAT): each round restarts node2 with
 * that checkout's code first, then this one's (A/B on the same load and the same node1).
 */
const BASELINE = Deno.env.get("BENCH_BASELINE");
/** BENCH_V8_FLAGS (with BENCH_REPEAT): `--v8-flags` for this checkout's node2 only. */
const V8_FLAGS = Deno.env.get("BENCH_V8_FLAGS");

/** What one catch-up measured. */
export interface CatchUp {
  rows: number;
  changesets: number;
  seconds: number;
  rowsPerSec: number;
  changesetsPerSec: number;
  /** Rows per second of CPU node2's process used meanwhile (steadier on a busy machine). */
  rowsPerCpuSec: number;
  /** The same for node2's main thread alone (NATS client, batches to the writer). */
  rowsPerMainCpuSec: number;
  /** Rows applied between the first and the last poll (the figures' rows). */
  applied: number;
  /** node2's CPU-s meanwhile by thread name (with BENCH_THREADS=1 or BENCH_REPEAT). */
  threads?: (readonly [string, number])[];
}

function profFlags(name: string): string[] {
  return PROF ? ["--cpu-prof", `--cpu-prof-dir=${PROF}/${name}`] : [];
}

async function copyDir(from: string, to: string): Promise<void> {
  const r = await new Deno.Command("cp", { args: ["-a", from, to] }).output();
  if (!r.success) throw new Error(`cp ${from} ${to}: ${new TextDecoder().decode(r.stderr)}`);
}

/** Times node2's catch-up (just started) until it has `rows` rows. */
async function measure(
  n2: HaNode,
  kind: string,
  rows: number,
  changesets: number,
): Promise<CatchUp> {
  let first = 0, last = 0, cpuFirst = 0, cpuLast = 0, mainFirst = 0, mainLast = 0;
  // Rows already there at the first poll that saw any: the figures are of the rows applied
  // between the first and the last poll (a late first poll would otherwise inflate them).
  let atFirst = 0;
  let threadsFirst = new Map<string, number>(), threadsLast = new Map<string, number>();
  await waitFor("node2 caught up", async () => {
    const c = await count(n2);
    const now = performance.now();
    const cpu = () => [cpuSeconds(n2.pid), cpuSeconds(n2.pid, n2.pid)];
    if (c > 0 && first === 0) {
      [first, cpuFirst, mainFirst] = [now, ...cpu()];
      atFirst = c;
      threadsFirst = cpuByThread(n2.pid);
    }
    if (c === rows) {
      [last, cpuLast, mainLast] = [now, ...cpu()];
      threadsLast = cpuByThread(n2.pid);
    }
    return c === rows;
  }, 600_000);
  const seconds = (last - first) / 1000;
  const applied = rows - atFirst;
  // node2's CPU-s during the catch-up by thread name (BENCH_THREADS=1)
  const threads = [...threadsLast].map(([k, v]) => [k, v - (threadsFirst.get(k) ?? 0)] as const)
    .filter(([, v]) => v > 0).sort((a, b) => b[1] - a[1]);
  if (THREADS) {
    console.log(
      `node2 CPU-s by thread (${kind}), ${applied} rows from the first poll: ` +
        JSON.stringify(threads),
    );
  }
  return {
    rows,
    changesets,
    seconds,
    rowsPerSec: applied / seconds,
    changesetsPerSec: (changesets * applied / rows) / seconds,
    rowsPerCpuSec: applied / (cpuLast - cpuFirst),
    rowsPerMainCpuSec: applied / (mainLast - mainFirst),
    applied,
    threads,
  };
}

/** CPU seconds (user + system, all threads) a process used so far (Linux `/proc`). */
function cpuSeconds(pid: number, tid?: number): number {
  const stat = Deno.readTextFileSync(tid ? `/proc/${pid}/task/${tid}/stat` : `/proc/${pid}/stat`);
  const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(f[11]) + Number(f[12])) / 100; // utime, stime in clock ticks (USER_HZ 100)
}

/** CPU seconds per thread name of a process so far (`/proc/<pid>/task/<tid>/comm`). */
function cpuByThread(pid: number): Map<string, number> {
  const out = new Map<string, number>();
  for (const t of Deno.readDirSync(`/proc/${pid}/task`)) {
    try {
      // Deno workers one by one (worker-N: the writer, the readers), V8's helpers together.
      const comm = Deno.readTextFileSync(`/proc/${pid}/task/${t.name}/comm`).trim();
      const name = comm.startsWith("worker-") ? comm : comm.replace(/\d+$/, "");
      out.set(name, (out.get(name) ?? 0) + cpuSeconds(pid, Number(t.name)));
    } catch {
      // the thread ended meanwhile
    }
  }
  return out;
}

async function count(n: HaNode): Promise<number> {
  return Number((await n.sql("SELECT count(*) FROM t")).rows[0][0]);
}

/** Stops node2, runs `load` on node1, restarts node2 and times its catch-up. */
async function catchUp(kind: "multi" | "single", rows: number): Promise<CatchUp> {
  const cluster = new Cluster();
  try {
    const start = (
      name: string,
      o: { natsUrl?: string; reuse?: HaNode; denoFlags?: string[]; checkout?: string } = {},
    ) =>
      cluster.start(name, {
        memory: false,
        embeddedNats: !o.natsUrl,
        dsns: [`${cluster.root}/${name}/bench.db`],
        args: ["--log-level", "warn"],
        ...o,
      });
    const n1 = await start("node1");
    let n2 = await start("node2", { natsUrl: n1.natsUrl! });
    await n1.sql("CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)");
    await waitFor("table t on node2", async () => (await n2.checksum("t")) !== "missing");
    await cluster.kill(n2);
    const seqBefore = await streamSeq(n1);
    if (kind === "multi") {
      for (let at = 0; at < rows; at += PER_TX) {
        await n1.sql(
          `WITH RECURSIVE c(x) AS (SELECT ? UNION ALL SELECT x + 1 FROM c WHERE x < ?)
           INSERT INTO t(id, v) SELECT x, 'value ' || x FROM c`,
          [at + 1, Math.min(rows, at + PER_TX)],
        );
      }
    } else {
      let next = 0;
      await Promise.all(Array.from({ length: CONNS }, async () => {
        while (next < rows) {
          const id = ++next;
          await n1.sql("INSERT INTO t(id, v) VALUES (?, ?)", [id, `value ${id}`]);
        }
      }));
    }
    const changesets = (await streamSeq(n1)) - seqBefore;
    if (REPEAT === 0) {
      n2 = await start("node2", { natsUrl: n1.natsUrl!, reuse: n2, denoFlags: profFlags(kind) });
      return await measure(n2, kind, rows, changesets);
    }
    // BENCH_REPEAT: node2 catches up from the same stopped state again and again (its directory
    // saved once), alternating the baseline checkout's code with this one's when given.
    const saved = `${cluster.root}/node2-saved`;
    await copyDir(n2.dir, saved);
    const variants: [string, string | undefined][] = BASELINE
      ? [["baseline", BASELINE], ["this", undefined]]
      : [["this", undefined]];
    let out: CatchUp | undefined;
    for (let r = 0; r < REPEAT; r++) {
      for (const [name, checkout] of variants) {
        await Deno.remove(n2.dir, { recursive: true });
        await copyDir(saved, n2.dir);
        n2 = await start("node2", {
          natsUrl: n1.natsUrl!,
          reuse: n2,
          denoFlags: [
            ...profFlags(`${kind}-${name}-${r}`),
            ...(V8_FLAGS && !checkout ? [`--v8-flags=${V8_FLAGS}`] : []),
          ],
          checkout,
        });
        const c = await measure(n2, kind, rows, changesets);
        await cluster.kill(n2);
        const cpu = (c.threads ?? []).map(([t, v]) => `${t} ${(v * 1e6 / c.applied).toFixed(1)}`);
        console.log(
          `${kind} round ${r} ${name}: ${Math.round(c.rowsPerSec)} rows/s, ` +
            `${(1e6 / c.rowsPerCpuSec).toFixed(1)} µs CPU per row (${cpu.join(", ")})`,
        );
        if (name === "this") out = c;
      }
    }
    return out!;
  } finally {
    await cluster.stop();
  }
}

/** Changesets node1 published so far. */
async function streamSeq(n: HaNode): Promise<number> {
  const r = await n.get("/replications");
  const body = r.body as { status: { publisher: { published: number } }[] };
  return Number(body.status[0].publisher.published);
}

/** Both catch-ups. */
export async function measureCatchUp(): Promise<{ multi: CatchUp; single: CatchUp }> {
  return { multi: await catchUp("multi", ROWS), single: await catchUp("single", SINGLE) };
}

/** Runs both loads and prints them (BENCH_ROWS=0 or BENCH_SINGLE=0 leaves that load out). */
export async function main(): Promise<void> {
  const multi = ROWS > 0 ? await catchUp("multi", ROWS) : undefined;
  const single = SINGLE > 0 ? await catchUp("single", SINGLE) : undefined;
  console.log("\nCatch-up of a node that was down (2 nodes, file databases, sync replication)");
  table(
    ["load", "rows", "changesets", "seconds", "rows/s", "changesets/s", "rows/CPU-s", "main"],
    [
      ...(multi ? [[`${PER_TX}-row transactions`, ...figures(multi)]] : []),
      ...(single ? [["single-row INSERTs", ...figures(single)]] : []),
    ],
  );
}

function figures(c: CatchUp): (string | number)[] {
  return [
    c.rows,
    c.changesets,
    c.seconds,
    c.rowsPerSec,
    c.changesetsPerSec,
    c.rowsPerCpuSec,
    c.rowsPerMainCpuSec,
  ];
}

if (import.meta.main) await main();
