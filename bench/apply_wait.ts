/**
 * An apply queued behind local group commits (issue 13, "→ writer lock" and "→ apply starts"):
 * one in-memory engine with the replication plugin, 32 clients writing single-row INSERTs in a
 * loop (group commits always in flight), and single-row remote changesets applied one at a time,
 * ~1 ms apart. Rounds alternate between the two ways the subscriber can send an apply: holding
 * the writer lock until the answer (`locked`, main before issue 13's change) and freeing it once
 * sent (`sendNext`: the apply waits in the writer thread behind the group in flight). Reported:
 * apply call → result p50 / p99 per way, and the local writes/s meanwhile.
 *
 * Run: `deno task bench apply-wait`. Env: BENCH_ROUNDS (default 6), BENCH_APPLIES (per round,
 * default 500).
 * @module
 */
import { node, sql, type TestNode } from "../tests/unit/helpers/replication_nodes.ts";
import { replicationClient } from "../src/replication/plugin_api.ts";
import { percentile, table } from "./stats.ts";

const ROUNDS = Number(Deno.env.get("BENCH_ROUNDS") ?? 6);
const APPLIES = Number(Deno.env.get("BENCH_APPLIES") ?? 500);
const CLIENTS = 32;

/** Remote single-row changesets made on `a`. */
async function changesets(a: TestNode, n: number): Promise<string[]> {
  for (let i = 0; i < n; i++) await sql(a, "INSERT INTO t(id, v) VALUES (?, ?)", [1e9 + i, "r"]);
  return a.out.splice(0).map((p) => p.data);
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
    let stop = false;
    let writes = 0;
    let nextId = 0;
    const clients = Array.from({ length: CLIENTS }, async () => {
      while (!stop) {
        await sql(b, "INSERT INTO t(id, v) VALUES (?, ?)", [++nextId, "local"]);
        writes++;
      }
    });
    const took: Record<string, number[]> = { locked: [], sendNext: [] };
    const rate: Record<string, number[]> = { locked: [], sendNext: [] };
    let seq = 0;
    for (let round = 0; round < ROUNDS; round++) {
      const way = round % 2 === 0 ? "locked" : "sendNext";
      const [w0, t0] = [writes, performance.now()];
      for (let i = 0; i < APPLIES; i++) {
        const msgs = [{ seq: ++seq, subject: "s", data: data[seq - 1] }];
        const at = performance.now();
        const r = way === "locked"
          ? await rep.locked((call) => call("apply", msgs))
          : await rep.sendNext("apply", () => msgs);
        took[way].push(performance.now() - at);
        if (r.error) throw new Error(r.error.message);
        await new Promise((res) => setTimeout(res, 1));
      }
      rate[way].push((writes - w0) / ((performance.now() - t0) / 1000));
    }
    stop = true;
    await Promise.all(clients);
    console.log(
      `\nApply of a 1-row changeset behind local group commits (${CLIENTS} clients), ` +
        `${ROUNDS} alternating rounds of ${APPLIES}`,
    );
    table(
      ["way", "applies", "p50 ms", "p99 ms", "local writes/s"],
      Object.entries(took).map(([way, t]) => {
        t.sort((x, y) => x - y);
        const w = rate[way].reduce((s, x) => s + x, 0) / rate[way].length;
        return [way, t.length, percentile(t, 0.5), percentile(t, 0.99), w];
      }),
    );
  } finally {
    await a.engine.close();
    await b.engine.close();
  }
}

if (import.meta.main) await main();
