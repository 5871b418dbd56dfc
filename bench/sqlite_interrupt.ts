/**
 * Issue 11 finding 7, the candidate that keeps node:sqlite: the extension bench/ha_interrupt.c
 * loaded into each connection gives it a statement timeout (progress handler) and a cancel that
 * another thread triggers through FFI. Measures what it costs per statement and on a long query,
 * and how fast a runaway statement stops. The decision is in docs/decisions/statement-interrupt.md.
 *
 * Run: `bash scripts/build-sqlite.sh --extension-only && deno run -A bench/sqlite_interrupt.ts`
 * (`BENCH_N` statements per figure, default 35000).
 */
import { DatabaseSync } from "node:sqlite";
import { table } from "./stats.ts";

const N = Number(Deno.env.get("BENCH_N") ?? 35_000);
const EXT = Deno.env.get("HA_INTERRUPT_EXT") ??
  new URL("../vendor/ha_interrupt.so", import.meta.url).pathname;
const RUNAWAY =
  "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c";
const ROUNDS = 7;

/** µs per call: the best of ROUNDS rounds (the machine may be shared and busy). */
function time(n: number, op: (i: number) => void): number {
  for (let i = 0; i < Math.min(1000, n); i++) op(i);
  let best = Infinity;
  const per = Math.ceil(n / ROUNDS);
  for (let r = 0; r < ROUNDS; r++) {
    const t0 = performance.now();
    for (let i = r * per; i < (r + 1) * per; i++) op(i);
    best = Math.min(best, (performance.now() - t0) * 1000 / per);
  }
  return best;
}

function open(path: string, guarded: boolean): DatabaseSync {
  const db = new DatabaseSync(path, { allowExtension: guarded });
  if (guarded) {
    db.loadExtension(EXT);
    db.exec("SELECT ha_statement_timeout(30000)");
  }
  db.exec("PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL");
  return db;
}

/** Per statement and on a long query, without and with the extension. */
function cost(dir: string): (string | number)[][] {
  const path = `${dir}/cost.db`;
  const setup = open(path, false);
  setup.exec("CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)");
  setup.exec("BEGIN");
  const ins = setup.prepare("INSERT INTO t VALUES (?, ?)");
  for (let i = 0; i < 10_000; i++) ins.run(i, `row ${i}`);
  setup.exec("COMMIT");
  setup.close();
  const figures = (guarded: boolean) => {
    const db = open(path, guarded);
    const get = db.prepare("SELECT id, v FROM t WHERE id = ?");
    const autocommit = time(N, (i) => void get.get(i % 10_000));
    db.exec("BEGIN");
    const inTx = time(N, (i) => void get.get(i % 10_000));
    db.exec("COMMIT");
    const long = db.prepare(
      "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 1000000) SELECT count(*) FROM c",
    );
    const longMs = time(5, () => void long.get()) / 1000;
    db.close();
    return { autocommit, inTx, longMs };
  };
  const plain = figures(false);
  const guarded = figures(true);
  const row = (name: string, a: number, b: number) => [name, a, b, `${(b / a).toFixed(2)}x`];
  return [
    row("point SELECT µs", plain.autocommit, guarded.autocommit),
    row("point SELECT in a tx µs", plain.inTx, guarded.inTx),
    row("1M-row recursive CTE ms", plain.longMs, guarded.longMs),
  ];
}

/** ms until a runaway statement fails with a 200 ms statement timeout. */
function timeoutLatency(): { ms: number; error: string } {
  const db = open(":memory:", true);
  db.exec("SELECT ha_statement_timeout(200)");
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

/** ms from ha_cancel on this thread to the error in a worker running a runaway statement. */
async function cancelLatency(): Promise<{ ms: number; error: string }> {
  const src = `
import { DatabaseSync } from "node:sqlite";
const db = new DatabaseSync(":memory:", { allowExtension: true });
db.loadExtension(${JSON.stringify(EXT)});
self.postMessage({ id: db.prepare("SELECT ha_guard_id() id").get().id });
try { db.prepare(${JSON.stringify(RUNAWAY)}).get(); self.postMessage({ error: "not stopped" }); }
catch (e) { self.postMessage({ error: e.message }); }`;
  const worker = new Worker(`data:text/javascript,${encodeURIComponent(src)}`, { type: "module" });
  const lib = Deno.dlopen(EXT, { ha_cancel: { parameters: ["i32"], result: "i32" } });
  try {
    return await new Promise((resolve) => {
      let t0 = 0;
      worker.onmessage = (e: MessageEvent<{ id?: number; error?: string }>) => {
        if (e.data.id !== undefined) {
          setTimeout(() => {
            t0 = performance.now();
            if (lib.symbols.ha_cancel(e.data.id!) !== 1) throw new Error("unknown guard id");
          }, 300);
        } else resolve({ ms: performance.now() - t0, error: e.data.error! });
      };
    });
  } finally {
    worker.terminate();
    lib.close();
  }
}

if (import.meta.main) {
  try {
    Deno.statSync(EXT);
  } catch {
    console.error(`${EXT} is missing: bash scripts/build-sqlite.sh --extension-only`);
    Deno.exit(2);
  }
  const dir = Deno.makeTempDirSync({ prefix: "ha-sqlite-int-" });
  try {
    table(["figure", "node:sqlite", "+ ha_interrupt", "ratio"], cost(dir));
    const t = timeoutLatency();
    console.log(`statement timeout 200 ms: stopped ${t.ms.toFixed(2)} ms late (${t.error})`);
    const c = await cancelLatency();
    console.log(`ha_cancel from another thread: stopped in ${c.ms.toFixed(2)} ms (${c.error})`);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
}
