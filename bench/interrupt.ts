/**
 * What the statement-interrupt extension (src/engine/native/ha_interrupt.c) costs and how fast it
 * stops a runaway statement: a point SELECT on node:sqlite without and with the extension loaded
 * (and `ha_begin` before each statement, as the engine worker does per request), a long query,
 * the delay past a 200 ms statement timeout, and a cancel from another thread.
 *
 * Run: `deno task bench interrupt` (`BENCH_N` statements per figure, default 35000). Needs
 * vendor/ha_interrupt.so (`bash scripts/build-extension.sh`).
 */
import { DatabaseSync } from "node:sqlite";
import { findInterruptExtension } from "../src/engine/native/locate.ts";
import { InterruptLib } from "../src/engine/native/interrupt.ts";
import { table } from "./stats.ts";

const N = Number(Deno.env.get("BENCH_N") ?? 35_000);
const RUNAWAY =
  "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c";
const ROUNDS = 7;

/**
 * µs per call of each op: the best of ROUNDS rounds, the ops' rounds interleaved so that the load
 * of a shared machine weighs on all of them alike.
 */
function time(n: number, ops: ((i: number) => void)[]): number[] {
  for (const op of ops) for (let i = 0; i < Math.min(1000, n); i++) op(i);
  const best = ops.map(() => Infinity);
  const per = Math.ceil(n / ROUNDS);
  for (let r = 0; r < ROUNDS; r++) {
    ops.forEach((op, k) => {
      const t0 = performance.now();
      for (let i = r * per; i < (r + 1) * per; i++) op(i);
      best[k] = Math.min(best[k], (performance.now() - t0) * 1000 / per);
    });
  }
  return best;
}

/** A connection, with the extension loaded when `ext` is given; its guard id or null. */
function open(path: string, ext: string | null): { db: DatabaseSync; guard: number | null } {
  const db = new DatabaseSync(path, { allowExtension: ext !== null });
  if (ext) db.loadExtension(ext);
  db.exec("PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL");
  const guard = ext
    ? Number((db.prepare("SELECT ha_guard_id() id").get() as { id: number }).id)
    : null;
  return { db, guard };
}

/** Per statement and on a long query, without and with the extension. */
function cost(dir: string, ext: string): (string | number)[][] {
  const path = `${dir}/cost.db`;
  const { db: setup } = open(path, null);
  setup.exec("CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)");
  setup.exec("BEGIN");
  const ins = setup.prepare("INSERT INTO t VALUES (?, ?)");
  for (let i = 0; i < 10_000; i++) ins.run(i, `row ${i}`);
  setup.exec("COMMIT");
  setup.close();
  const lib = InterruptLib.open(ext);
  const sides = [null, ext].map((e) => {
    const { db, guard } = open(path, e);
    const begin = guard === null ? () => {} : (i: number) => lib.begin(guard, i + 1, 30_000);
    const get = db.prepare("SELECT id, v FROM t WHERE id = ?");
    const long = db.prepare(
      "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 1000000) SELECT count(*) FROM c",
    );
    return {
      db,
      point: (i: number) => {
        begin(i);
        get.get(i % 10_000);
      },
      long: (i: number) => {
        begin(i);
        long.get();
      },
    };
  });
  const [plainPoint, guardedPoint] = time(N, sides.map((s) => s.point));
  const [plainLong, guardedLong] = time(ROUNDS, sides.map((s) => s.long)).map((us) => us / 1000);
  for (const s of sides) s.db.close();
  const row = (name: string, a: number, b: number) => [name, a, b, `${(b / a).toFixed(2)}x`];
  return [
    row("point SELECT µs", plainPoint, guardedPoint),
    row("1M-row recursive CTE ms", plainLong, guardedLong),
  ];
}

/** ms past a 200 ms statement timeout until a runaway statement fails. */
function timeoutLatency(ext: string): { ms: number; error: string } {
  const { db, guard } = open(":memory:", ext);
  InterruptLib.open(ext).begin(guard!, 1, 200);
  const t0 = performance.now();
  try {
    db.prepare(RUNAWAY).get();
    return { ms: NaN, error: "not stopped" };
  } catch (e) {
    return { ms: performance.now() - t0 - 200, error: (e as Error).message };
  } finally {
    db.close();
  }
}

/** ms from `cancel` on this thread to the error in a worker running a runaway statement. */
async function cancelLatency(ext: string): Promise<{ ms: number; error: string }> {
  const src = `
import { DatabaseSync } from "node:sqlite";
const db = new DatabaseSync(":memory:", { allowExtension: true });
db.loadExtension(${JSON.stringify(ext)});
const id = Number(db.prepare("SELECT ha_guard_id() id").get().id);
const lib = Deno.dlopen(${
    JSON.stringify(ext)
  }, { ha_begin: { parameters: ["i32", "i64", "i32"], result: "i32" } });
lib.symbols.ha_begin(id, 1n, 0);
self.postMessage({ id });
try { db.prepare(${JSON.stringify(RUNAWAY)}).get(); self.postMessage({ error: "not stopped" }); }
catch (e) { self.postMessage({ error: e.message }); }`;
  const worker = new Worker(`data:text/javascript,${encodeURIComponent(src)}`, { type: "module" });
  const lib = InterruptLib.open(ext);
  try {
    return await new Promise((resolve) => {
      let t0 = 0;
      worker.onmessage = (e: MessageEvent<{ id?: number; error?: string }>) => {
        if (e.data.id !== undefined) {
          setTimeout(() => {
            t0 = performance.now();
            lib.cancel(e.data.id!, 1, "cancel");
          }, 300);
        } else resolve({ ms: performance.now() - t0, error: e.data.error! });
      };
    });
  } finally {
    worker.terminate();
  }
}

export async function main(): Promise<void> {
  const ext = await findInterruptExtension();
  if (ext === null) {
    throw new Error("vendor/ha_interrupt.so is missing: bash scripts/build-extension.sh");
  }
  const dir = Deno.makeTempDirSync({ prefix: "ha-bench-int-" });
  try {
    table(["figure", "node:sqlite", "+ ha_interrupt", "ratio"], cost(dir, ext));
    const t = timeoutLatency(ext);
    console.log(`statement timeout 200 ms: stopped ${t.ms.toFixed(2)} ms late (${t.error})`);
    const c = await cancelLatency(ext);
    console.log(`cancel from another thread: stopped in ${c.ms.toFixed(2)} ms (${c.error})`);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
}

if (import.meta.main) await main();
