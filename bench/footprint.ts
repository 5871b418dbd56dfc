/**
 * Start-up time and idle memory of one ha process (issue 13 targets: spawn → ready ≤ 1 s, idle
 * RSS ≤ 80 MB): `ha -m` (memory database, embedded NATS server) and `ha ha.db` (file database,
 * embedded NATS server). For each: the time from spawn until `GET /readyz` answers 200, then,
 * after idling, the `VmRSS` of the ha process (the deno process running main.ts) and, apart,
 * of its nats-server child.
 *
 * Run: `deno task bench footprint`. Env: BENCH_RUNS (default 3), BENCH_IDLE_SECONDS (default 3).
 * @module
 */
import { freePort } from "../tests/integration/helpers/ha.ts";
import { table } from "./stats.ts";

const RUNS = Number(Deno.env.get("BENCH_RUNS") ?? 3);
const IDLE = Number(Deno.env.get("BENCH_IDLE_SECONDS") ?? 3);
const MAIN = new URL("../main.ts", import.meta.url).pathname;

/** What one start measured. */
export interface Footprint {
  /** Spawn → `/readyz` 200, ms. */
  readyMs: number;
  /** VmRSS of the ha process after idling, MB. */
  rssMb: number;
  /** Its RssAnon (private memory: heaps, stacks; the rest is the deno binary's shared pages). */
  anonMb: number;
  /** VmRSS of its descendants (nats-server and its watchdog shell), MB. */
  childMb: number;
}

async function rssMb(pid: number, field = "VmRSS"): Promise<number> {
  const s = await Deno.readTextFile(`/proc/${pid}/status`).catch(() => "");
  return Number(new RegExp(`${field}:\\s+(\\d+)`).exec(s)?.[1] ?? 0) / 1024;
}

/** Every descendant of `pid` (nats-server runs below a watchdog shell). */
async function descendants(pid: number): Promise<number[]> {
  const tasks = await Array.fromAsync(Deno.readDir(`/proc/${pid}/task`)).catch(() => []);
  const out: number[] = [];
  for (const t of tasks) {
    const c = await Deno.readTextFile(`/proc/${pid}/task/${t.name}/children`).catch(() => "");
    for (const k of c.split(/\s+/).filter(Boolean).map(Number)) {
      out.push(k, ...await descendants(k));
    }
  }
  return out;
}

/** Starts `ha <args>` in a fresh directory, measures, stops it. */
export async function measure(args: string[]): Promise<Footprint> {
  const cwd = await Deno.makeTempDir({ prefix: "ha-footprint-" });
  const port = freePort();
  const t0 = performance.now();
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      "--unstable-worker-options",
      MAIN,
      "-n",
      "fp",
      "--port",
      String(port),
      "--nats-port",
      String(freePort()),
      "--nats-store-dir",
      `${cwd}/nats`,
      "--pg-port",
      String(freePort()),
      "--log-level",
      "warn",
      ...args,
    ],
    cwd,
    stdout: "null",
    stderr: "null",
    stdin: "null",
  }).spawn();
  try {
    let readyMs = 0;
    while (!readyMs) {
      const r = await fetch(`http://127.0.0.1:${port}/readyz`).catch(() => null);
      await r?.body?.cancel();
      if (r?.ok) readyMs = performance.now() - t0;
      else if (performance.now() - t0 > 60_000) throw new Error("ha not ready in 60 s");
      else await new Promise((r) => setTimeout(r, 5));
    }
    await new Promise((r) => setTimeout(r, IDLE * 1000));
    let childMb = 0;
    for (const c of await descendants(child.pid)) childMb += await rssMb(c);
    return {
      readyMs,
      rssMb: await rssMb(child.pid),
      anonMb: await rssMb(child.pid, "RssAnon"),
      childMb,
    };
  } finally {
    try {
      child.kill("SIGTERM");
    } catch { /* gone */ }
    await child.status;
    await Deno.remove(cwd, { recursive: true }).catch(() => {});
  }
}

/** Both configurations, RUNS times each (alternating); min–max of each measure. */
export async function footprints(): Promise<Record<string, Footprint[]>> {
  const configs: Record<string, string[]> = { "ha -m": ["-m"], "ha ha.db": ["ha.db"] };
  const out: Record<string, Footprint[]> = {};
  for (let i = 0; i < RUNS; i++) {
    for (const [name, args] of Object.entries(configs)) {
      (out[name] ??= []).push(await measure(args));
    }
  }
  return out;
}

/** "min–max" of one measure over runs. */
export function range(fs: Footprint[], k: keyof Footprint): string {
  const v = fs.map((f) => f[k]);
  const lo = Math.min(...v).toFixed(0);
  const hi = Math.max(...v).toFixed(0);
  return lo === hi ? lo : `${lo}–${hi}`;
}

/** The `compare` rows: start-up and idle memory beside issue 13's targets. */
export async function footprintRows(
  _dir: string,
  rows: [string, string, string, string][],
): Promise<void> {
  for (const [name, fs] of Object.entries(await footprints())) {
    // The fastest start: a shared machine only ever adds to it.
    const ready = Math.min(...fs.map((f) => f.readyMs));
    const rss = Math.max(...fs.map((f) => f.rssMb));
    rows.push([
      `${name}: spawn → ready ms (fastest of ${RUNS}) / idle RSS MB (private)`,
      `${ready.toFixed(0)} / ${rss.toFixed(0)} (${range(fs, "anonMb")})`,
      "target 1000 / 80",
      `${(1000 / ready).toFixed(2)}× / ${(80 / rss).toFixed(2)}×`,
    ]);
  }
}

export async function main(): Promise<void> {
  const res = await footprints();
  console.log(`\nha start-up and idle memory (${RUNS} runs each, ${IDLE}s idle before RSS)`);
  table(
    ["config", "spawn → ready ms", "ha RSS MB", "of it private MB", "nats-server RSS MB"],
    Object.entries(res).map(([n, fs]) => [
      n,
      range(fs, "readyMs"),
      range(fs, "rssMb"),
      range(fs, "anonMb"),
      range(fs, "childMb"),
    ]),
  );
}

if (import.meta.main) await main();
