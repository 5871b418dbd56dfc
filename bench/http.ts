/**
 * HTTP single-row INSERT and point SELECT on one node (file database, WAL),
 * at several concurrency levels, beside the same operations done in-process
 * on node:sqlite (the ceiling). Prints ops/s, p50/p99 latency and ratios.
 *
 * Run: `deno task bench http` (or `deno run -A --unstable-worker-options bench/http.ts`).
 */
import { DatabaseSync } from "node:sqlite";
import { startHa } from "../tests/integration/helpers/ha.ts";
import { load, table } from "./stats.ts";

const SECONDS = Number(Deno.env.get("BENCH_SECONDS") ?? 3);
const LEVELS = [1, 4, 16, 64];

/** In-process ceiling: the same statements on node:sqlite directly (one connection). */
function ceiling(dir: string): { insert: number; select: number } {
  const db = new DatabaseSync(`${dir}/ceiling.db`);
  db.exec("PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;");
  db.exec("CREATE TABLE kv (id INTEGER PRIMARY KEY, v TEXT)");
  const ins = db.prepare("INSERT INTO kv(v) VALUES (?)");
  const sel = db.prepare("SELECT id, v FROM kv WHERE id = ?");
  const run = (f: (i: number) => void) => {
    const end = performance.now() + SECONDS * 1000;
    let n = 0;
    const t0 = performance.now();
    while (performance.now() < end) f(n++);
    return n / ((performance.now() - t0) / 1000);
  };
  const insert = run((i) => ins.run(`value ${i}`));
  const select = run((i) => sel.get((i % 1000) + 1));
  db.close();
  return { insert, select };
}

const JSON_TYPE = { "content-type": "application/json" };

export async function main(): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "ha-bench-" });
  const node = await startHa({
    cwd: dir,
    args: ["-n", "bench", "--nats-port", "0", "--pg-port", "0", "--log-level", "warn", "bench.db"],
  });
  try {
    const q = async (body: string) => {
      const r = await fetch(node.url, { method: "POST", headers: JSON_TYPE, body });
      if (!r.ok) throw new Error(await r.text());
      await r.arrayBuffer();
    };
    await q('{"sql":"CREATE TABLE kv (id INTEGER PRIMARY KEY, v TEXT)"}');
    const top = ceiling(dir);
    const rows: (string | number)[][] = [];
    for (const c of LEVELS) {
      const ins = await load(
        c,
        SECONDS * 1000,
        (i) => q(`{"sql":"INSERT INTO kv(v) VALUES (?)","params":["value ${i}"]}`),
      );
      rows.push([
        "INSERT",
        c,
        ins.ops,
        ins.p50,
        ins.p99,
        top.insert,
        `${(ins.ops / top.insert * 100).toFixed(1)}%`,
      ]);
    }
    for (const c of LEVELS) {
      const sel = await load(
        c,
        SECONDS * 1000,
        (i) => q(`{"sql":"SELECT id, v FROM kv WHERE id = ?","params":[${(i % 1000) + 1}]}`),
      );
      rows.push([
        "SELECT",
        c,
        sel.ops,
        sel.p50,
        sel.p99,
        top.select,
        `${(sel.ops / top.select * 100).toFixed(1)}%`,
      ]);
    }
    console.log(`\nHTTP vs in-process node:sqlite (${SECONDS}s per row, file DB in WAL mode)`);
    table(["op", "conc", "ops/s", "p50 ms", "p99 ms", "ceiling ops/s", "ha/ceiling"], rows);
  } finally {
    await node.stop();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}

if (import.meta.main) await main();
