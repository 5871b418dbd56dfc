/**
 * Where the main thread allocates during `pg-insert`: V8's sampling heap profiler over the
 * inspector, counting objects collected by minor and major GCs too (garbage, not only live
 * objects). Prints bytes allocated per insert by function (self) and by inclusive stack.
 *
 * Env: as `pg_insert.ts` (BENCH_SECONDS, BENCH_CLIENTS, BENCH_REPLICATE=0, BENCH_MODE);
 * BENCH_SCRIPT=select for point selects (`BENCH_ROWS` accounts); `--top N`.
 * Run: `deno run -A --unstable-worker-options bench/heap_sample.ts` (not in `bench/mod.ts`: a
 * profiling tool, no figure to compare).
 * @module
 */
import { freePort } from "../tests/integration/helpers/ha.ts";
import { pgbench, psql, SECONDS, setup, startHaTarget } from "./pgbench.ts";

interface HeapNode {
  callFrame: { functionName: string; url: string; lineNumber: number };
  selfSize: number;
  children: HeapNode[];
}

const SCRIPT = Deno.env.get("BENCH_SCRIPT") ?? "insert";
const TOP = Number(Deno.args[Deno.args.indexOf("--top") + 1] || 30);

function label(n: HeapNode): string {
  const f = n.callFrame;
  const file = f.url.replace(/^.*\/(src|bench|node_modules|ext|lib)\//, "$1/");
  return `${f.functionName || "(anonymous)"} ${file}:${f.lineNumber + 1}`;
}

async function inspector(port: number): Promise<(m: string, p?: unknown) => Promise<unknown>> {
  let list: { webSocketDebuggerUrl: string }[] = [];
  for (let i = 0; i < 50 && list.length === 0; i++) {
    try {
      list = await (await fetch(`http://127.0.0.1:${port}/json/list`)).json();
    } catch {
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  const ws = new WebSocket(list[0].webSocketDebuggerUrl);
  await new Promise((r) => ws.onopen = r);
  let id = 0;
  const waiting = new Map<number, (v: unknown) => void>();
  ws.onmessage = (e) => {
    const m = JSON.parse(e.data);
    if (m.id !== undefined) waiting.get(m.id)?.(m.result ?? m.error);
  };
  return (method, params) =>
    new Promise((r) => {
      waiting.set(++id, r);
      ws.send(JSON.stringify({ id, method, params }));
    });
}

/** Runs pgbench inserts under the sampling heap profiler and prints bytes per insert. */
export async function main(): Promise<void> {
  const port = freePort();
  const dir = await Deno.makeTempDir({ prefix: "ha-heap-" });
  const ha = await startHaTarget(dir, Deno.env.get("BENCH_REPLICATE") !== "0", [
    `--inspect=127.0.0.1:${port}`,
  ]);
  try {
    const send = await inspector(port);
    if (SCRIPT === "select") await setup(ha);
    else await psql(ha, "CREATE TABLE history(id INTEGER PRIMARY KEY, aid INTEGER, delta INTEGER)");
    await send("HeapProfiler.enable");
    await send("HeapProfiler.startSampling", {
      samplingInterval: 256,
      includeObjectsCollectedByMajorGC: true,
      includeObjectsCollectedByMinorGC: true,
    });
    const tps = await pgbench(ha, SCRIPT, Deno.env.get("BENCH_MODE") ?? "prepared");
    const { profile } = await send("HeapProfiler.stopSampling") as { profile: { head: HeapNode } };
    const inserts = tps * SECONDS;
    const self = new Map<string, number>();
    const incl = new Map<string, number>();
    let total = 0;
    const callers = new Map<string, number>();
    const walk = (n: HeapNode, stack: Set<string>, path: string[] = []): number => {
      const l = label(n);
      self.set(l, (self.get(l) ?? 0) + n.selfSize);
      const here = [...path.slice(-3), l].join(" < ");
      if (n.selfSize > 0) callers.set(here, (callers.get(here) ?? 0) + n.selfSize);
      let sum = n.selfSize;
      const inner = new Set(stack).add(l);
      for (const c of n.children) sum += walk(c, inner, [...path, l]);
      if (!stack.has(l)) incl.set(l, (incl.get(l) ?? 0) + sum);
      return sum;
    };
    total = walk(profile.head, new Set());
    console.log(`tps ${tps.toFixed(0)}, ${(total / inserts).toFixed(0)} bytes sampled per insert`);
    const show = (title: string, m: Map<string, number>) => {
      console.log(`-- ${title}`);
      for (const [k, v] of [...m].sort((a, b) => b[1] - a[1]).slice(0, TOP)) {
        console.log(`${(v / inserts).toFixed(0).padStart(7)} B/insert  ${k}`);
      }
    };
    show("self", self);
    show("inclusive", incl);
    show("self by the last four frames", callers);
  } finally {
    await ha.stop();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}

if (import.meta.main) await main();
