/**
 * What a thread wake-up costs on this machine (issue 13, lag): CPU of this process (every thread,
 * `/proc`) per main thread → worker → main thread round trip, back to back (neither thread sleeps)
 * and spaced by a timer of 1 or 5 ms (both sleep between round trips, like the hops of one
 * replicated write at a moderate rate), and per timer alone. Every replicated write crosses threads
 * and processes about a dozen times (HTTP → main → writer → main → nats-server → each replica's
 * main → its writer → …), so this bounds what fewer hops would save.
 *
 * Ways to wake the worker (`BENCH_VARIANTS`, comma-separated, default all), each round trip
 * carrying a small request object like a writer command:
 * - `post`: `postMessage` both ways (structured clone), as the engine does;
 * - `post-buffer`: the request v8-serialized into an `ArrayBuffer` moved (transferred) both ways;
 * - `sab-wait`: the request v8-serialized into a `SharedArrayBuffer`, `Atomics.notify`; the worker
 *   blocks in `Atomics.wait` (its event loop does not run) and answers by `postMessage`;
 * - `sab-waitasync`: the same, the worker awaiting `Atomics.waitAsync` (its event loop runs);
 * - `sab-both`: `sab-wait`, the answer through the same buffer, the main thread awaiting
 *   `Atomics.waitAsync`.
 *
 * Run: `deno task bench wake-cost`. Env: BENCH_ROUNDS (default 1000 spaced round trips per
 * measure), BENCH_REPEAT (default 1: alternating rounds over the variants).
 * @module
 */
import { deserialize, serialize } from "node:v8";
import { table } from "./stats.ts";

const ROUNDS = Number(Deno.env.get("BENCH_ROUNDS") ?? 1000);
const REPEAT = Number(Deno.env.get("BENCH_REPEAT") ?? 1);
const ALL = ["post", "post-buffer", "sab-wait", "sab-waitasync", "sab-both"];
const VARIANTS = (Deno.env.get("BENCH_VARIANTS") ?? ALL.join(",")).split(",");

/** CPU ms and voluntary context switches (sleeps) of this process, every thread. */
function usage(): { cpu: number; main: number; sleeps: number } {
  let cpu = 0, main = 0, sleeps = 0;
  for (const e of Deno.readDirSync(`/proc/${Deno.pid}/task`)) {
    try {
      const s = Deno.readTextFileSync(`/proc/${Deno.pid}/task/${e.name}/stat`);
      const f = s.slice(s.lastIndexOf(")") + 2).split(" ");
      const ms = (Number(f[11]) + Number(f[12])) * 10;
      cpu += ms;
      if (e.name === String(Deno.pid)) main += ms;
      const st = Deno.readTextFileSync(`/proc/${Deno.pid}/task/${e.name}/status`);
      sleeps += Number(/voluntary_ctxt_switches:\s+(\d+)/.exec(st)?.[1] ?? 0);
    } catch { /* exited */ }
  }
  return { cpu, main, sleeps };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A request the size and shape of a small writer command. */
const request = (id: number) => ({
  id,
  kind: "exec",
  sql: "INSERT INTO t (id, v) VALUES (?, ?)",
  params: [id, "some text value"],
  opts: { timeoutMs: 5000 },
});

/** Starts a worker woken as `variant` wants; returns one round trip and a stop. */
function start(variant: string): { trip: () => Promise<unknown>; stop: () => void } {
  const w = new Worker(new URL("./wake_cost_worker.ts", import.meta.url).href, { type: "module" });
  let id = 0;
  let resolve: (v: unknown) => void = () => {};
  w.onmessage = (e) => resolve(e.data);
  const stop = () => w.terminate();
  if (variant === "post") {
    w.postMessage("post");
    return {
      trip: () => new Promise((r) => (resolve = r, w.postMessage(request(++id)))),
      stop,
    };
  }
  if (variant === "post-buffer") {
    w.postMessage("post");
    return {
      trip: () =>
        new Promise((r) => {
          resolve = (b) => r(deserialize(new Uint8Array(b as ArrayBuffer)));
          const buf = serialize(request(++id));
          const ab = new Uint8Array(buf).buffer; // a copy of its own, to move
          w.postMessage(ab, [ab]);
        }),
      stop,
    };
  }
  const sab = new SharedArrayBuffer(16 + 4096);
  const ctl = new Int32Array(sab, 0, 4), bytes = new Uint8Array(sab, 16);
  const wait = variant === "sab-waitasync" ? "async" : "sync";
  const reply = variant === "sab-both" ? "sab" : "post";
  w.postMessage({ sab, wait, reply });
  // `terminate()` does not wake a worker blocked in `Atomics.wait` (Deno 2.9: the process then
  // never exits): a negative length tells it to end.
  const stopSab = () => {
    ctl[1] = -1;
    Atomics.add(ctl, 0, 1);
    Atomics.notify(ctl, 0);
    stop();
  };
  const send = () => {
    const out = serialize(request(++id));
    bytes.set(out);
    ctl[1] = out.length;
    Atomics.add(ctl, 0, 1);
    Atomics.notify(ctl, 0);
  };
  if (reply === "post") {
    return { trip: () => new Promise((r) => (resolve = r, send())), stop: stopSab };
  }
  return {
    trip: async () => {
      const before = Atomics.load(ctl, 2);
      send();
      while (Atomics.load(ctl, 2) === before) {
        const r = Atomics.waitAsync(ctl, 2, before);
        if (r.async) await r.value;
      }
      return deserialize(bytes.subarray(0, ctl[3]));
    },
    stop: stopSab,
  };
}

/** Runs the measurement and prints it. */
export async function main(): Promise<void> {
  const workers = new Map(VARIANTS.map((v) => [v, start(v)]));
  try {
    for (const { trip } of workers.values()) for (let i = 0; i < 2000; i++) await trip(); // warm-up
    const rows: (string | number)[][] = [];
    const back = (v: string, cpu: number, sleeps: number, wall: number) =>
      rows.push([
        `${v}, back to back (wall ${Math.round(wall)} µs)`,
        Math.round(cpu),
        "",
        sleeps.toFixed(2),
      ]);
    for (const [v, { trip }] of workers) {
      const n = ROUNDS * 10, u0 = usage(), t0 = performance.now();
      for (let i = 0; i < n; i++) await trip();
      const u1 = usage();
      back(
        v,
        (u1.cpu - u0.cpu) / n * 1000,
        (u1.sleeps - u0.sleeps) / n,
        (performance.now() - t0) / n * 1000,
      );
    }
    // Spaced round trips: the variants (and the timer alone) interleaved in blocks of BLOCK, so
    // that the machine's load drifts over all of them alike.
    const BLOCK = 100;
    for (let round = 1; round <= REPEAT; round++) {
      for (const gap of [1, 5]) {
        const sum = new Map<string, { cpu: number; main: number; sleeps: number; n: number }>();
        const kinds: [string, () => Promise<unknown>][] = [
          ["timer alone", () => Promise.resolve()],
          ...[...workers].map(([v, w]) => [v, w.trip] as [string, () => Promise<unknown>]),
        ];
        for (let b = 0; b < ROUNDS / BLOCK; b++) {
          for (let k = 0; k < kinds.length; k++) {
            const [v, trip] = kinds[(k + b) % kinds.length];
            const u0 = usage();
            for (let i = 0; i < BLOCK; i++) {
              await sleep(gap);
              await trip();
            }
            const u1 = usage(), s = sum.get(v) ?? { cpu: 0, main: 0, sleeps: 0, n: 0 };
            s.cpu += u1.cpu - u0.cpu, s.main += u1.main - u0.main;
            s.sleeps += u1.sleeps - u0.sleeps, s.n += BLOCK;
            sum.set(v, s);
          }
        }
        const t = sum.get("timer alone")!;
        for (const [v, s] of sum) {
          const cpu = s.cpu / s.n * 1000, main = s.main / s.n * 1000;
          const net = v === "timer alone"
            ? ""
            : ` (trip ≈ ${Math.round(cpu - t.cpu / t.n * 1000)})`;
          rows.push([
            `r${round} timer ${gap} ms, ${v}${net}`,
            Math.round(cpu),
            Math.round(main),
            (s.sleeps / s.n).toFixed(2),
          ]);
        }
      }
    }
    console.log(
      `\nThread wake-ups, load average ${Deno.loadavg().map((l) => l.toFixed(1)).join(" ")}`,
    );
    table(["what", "CPU µs each", "main thread µs", "sleeps each"], rows);
  } finally {
    for (const { stop } of workers.values()) stop();
  }
}

if (import.meta.main) await main();
