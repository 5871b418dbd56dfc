/**
 * The writer's apply alone (issue 13): the replication writer plugin applying stream batches of
 * 500 changesets synchronously on an in-memory database, in this process (no worker, no NATS),
 * rows per CPU-second. Loads: BENCH_SINGLE single-row changesets (default 20,000) and BENCH_ROWS
 * rows in 1000-row changesets (default 100,000), made by a real node.
 *
 * BENCH_BASELINE=/path/to/another/checkout alternates rounds of that checkout's plugin and this
 * one's on the same payloads in one process (A/B without the machine's load drifting between
 * runs). BENCH_ROUNDS rounds (default 6). Run: `deno task bench apply-batch`.
 * @module
 */
import process from "node:process";
import { DatabaseSync } from "node:sqlite";
import type { PluginFactory } from "../src/engine/mod.ts";
import { findInterruptExtension } from "../src/engine/native/locate.ts";
import type { ApplyMessage, ApplyResult } from "../src/replication/plugin_api.ts";
import { close, node, sql } from "../tests/unit/helpers/replication_nodes.ts";

const SINGLE = Number(Deno.env.get("BENCH_SINGLE") ?? 20_000);
const ROWS = Number(Deno.env.get("BENCH_ROWS") ?? 100_000);
const ROUNDS = Number(Deno.env.get("BENCH_ROUNDS") ?? 6);
const BASELINE = Deno.env.get("BENCH_BASELINE");
const BATCH = 500;
/** `ha_interrupt.so` loaded into the database as a node does (its capture switch); BENCH_NO_EXT=1: not. */
const EXT = Deno.env.get("BENCH_NO_EXT") === "1" ? null : await findInterruptExtension();

/** `count` changesets of `per` rows each (the first message creates the table). */
async function payloads(count: number, per: number): Promise<ApplyMessage[]> {
  const a = await node("a");
  await sql(a, "CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)");
  for (let i = 0; i < count; i++) {
    await sql(
      a,
      `WITH RECURSIVE c(x) AS (SELECT ? UNION ALL SELECT x + 1 FROM c WHERE x < ?)
       INSERT INTO t(id, v) SELECT x, 'value ' || x FROM c`,
      [i * per + 1, (i + 1) * per],
    );
  }
  const msgs = a.out.splice(0).map((p, i) => ({ seq: i + 1, subject: "s", data: p.data }));
  await close(a);
  return msgs;
}

/** Rows per CPU-second of one apply of `msgs` into a new database. */
async function once(factory: PluginFactory, msgs: ApplyMessage[], rows: number): Promise<number> {
  const db = new DatabaseSync(":memory:", { allowExtension: true });
  if (EXT) db.loadExtension(EXT);
  const options = {
    node: "b",
    incarnation: "i",
    rowIdentify: "pk",
    disableDdlSync: false,
    memory: true,
    outboxDir: null,
    maxPayload: 0,
  };
  const plugin = await factory({ db, databaseId: "bench", options });
  const apply = plugin.commands!.apply as (m: ApplyMessage[]) => ApplyResult;
  const c0 = process.cpuUsage();
  for (let i = 0; i < msgs.length; i += BATCH) {
    const r = apply(msgs.slice(i, i + BATCH));
    if (r.error || r.deadLetters?.length) throw new Error(JSON.stringify(r));
  }
  const c = process.cpuUsage(c0);
  db.close();
  return Math.round(rows / ((c.user + c.system) / 1e6));
}

async function pluginOf(root: string): Promise<PluginFactory> {
  return (await import(`${root}/src/replication/writer_plugin.ts`)).default;
}

/** Runs both loads and prints rows per CPU-second per round. */
export async function main(): Promise<void> {
  const mine = await pluginOf(new URL("..", import.meta.url).href.replace(/\/$/, ""));
  const base = BASELINE ? await pluginOf(`file://${BASELINE}`) : null;
  for (const [name, count, per] of [["single-row", SINGLE, 1], ["1000-row", ROWS / 1000, 1000]]) {
    const msgs = await payloads(count as number, per as number);
    const rows = (count as number) * (per as number);
    const a: number[] = [], b: number[] = [];
    for (let r = 0; r < ROUNDS; r++) {
      if (base) b.push(await once(base, msgs, rows));
      a.push(await once(mine, msgs, rows));
    }
    console.log(
      `${name} changesets (${rows} rows), rows per CPU-second per round: ${a.join(" ")}` +
        (base ? `; baseline ${BASELINE}: ${b.join(" ")}` : ""),
    );
  }
}

if (import.meta.main) await main();
