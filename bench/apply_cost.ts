/**
 * CPU of one live apply (issue 13): an in-memory engine with the replication plugin applies
 * single-row remote changesets one batch at a time through `applyPacked`, as the subscriber
 * sends them, either back to back or with a pause between batches (`BENCH_GAP_MS`, default 3:
 * both threads fall asleep between batches, as on a replica at a few hundred changesets/s).
 * Prints µs of CPU per batch of the main thread and of the other threads (the writer worker, V8
 * helpers) from `/proc`, per way; rounds alternate.
 *
 * Run: `deno task bench apply-cost`. Env: BENCH_ROUNDS (6), BENCH_APPLIES (1000 per round),
 * BENCH_GAP_MS (3), BENCH_GAP_ONLY=1 (every round with the pause). For an A/B, copy this file
 * into the other checkout's bench/ and alternate runs.
 * @module
 */
import { node, sql, type TestNode } from "../tests/unit/helpers/replication_nodes.ts";
import { replicationClient } from "../src/replication/plugin_api.ts";
import { pack } from "../src/replication/packed.ts";

const ROUNDS = Number(Deno.env.get("BENCH_ROUNDS") ?? 6);
const APPLIES = Number(Deno.env.get("BENCH_APPLIES") ?? 1000);
const GAP_MS = Number(Deno.env.get("BENCH_GAP_MS") ?? 3);

/** CPU ms of this process: [main thread, all other threads]. */
function cpu(): [number, number] {
  let main = 0, other = 0;
  for (const t of Deno.readDirSync(`/proc/${Deno.pid}/task`)) {
    try {
      const s = Deno.readTextFileSync(`/proc/${Deno.pid}/task/${t.name}/stat`);
      const f = s.slice(s.lastIndexOf(")") + 2).split(" ");
      const ms = (Number(f[11]) + Number(f[12])) * 10;
      if (Number(t.name) === Deno.pid) main += ms;
      else other += ms;
    } catch { /* exited */ }
  }
  return [main, other];
}

/** Remote single-row changesets made on `a`. */
async function changesets(a: TestNode, n: number): Promise<Uint8Array[]> {
  for (let i = 0; i < n; i++) await sql(a, "INSERT INTO t(id, v) VALUES (?, ?)", [i, `v${i}`]);
  const enc = new TextEncoder();
  return a.out.splice(0).map((p) => enc.encode(p.data));
}

/** Runs the rounds and prints them. */
export async function main(): Promise<void> {
  const a = await node("a");
  const b = await node("b");
  try {
    for (const n of [a, b]) await sql(n, "CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)");
    a.out.length = 0;
    const data = await changesets(a, ROUNDS * APPLIES);
    const rep = replicationClient(b.engine.defaultDb);
    let seq = 0;
    for (let round = 0; round < ROUNDS; round++) {
      const gap = round % 2 === 0 && !Deno.env.get("BENCH_GAP_ONLY") ? 0 : GAP_MS;
      const [m0, o0] = cpu();
      const t0 = performance.now();
      for (let i = 0; i < APPLIES; i++) {
        const s = ++seq;
        const r = await rep.sendNext("applyPacked", () => {
          const pk = pack("s", [{ seq: s, data: data[s - 1] }]);
          if (s > 1) pk.after = s - 1;
          return pk;
        }, Deno.env.get("BENCH_COPY") ? undefined : (pk) => [pk.buf]);
        if (r.applied !== 1) throw new Error(`not applied: ${JSON.stringify(r)}`);
        if (gap > 0) await new Promise((res) => setTimeout(res, gap));
      }
      const [m1, o1] = cpu();
      const us = (ms: number) => (ms / APPLIES * 1000).toFixed(0);
      console.log(
        `gap ${gap} ms: main ${us(m1 - m0)} µs, other threads ${us(o1 - o0)} µs per apply ` +
          `(${((performance.now() - t0) / APPLIES).toFixed(2)} ms wall each)`,
      );
    }
  } finally {
    await a.engine.close();
    await b.engine.close();
  }
}

if (import.meta.main) await main();
