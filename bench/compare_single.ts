/**
 * The `compare` section "1 node vs the node:sqlite ceiling" (issue 13: HTTP on one node at
 * ≥ 25 % of the in-process ceiling): one ha node without replication (file database) and the
 * `Deno.serve` + node:sqlite baseline server (`baseline_server.ts`), both driven by `wrk` at
 * BENCH_CONNS connections with
 *
 * - single-row inserts (`wrk/insert.lua`, a distinct key per request), and
 * - point reads by primary key (`wrk/point.lua`, keys spread over a prefilled table),
 *
 * each beside the ceiling: a tight loop of the same prepared statement on node:sqlite in this
 * process (autocommit INSERT / point SELECT; file database, WAL, synchronous NORMAL as ha's
 * defaults). Run with the rest: `deno task bench compare`.
 * @module
 */
import { DatabaseSync } from "node:sqlite";
import { waitFor } from "../tests/integration/helpers/cluster.ts";
import { freePort, startHa } from "../tests/integration/helpers/ha.ts";
import { wrk } from "./wrk.ts";

const SECONDS = Number(Deno.env.get("BENCH_SECONDS") ?? 5);
const CONNS = Number(Deno.env.get("BENCH_CONNS") ?? 32);
const HERE = new URL(".", import.meta.url).pathname;
const MODEL = "CREATE TABLE IF NOT EXISTS model (key TEXT, value TEXT, UNIQUE(key))";
const KV = "CREATE TABLE kv (id INTEGER PRIMARY KEY, v TEXT)";
/** Rows of `kv` the point reads spread over. */
const KEYS = 10_000;
const FILL = `WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ${KEYS}) ` +
  "INSERT INTO kv SELECT i, 'value ' || i FROM n";

type Row = [string, string, string, string];

/** Statements per second of `step` in a tight loop on a fresh WAL file database. */
function ceiling(file: string, step: (db: DatabaseSync) => () => void): number {
  const db = new DatabaseSync(file);
  try {
    db.exec("PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;");
    db.exec(`${MODEL}; ${KV}; ${FILL}`);
    const run = step(db);
    const t0 = performance.now();
    const end = t0 + SECONDS * 1000;
    let n = 0;
    while (performance.now() < end) {
      for (let i = 0; i < 100; i++) run();
      n += 100;
    }
    return n / ((performance.now() - t0) / 1000);
  } finally {
    db.close();
  }
}

/** Successful answers per second of one wrk run of `script` against `url`; any error throws. */
async function load(url: string, script: string, args: string[]): Promise<number> {
  const r = await wrk([url], { script, conns: CONNS, seconds: SECONDS, args: () => args });
  if (r.errors > 0) throw new Error(`${url}: ${r.errors} requests failed (${script})`);
  return r.ok;
}

async function post(url: string, sql: string): Promise<void> {
  const r = await fetch(url, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ sql, params: [] }),
  });
  if (!r.ok) throw new Error(`${url}: ${sql.slice(0, 30)}: ${await r.text()}`);
  await r.body?.cancel();
}

/** Inserts and point reads per second of the HTTP server at `url` (tables created here). */
async function drive(url: string): Promise<{ insert: number; point: number }> {
  for (const sql of [MODEL, KV, FILL]) await post(url, sql);
  const insert = await load(url, "insert.lua", ["ha", `s${crypto.randomUUID().slice(0, 8)}`]);
  const point = await load(url, "point.lua", [String(KEYS)]);
  return { insert, point };
}

/** Runs `use` against the baseline server on a fresh database in `dir`, then stops it. */
export async function withBaseline<T>(dir: string, use: (url: string) => Promise<T>): Promise<T> {
  const port = freePort();
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", `${HERE}baseline_server.ts`, String(port), `${dir}/baseline.db`],
    stdout: "null",
    stderr: "inherit",
  }).spawn();
  try {
    const url = `http://127.0.0.1:${port}`;
    await waitFor("baseline server", async () => {
      const r = await fetch(url, { method: "POST", body: '{"sql":"SELECT 1","params":[]}' })
        .catch(() => null);
      await r?.body?.cancel();
      return r !== null;
    }, 30_000);
    return await use(url);
  } finally {
    child.kill("SIGTERM");
    await child.status;
  }
}

const fmt = (n: number) => n.toFixed(0);
const ratio = (a: number, b: number) => `${(a / b).toFixed(2)}×`;

/** Rows: one ha node's HTTP inserts and point reads vs the ceiling and the baseline server. */
export async function singleVsCeiling(dir: string, rows: Row[]): Promise<void> {
  if (
    !(await new Deno.Command("sh", { args: ["-c", "command -v wrk"], stdout: "null" }).output())
      .success
  ) {
    rows.push(["1 node vs node:sqlite ceiling", "skipped", "needs wrk (apt-get install wrk)", "—"]);
    return;
  }
  const top = {
    insert: ceiling(`${dir}/ceiling-insert.db`, (db) => {
      const st = db.prepare("INSERT OR REPLACE INTO model(key, value) VALUES (?, ?)");
      let n = 0;
      return () => st.run(`k${++n}`, "value");
    }),
    point: ceiling(`${dir}/ceiling-point.db`, (db) => {
      const st = db.prepare("SELECT id, v FROM kv WHERE id = ?");
      let n = 0;
      return () => st.all(++n % KEYS + 1);
    }),
  };
  const base = await withBaseline(dir, drive);
  await Deno.mkdir(`${dir}/single`);
  const node = await startHa({
    cwd: `${dir}/single`,
    args: ["-n", "single", "--nats-port", "0", "--pg-port", "0", "--log-level", "warn", "ha.db"],
  });
  let ha;
  try {
    ha = await drive(node.url);
  } finally {
    await node.stop();
  }
  for (const k of ["insert", "point"] as const) {
    rows.push([
      `1 node, no replication, HTTP ${
        k === "insert" ? "single-row inserts" : "point reads by primary key"
      }, ${CONNS} conns (/s)`,
      fmt(ha[k]),
      `node:sqlite ceiling ${fmt(top[k])} / Deno.serve+node:sqlite ${fmt(base[k])}`,
      `${ratio(ha[k], top[k])} / ${ratio(ha[k], base[k])}`,
    ]);
  }
}
