/**
 * CPU per pgbench point select (`bench/pgbench/select.sql`, 8 clients) of one or more ha
 * checkouts, runs alternated: ha's CPU per query (user + system of the whole process from
 * `/proc`, ÷ transactions), the main thread's, and tps, per protocol mode. With `--strace`, the
 * main thread's syscalls per query (`strace -c` attached during the measured run).
 *
 * Run: `deno run -A bench/pg_select_cpu.ts [--root DIR]... [--rounds N] [--modes a,b]
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

async function startHa(root: string, dir: string) {
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

async function measure(root: string, label: string): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "ha-pgsel-" });
  const { child, port } = await startHa(root, dir);
  try {
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
    const pid = child.pid;
    for (const mode of modes) {
      await pgbench(port, mode, WARM);
      const load = Deno.readTextFileSync("/proc/loadavg").split(" ")[0];
      const t0 = ticks(`/proc/${pid}/stat`);
      const m0 = ticks(`/proc/${pid}/task/${pid}/stat`);
      let tracer: Deno.ChildProcess | null = null;
      if (strace) {
        tracer = new Deno.Command("strace", {
          args: ["-c", "-p", String(pid), "-o", `${dir}/strace.txt`],
          stdout: "null",
          stderr: "null",
        }).spawn();
        await new Promise((r) => setTimeout(r, 300));
      }
      if (perf) {
        tracer = new Deno.Command("perf", {
          args: ["record", "-g", "-t", String(pid), "-o", `${perf}.${mode}`],
          stdout: "null",
          stderr: "null",
        }).spawn();
        await new Promise((r) => setTimeout(r, 300));
      }
      const out = await pgbench(port, mode, SECONDS);
      if (tracer) {
        tracer.kill("SIGINT");
        await tracer.status;
      }
      const t1 = ticks(`/proc/${pid}/stat`);
      const m1 = ticks(`/proc/${pid}/task/${pid}/stat`);
      const n = Number(/actually processed: (\d+)/.exec(out)![1]);
      const tps = Number(/tps = ([\d.]+)/.exec(out)![1]);
      const us = (t: number) => ((t * 1e6) / TICK / n).toFixed(1);
      console.log(
        `${label}\t${mode}\ttps ${tps.toFixed(0)}\tcpu/q ${us(t1 - t0)} µs\tmain/q ${
          us(m1 - m0)
        } µs\tload ${load}`,
      );
      if (tracer && strace) {
        const lines = Deno.readTextFileSync(`${dir}/strace.txt`).split("\n");
        for (const l of lines) {
          const f = l.trim().split(/\s+/);
          if (f.length >= 5 && /^\d/.test(f[0]) && f[f.length - 1] !== "total") {
            const calls = Number(f[3]);
            console.log(`  ${f[f.length - 1]}\t${(calls / n).toFixed(3)}/q\t${l.trim()}`);
          }
        }
      }
    }
  } finally {
    child.kill("SIGTERM");
    await child.status;
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}

for (let r = 0; r < rounds; r++) {
  for (let i = 0; i < roots.length; i++) {
    const k = (i + r) % roots.length;
    await measure(roots[k], `r${r} ${String.fromCharCode(65 + k)}`);
  }
}
