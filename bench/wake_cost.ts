/**
 * What a thread wake-up costs on this machine (issue 13, lag): CPU of this process (every thread,
 * `/proc`) per main thread → worker → main thread `postMessage` round trip, back to back (neither
 * thread sleeps) and spaced by a timer of 1 or 5 ms (both sleep between round trips, like the
 * hops of one replicated write at a moderate rate), and per timer alone. Every replicated write
 * crosses threads and processes about a dozen times (HTTP → main → writer → main → nats-server →
 * each replica's main → its writer → …), so this bounds what fewer hops would save.
 *
 * Run: `deno task bench wake-cost`. Env: BENCH_ROUNDS (default 1000 spaced round trips).
 * @module
 */
import { table } from "./stats.ts";

const ROUNDS = Number(Deno.env.get("BENCH_ROUNDS") ?? 1000);

/** CPU ms of this process, every thread. */
function cpuMs(): number {
  let t = 0;
  for (const e of Deno.readDirSync(`/proc/${Deno.pid}/task`)) {
    try {
      const s = Deno.readTextFileSync(`/proc/${Deno.pid}/task/${e.name}/stat`);
      const f = s.slice(s.lastIndexOf(")") + 2).split(" ");
      t += (Number(f[11]) + Number(f[12])) * 10;
    } catch { /* exited */ }
  }
  return t;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Runs the measurement and prints it. */
export async function main(): Promise<void> {
  const w = new Worker(new URL("./wake_cost_worker.ts", import.meta.url).href, { type: "module" });
  const roundTrip = () =>
    new Promise<void>((r) => {
      w.onmessage = () => r();
      w.postMessage(1);
    });
  try {
    for (let i = 0; i < 2000; i++) await roundTrip(); // warm-up
    const rows: (string | number)[][] = [];
    const measure = async (what: string, n: number, one: () => Promise<unknown>) => {
      const c0 = cpuMs(), t0 = performance.now();
      for (let i = 0; i < n; i++) await one();
      const cpu = (cpuMs() - c0) / n * 1000, wall = (performance.now() - t0) / n * 1000;
      rows.push([what, n, Math.round(cpu), Math.round(wall)]);
    };
    await measure("round trip, back to back", ROUNDS * 20, roundTrip);
    for (const gap of [1, 5]) {
      await measure(`timer ${gap} ms alone`, ROUNDS, () => sleep(gap));
      await measure(`timer ${gap} ms, then a round trip`, ROUNDS, async () => {
        await sleep(gap);
        await roundTrip();
      });
    }
    console.log(`\nThread wake-ups, load average ${Deno.loadavg()[0].toFixed(1)}`);
    table(["what", "n", "CPU µs each", "wall µs each"], rows);
  } finally {
    w.terminate();
  }
}

if (import.meta.main) await main();
