/**
 * CPU per HTTP request of one ha node (user + system time of the ha process from
 * `/proc/<pid>/stat`, divided by the requests wrk completed): single-row inserts
 * (`wrk/insert.lua`) and point reads by primary key (`wrk/point.lua`), file database, WAL.
 *
 * Run: `deno run -A bench/http_cpu.ts [ROOT] [insert|point|both] [--repl] [--prof DIR]` where ROOT
 * is the checkout whose `main.ts` runs (default: this one), so that two copies can be measured
 * alternately. `--repl` starts the embedded nats-server (synchronous replication, one node).
 * BENCH_SECONDS (5), BENCH_CONNS (32).
 * @module
 */
import { freePort } from "../tests/integration/helpers/cluster.ts";
import { wrk } from "./wrk.ts";

const SECONDS = Number(Deno.env.get("BENCH_SECONDS") ?? 5);
const CONNS = Number(Deno.env.get("BENCH_CONNS") ?? 32);
const KEYS = 10_000;
const SETUP = [
  "CREATE TABLE IF NOT EXISTS model (key TEXT, value TEXT, UNIQUE(key))",
  "CREATE TABLE kv (id INTEGER PRIMARY KEY, v TEXT)",
  `WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ${KEYS}) ` +
  "INSERT INTO kv SELECT i, 'value ' || i FROM n",
];

/** utime + stime of a process in seconds. */
async function cpuOf(pid: number): Promise<number> {
  const stat = await Deno.readTextFile(`/proc/${pid}/stat`);
  const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(f[11]) + Number(f[12])) / 100;
}

/** utime + stime per thread name (`/proc/<pid>/task/<tid>/stat`), in seconds. */
async function threadsOf(pid: number): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  for await (const t of Deno.readDir(`/proc/${pid}/task`)) {
    const stat = await Deno.readTextFile(`/proc/${pid}/task/${t.name}/stat`).catch(() => "");
    if (!stat) continue;
    const name = stat.slice(stat.indexOf("(") + 1, stat.lastIndexOf(")"));
    const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    out.set(name, (out.get(name) ?? 0) + (Number(f[11]) + Number(f[12])) / 100);
    out.set(`${name}.sys`, (out.get(`${name}.sys`) ?? 0) + Number(f[12]) / 100);
  }
  return out;
}

async function main(): Promise<void> {
  const args = [...Deno.args];
  const repl = args.includes("--repl");
  const pi = args.indexOf("--prof");
  const prof = pi >= 0 ? args.splice(pi, 2)[1] : null;
  const pos = args.filter((a) => !a.startsWith("--"));
  const root = (pos[0] ?? new URL("..", import.meta.url).pathname).replace(/\/?$/, "/");
  const what = pos[1] ?? "both";
  const dir = await Deno.makeTempDir({ prefix: "ha-cpu-" });
  const port = freePort();
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      "--unstable-worker-options",
      "--config",
      `${root}deno.json`,
      ...(prof ? ["--cpu-prof", `--cpu-prof-dir=${prof}`] : []),
      `${root}main.ts`,
      "-n",
      "cpu",
      ...(repl
        ? ["--nats-port", String(freePort()), "--nats-store-dir", `${dir}/nats`]
        : ["--nats-port", "0"]),
      "--pg-port",
      "0",
      "--log-level",
      "warn",
      "--port",
      String(port),
      "ha.db",
    ],
    cwd: dir,
    stdout: "null",
    stderr: "inherit",
  }).spawn();
  const url = `http://127.0.0.1:${port}`;
  try {
    for (let i = 0;; i++) {
      const r = await fetch(`${url}/readyz`).catch(() => null);
      await r?.body?.cancel();
      if (r?.status === 200) break;
      if (i > 600) throw new Error("not ready");
      await new Promise((r) => setTimeout(r, 100));
    }
    for (const sql of SETUP) {
      const r = await fetch(url, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ sql }),
      });
      if (!r.ok) throw new Error(await r.text());
      await r.body?.cancel();
    }
    const out: string[] = [];
    for (const k of what === "both" ? ["insert", "point"] : [what]) {
      const th0 = await threadsOf(child.pid);
      const c0 = await cpuOf(child.pid);
      const t0 = performance.now();
      const r = await wrk([url], {
        script: `${k}.lua`,
        conns: CONNS,
        seconds: SECONDS,
        args: () => k === "insert" ? ["ha", `s${crypto.randomUUID().slice(0, 8)}`] : [String(KEYS)],
      });
      const secs = (performance.now() - t0) / 1000;
      const cpu = await cpuOf(child.pid) - c0; // the ha process (nats-server is not counted)
      if (r.errors) throw new Error(`${k}: ${r.errors} errors`);
      const n = r.ok * SECONDS;
      if (Deno.env.get("BENCH_THREADS")) {
        const th = await threadsOf(child.pid);
        const per = [...th].map(([k, v]) => [k, ((v - (th0.get(k) ?? 0)) / n) * 1e6] as const)
          .filter(([, v]) => v >= 1).map(([k, v]) => `${k} ${v.toFixed(0)}`);
        console.error(`  ${k} threads (us/req): ${per.join(", ")}`);
      }
      out.push(
        `${k} ${r.ok.toFixed(0)}/s cpu ${(cpu / n * 1e6).toFixed(1)} us/req (${
          (cpu / secs * 100).toFixed(0)
        }% of a core)`,
      );
    }
    console.log(`${root} ${repl ? "repl " : ""}${out.join(" | ")}`);
  } finally {
    child.kill("SIGTERM");
    await child.status;
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}

if (import.meta.main) await main();
