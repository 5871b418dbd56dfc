/**
 * The interceptor in the apply path (`applyIntercepted` + the writer plugin), without NATS:
 * beforeApply skip/rewrite, conflict detection and resolutions (local, remote, merged values,
 * default), afterApply swallowing an error, and the merge_counters example converging.
 */
import assert from "node:assert/strict";
import { createLogger } from "../../src/log/mod.ts";
import { testInterceptor } from "../../src/interceptor/testing.ts";
import type { InterceptorHost } from "../../src/interceptor/mod.ts";
import { applyIntercepted } from "../../src/replication/apply_intercepted.ts";
import {
  type ApplyMessage,
  type ApplyResult,
  replicationClient,
} from "../../src/replication/plugin_api.ts";
import {
  close,
  forget,
  node,
  rows,
  sql,
  take,
  type TestNode,
} from "./helpers/replication_nodes.ts";

const logger = createLogger("error");
function apply(host: InterceptorHost, to: TestNode, msgs: ApplyMessage[]): Promise<ApplyResult> {
  const o = { host, db: to.engine.defaultDb, self: { node: to.name }, logger };
  return applyIntercepted({ ...o, consumer: "test" }, msgs);
}

async function pair(schema: string): Promise<[TestNode, TestNode]> {
  const a = await node("a");
  const b = await node("b");
  await sql(a, schema);
  await sql(b, schema);
  forget(a, b);
  return [a, b];
}

Deno.test("beforeApply: skip records progress; rewrite applies the new changes", async () => {
  await using t = await testInterceptor(`
export const beforeApply = (cs) => {
  const c = cs.changes[0];
  if (c.new_values?.[1] === "skip me") return { skip: true };
  if (c.new_values?.[1] === "shout") {
    return { changeset: { ...cs, changes: [{ ...c, new_values: [c.new_values[0], "SHOUT"] }] } };
  }
};`);
  const [a, b] = await pair("CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)");
  await sql(a, "INSERT INTO t VALUES (1, 'skip me')");
  await sql(a, "INSERT INTO t VALUES (2, 'shout')");
  await sql(a, "INSERT INTO t VALUES (3, 'plain')");
  const msgs = take(a);
  const r = await apply(t.host, b, msgs);
  assert.equal(r.error, null);
  assert.equal(r.through, msgs.at(-1)!.seq);
  assert.equal(await rows(b, "SELECT id, v FROM t ORDER BY id"), '[["2","SHOUT"],["3","plain"]]');
  const progress = await replicationClient(b.engine.defaultDb).call("progress", "s");
  assert.equal(progress, msgs.at(-1)!.seq);
  await close(a, b);
});

Deno.test("resolveConflict: local, remote, merged values and default", async () => {
  await using t = await testInterceptor(`
export const resolveConflict = (c) => {
  const id = c.local.values?.[0] ?? c.remote.values?.[0];
  if (id === 1n) return "local";
  if (id === 2n) return "remote";
  if (id === 3n) return { values: [3n, c.local.values[1] + "+" + c.remote.values[1]] };
  return undefined;
};`);
  const [a, b] = await pair("CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)");
  await sql(a, "INSERT INTO t VALUES (1, 'x'), (2, 'x'), (3, 'x'), (4, 'x')");
  assert.equal((await apply(t.host, b, take(a))).error, null);
  // b writes first (older), a later (newer): default LWW keeps a's
  await sql(b, "UPDATE t SET v = 'b'");
  await new Promise((r) => setTimeout(r, 5));
  await sql(a, "UPDATE t SET v = 'a'");
  forget(b);
  const r = await apply(t.host, b, take(a));
  assert.equal(r.error, null);
  assert.equal(
    await rows(b, "SELECT id, v FROM t ORDER BY id"),
    '[["1","b"],["2","a"],["3","b+a"],["4","a"]]',
  );
  await close(a, b);
});

Deno.test("afterApply swallows a failing changeset; progress recorded", async () => {
  await using t = await testInterceptor(`export const afterApply = () => ({ error: null });`);
  const a = await node("a");
  const b = await node("b");
  await sql(a, "CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)");
  await sql(a, "INSERT INTO t VALUES (1, 'x')");
  const [create, insert] = take(a);
  // b lacks the table: the INSERT fails, the hook swallows it
  const r = await apply(t.host, b, [insert]);
  assert.equal(r.error, null);
  assert.equal(r.through, insert.seq);
  assert.equal(await replicationClient(b.engine.defaultDb).call("progress", "s"), insert.seq);
  void create;
  await close(a, b);
});

Deno.test("merge_counters: concurrent increments on three nodes add up", async () => {
  const file = new URL("../../interceptors/merge_counters.ts", import.meta.url).pathname;
  await using t = await testInterceptor(await Deno.readTextFile(file));
  const schema = "CREATE TABLE counters(id INTEGER PRIMARY KEY, count INTEGER, who TEXT)";
  const ns = [await node("n1"), await node("n2"), await node("n3")];
  for (const n of ns) {
    await sql(n, schema);
    await sql(n, "INSERT INTO counters VALUES (1, 0, 'none')");
    forget(n);
  }
  for (let i = 0; i < 5; i++) {
    for (const n of ns) {
      await sql(n, "UPDATE counters SET count = count + 1, who = ? WHERE id = 1", [n.name]);
    }
  }
  const outs = ns.map((n) => take(n));
  for (const [i, n] of ns.entries()) {
    for (const [j, msgs] of outs.entries()) {
      if (i !== j) assert.equal((await apply(t.host, n, msgs)).error, null);
    }
  }
  const results = await Promise.all(ns.map((n) => rows(n, "SELECT count, who FROM counters")));
  assert.equal(results[0], '[["15","n3"]]');
  assert.deepEqual(new Set(results).size, 1, results.join(" "));
  await close(...ns);
});

Deno.test("a row changed twice by one changeset: resolved once on its net effect", async () => {
  // "local" only when the hook sees the changeset's net effect on row 1 (inserted as 'a2');
  // counters merge the whole changeset's increment. 30 s per call: on a busy machine a slow hook
  // must not turn its answer into the default.
  await using t = await testInterceptor(
    `
export const resolveConflict = (c) => {
  if (c.table === "t") {
    const net = c.remote.operation === "INSERT" && c.remote.values?.[1] === "a2";
    return net ? "local" : "remote";
  }
  const [l, n, o] = [c.local.values[1], c.remote.values[1], c.remote.old_values[1]];
  return { values: [c.local.values[0], l + (n - o)] };
};`,
    { timeoutMs: 30_000 },
  );
  const [a, b] = await pair(
    "CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT); CREATE TABLE c(id INTEGER PRIMARY KEY, n INTEGER)",
  );
  await sql(a, "INSERT INTO c VALUES (1, 10)");
  assert.equal((await apply(t.host, b, take(a))).error, null);
  await sql(b, "INSERT INTO t VALUES (1, 'b local')");
  await sql(b, "UPDATE c SET n = n + 5");
  // One transaction on a: row 1 of t inserted then changed, counter 1 incremented twice.
  await a.engine.defaultDb.execute([
    { sql: "INSERT INTO t VALUES (1, 'a1')" },
    { sql: "UPDATE t SET v = 'a2' WHERE id = 1" },
    { sql: "UPDATE c SET n = n + 1" },
    { sql: "UPDATE c SET n = n + 1" },
  ]);
  assert.equal((await apply(t.host, b, take(a))).error, null);
  assert.equal(await rows(b, "SELECT id, v FROM t"), '[["1","b local"]]');
  assert.equal(await rows(b, "SELECT id, n FROM c"), '[["1","17"]]');
  // The kept row's record shows the changeset's net image of it, not its first change's.
  assert.equal(
    await rows(b, "SELECT resolution, loser_values FROM _ha_conflicts WHERE tbl = 't'"),
    '[["interceptor:local","[1,\\"a2\\"]"]]',
  );
  await close(a, b);
});
