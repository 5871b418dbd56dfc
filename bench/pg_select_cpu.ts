/**
 * CPU per pgbench point select (`bench/pgbench/select.sql`, 8 clients) of one or more ha
 * checkouts, runs alternated: ha's CPU per query (user + system of the whole process from
 * `/proc`, ÷ transactions), the main thread's, and tps, per protocol mode. With `--strace`, the
 * main thread's syscalls per query (`strace -c` attached during the measured run).
 *
 * Run: `deno run -A bench/pg_select_cpu.ts [--root DIR[|VAR=value,…]]... [--rounds N] [--modes a,b]
 * [--strace] [--replicate]` (roots default to this checkout; each round rotates their order).
 * Env: BENCH_SECONDS (measured, default 5), BENCH_WARM (default 2), BENCH_CLIENTS (8),
 * BENCH_ROWS (10000). Not in `bench/mod.ts`: an A/B tool, not a figure of one build.
 * @module
 */
import { freePort } from "../tests/integration/helpers/cluster.ts";

const SECONDS = Number(Deno.env.get("BENCH_SECONDS") ?? 5);
const WARM = Number(Deno.env.get("BENCH_WARM") ?? 2);
const CLIENTS = Number(Deno.env.get("BENCH_CLIENTS") ?? 8);
const ROWS = Number(Deno.env.get("BENCH_ROWS") ?? 10_000);
const HERE = new URL(".", import.meta.url).pathname;
const TICK = 100; // USER_HZ

function flag(name: string): string[] {
  const out: string[] = [];
  Deno.args.forEach((a, i) => a === name && out.push(Deno.args[i + 1]));
  return out;
}
const roots = flag("--root").length ? flag("--root") : [new URL("..", import.meta.url).pathname];
const rounds = Number(flag("--rounds")[0] ?? 1);
const modes = (flag("--modes")[0] ?? "simple,extended,prepared").split(",");
const strace = Deno.args.includes("--strace");
const replicate = Deno.args.includes("--replicate");
const perf = flag("--perf")[0]; // perf.data path: `perf record -g` of the main thread
const denoFlags = (Deno.env.get("BENCH_DENO_FLAGS") ?? "").split(" ").filter(Boolean);

/** utime + stime ticks of a /proc stat file. */
function ticks(path: string): number {
  const s = Deno.readTextFileSync(path);
  const f = s.slice(s.lastIndexOf(")") + 2).split(" ");
  return Number(f[11]) + Number(f[12]);
}

async function run(cmd: string, args: string[], env: Record<string, string> = {}) {
  const r = await new Deno.Command(cmd, { args, env, stdout: "piped", stderr: "piped" }).output();
  const out = new TextDecoder().decode(r.stdout) + new TextDecoder().decode(r.stderr);
  if (r.code !== 0) throw new Error(`${cmd} ${args.join(" ")}: ${out}`);
  return out;
}

/** `DIR` or `DIR|NAME=VALUE,…`: a checkout and the environment its ha runs with. */
async function startHa(spec: string, dir: string) {
  const [root, vars = ""] = spec.split("|");
  const haEnv = Object.fromEntries(vars.split(",").filter(Boolean).map((v) => v.split("=")));
  const port = freePort();
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      "--unstable-worker-options",
      ...denoFlags,
      `--config=${root}/deno.json`,
      `${root}/main.ts`,
      "-n",
      "pgsel",
      "--port",
      String(freePort()),
      "--nats-port",
      replicate ? String(freePort()) : "0",
      "--nats-store-dir",
      `${dir}/nats`,
      "--pg-port",
      String(port),
      "--log-level",
      "warn",
      "bench.db",
    ],
    cwd: dir,
    env: haEnv,
    stdout: "null",
    stderr: "null",
    stdin: "null",
  }).spawn();
  for (let i = 0; i < 600; i++) {
    try {
      (await Deno.connect({ hostname: "127.0.0.1", port })).close();
      return { child, port };
    } catch {
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  child.kill("SIGKILL");
  throw new Error("ha did not listen");
}

const env = { PGPASSWORD: "ha" };
const conn = (port: number) => ["-h", "127.0.0.1", "-p", String(port), "-U", "ha"];

function pgbench(port: number, mode: string, seconds: number) {
  return run("/usr/bin/pgbench", [
    ...conn(port),
    "-n",
    "-M",
    mode,
    "-c",
    String(CLIENTS),
    "-j",
    String(Math.min(CLIENTS, 4)),
    "-T",
    String(seconds),
    "-D",
    `rows=${ROWS}`,
    "-f",
    `${HERE}pgbench/select.sql`,
    "ha",
  ], env);
}

interface Server {
  label: string;
  child: Deno.ChildProcess;
  port: number;
  dir: string;
  /** Per mode: [CPU µs/query, main-thread µs/query, tps] of each run. */
  runs: Map<string, number[][]>;
}

async function open(root: string, label: string): Promise<Server> {
  const dir = await Deno.makeTempDir({ prefix: "ha-pgsel-" });
  const { child, port } = await startHa(root, dir);
  await run("/usr/bin/psql", [
    ...conn(port),
    "-X",
    "-q",
    "-d",
    "ha",
    "-c",
    "CREATE TABLE accounts(aid INTEGER PRIMARY KEY, abalance INTEGER, filler TEXT)",
    "-c",
    `WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < ${ROWS}) ` +
    "INSERT INTO accounts SELECT x, 0, printf('%-84s', 'filler') FROM c",
  ], env);
  return { label, child, port, dir, runs: new Map() };
}

async function close(s: Server): Promise<void> {
  s.child.kill("SIGTERM");
  await s.child.status;
  await Deno.remove(s.dir, { recursive: true }).catch(() => {});
}

/** One measured pgbench run against `s` in `mode`. */
async function measure(s: Server, mode: string, round: number): Promise<void> {
  const pid = s.child.pid;
  const load = Deno.readTextFileSync("/proc/loadavg").split(" ")[0];
  const t0 = ticks(`/proc/${pid}/stat`);
  const m0 = ticks(`/proc/${pid}/task/${pid}/stat`);
  let tracer: Deno.ChildProcess | null = null;
  if (strace) {
    tracer = new Deno.Command("strace", {
      args: ["-c", "-p", String(pid), "-o", `${s.dir}/strace.txt`],
      stdout: "null",
      stderr: "null",
    }).spawn();
    await new Promise((r) => setTimeout(r, 300));
  }
  if (perf) {
    tracer = new Deno.Command("perf", {
      args: ["record", "-g", "-t", String(pid), "-o", `${perf}.${s.label}.${mode}`],
      stdout: "null",
      stderr: "null",
    }).spawn();
    await new Promise((r) => setTimeout(r, 300));
  }
  const out = await pgbench(s.port, mode, SECONDS);
  if (tracer) {
    tracer.kill("SIGINT");
    await tracer.status;
  }
  const t1 = ticks(`/proc/${pid}/stat`);
  const m1 = ticks(`/proc/${pid}/task/${pid}/stat`);
  const n = Number(/actually processed: (\d+)/.exec(out)![1]);
  const tps = Number(/tps = ([\d.]+)/.exec(out)![1]);
  const us = (t: number) => (t * 1e6) / TICK / n;
  const row = [us(t1 - t0), us(m1 - m0), tps];
  if (!s.runs.has(mode)) s.runs.set(mode, []);
  s.runs.get(mode)!.push(row);
  console.log(
    `r${round} ${s.label}\t${mode}\ttps ${tps.toFixed(0)}\tcpu/q ${row[0].toFixed(1)} µs\t` +
      `main/q ${row[1].toFixed(1)} µs\tload ${load}`,
  );
  if (strace) {
    for (const l of Deno.readTextFileSync(`${s.dir}/strace.txt`).split("\n")) {
      const f = l.trim().split(/\s+/);
      if (f.length >= 5 && /^\d/.test(f[0]) && f[f.length - 1] !== "total") {
        console.log(`  ${f[f.length - 1]}\t${(Number(f[3]) / n).toFixed(3)}/q\t${l.trim()}`);
      }
    }
  }
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

// All servers run at once (the idle ones cost nothing); runs alternate every few seconds, so
// the machine's load changes between paired runs less than between whole server lifetimes.
const servers: Server[] = [];
try {
  for (let i = 0; i < roots.length; i++) {
    servers.push(await open(roots[i], String.fromCharCode(65 + i)));
  }
  for (const mode of modes) {
    for (const s of servers) await pgbench(s.port, mode, WARM);
    for (let r = 0; r < rounds; r++) {
      for (let i = 0; i < servers.length; i++) {
        await measure(servers[(i + r) % servers.length], mode, r);
      }
    }
  }
  console.log(
    "mode\tserver\tcpu/q median (range)\tmain/q median\ttps median\tpaired cpu ratio to A",
  );
  for (const mode of modes) {
    const a = servers[0].runs.get(mode)!;
    for (const s of servers) {
      const rs = s.runs.get(mode)!;
      const cpu = rs.map((x) => x[0]);
      const ratios = rs.map((x, i) => x[0] / a[i][0]);
      console.log(
        `${mode}\t${s.label}\t${median(cpu).toFixed(1)} (${Math.min(...cpu).toFixed(1)}–${
          Math.max(...cpu).toFixed(1)
        }) µs\t${median(rs.map((x) => x[1])).toFixed(1)} µs\t${
          median(rs.map((x) => x[2])).toFixed(0)
        }\t${median(ratios).toFixed(2)} (${Math.min(...ratios).toFixed(2)}–${
          Math.max(...ratios).toFixed(2)
        })`,
      );
    }
  }
} finally {
  for (const s of servers) await close(s);
}
