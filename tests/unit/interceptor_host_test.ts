/**
 * Hook semantics through the real sandbox: results, value fidelity, strict shape validation
 * with fallbacks, batching, ctx.query (read-only), ctx.log and console routing.
 */
import assert from "node:assert/strict";
import { openEngine, type Params } from "../../src/engine/mod.ts";
import { createLogger } from "../../src/log/mod.ts";
import type { QueryFn } from "../../src/interceptor/mod.ts";
import {
  sampleChangeSet,
  sampleConflicts,
  testInterceptor,
} from "../../src/interceptor/testing.ts";
import type { ChangeSet } from "../../interceptors/mod.ts";

const API = JSON.stringify(new URL("../../interceptors/mod.ts", import.meta.url).pathname);

/** A ctx.query served by a real engine's read-only execute, as the node does. */
async function engineQuery(setup: string): Promise<
  { query: QueryFn; seen: string[]; close: () => Promise<void> }
> {
  const engine = await openEngine({
    dsns: [],
    memory: true,
    concurrentQueries: 4,
    logger: createLogger("error"),
  });
  await engine.defaultDb.execute([{ sql: setup }]);
  const seen: string[] = [];
  const query: QueryFn = async (dbName, sql, params) => {
    seen.push(`${dbName}: ${sql}`);
    const [r] = await engine.defaultDb.execute([{ sql, params: params as Params }], {
      readOnly: true,
    });
    return { columns: r.columns.map((c) => c.name), rows: r.rows };
  };
  return { query, seen, close: () => engine.close() };
}

Deno.test("beforeApply: undefined, skip and rewrite keep exact values", async () => {
  await using t = await testInterceptor(`
import type { BeforeApply } from ${API};
export const beforeApply: BeforeApply = (cs, ctx) => {
  if (cs.node === "skip") return { skip: true };
  if (cs.node === "same") return undefined;
  return { changeset: { ...cs, node: "ignored", changes: cs.changes.map((c) => ({
    ...c,
    new_values: [c.new_values![0] as bigint * 2n ** 62n, c.new_values![1] + "!", 1.0,
      new Uint8Array([...(c.new_values![3] as Uint8Array), 255])],
  })) } };
};`);
  const cs = sampleChangeSet(2);
  assert.deepEqual(await t.host.beforeApply({ ...cs, node: "skip" }, "ha.db"), { skip: true });
  const same = await t.host.beforeApply({ ...cs, node: "same" }, "ha.db");
  assert.deepEqual(same, { skip: false, changeset: { ...cs, node: "same" }, rewritten: false });
  const out = await t.host.beforeApply(cs, "ha.db");
  assert.equal(out.skip, false);
  if (out.skip) return;
  assert.equal(out.rewritten, true);
  assert.equal(out.changeset.node, "node2"); // only `changes` are taken from the hook
  assert.deepEqual(out.changeset.changes[1].new_values, [
    2n * 2n ** 62n,
    "row 1!",
    1,
    new Uint8Array([1, 255]),
  ]);
  assert.equal(t.host.failures, 0);
});

Deno.test("afterApply: keep, swallow, replace", async () => {
  await using t = await testInterceptor(`
export function afterApply(cs, err) {
  if (!err) return undefined;
  if (err.message === "swallow") return { error: null };
  return { error: "replaced: " + err.message };
}`);
  const cs = sampleChangeSet(1);
  assert.equal(await t.host.afterApply(cs, null, "ha.db"), null);
  assert.equal(await t.host.afterApply(cs, { message: "swallow" }, "ha.db"), null);
  assert.deepEqual(await t.host.afterApply(cs, { message: "x" }, "ha.db"), {
    message: "replaced: x",
  });
});

Deno.test("resolveConflicts: one round trip per changeset, per-item fallback", async () => {
  await using t = await testInterceptor(`
let calls = 0;
export function resolveConflict(c, ctx) {
  calls++;
  const id = c.remote.values[0];
  if (id === 1n) return "local";
  if (id === 2n) return "remote";
  if (id === 3n) return { values: [id, "merged " + calls, 0.5, null] };
  if (id === 4n) throw new Error("cannot decide " + id);
  if (id === 5n) return { values: [id] };
  return undefined;
}`);
  const cs = sampleChangeSet(6);
  const res = await t.host.resolveConflicts(sampleConflicts(cs), "ha.db");
  assert.deepEqual(res, [
    "local",
    "remote",
    { values: [3n, "merged 3", 0.5, null] },
    undefined,
    undefined,
    undefined,
  ]);
  const s = t.host.stats();
  assert.equal(s.calls, 1, "one sandbox call for the whole batch");
  assert.equal(s.failures, 2);
  assert.equal(s.byKind.threw, 1);
  assert.equal(s.byKind.invalid, 1);
  const err = t.logs.filter((l) => l.level === "error");
  assert.equal(err.length, 1, "one log line per batch");
  assert.equal(err[0].hook, "resolveConflict");
  assert.equal(err[0].failed, 2);
  assert.equal(err[0].of, 6);
  assert.equal(err[0].fallback, "last writer wins");
  assert.match(String(err[0].at), /interceptor\.ts:9:\d+$/);
  // No conflicts: no call at all.
  assert.deepEqual(await t.host.resolveConflicts([], "ha.db"), []);
  assert.equal(t.host.stats().calls, 1);
});

Deno.test("hooks that are not exported cost nothing and return defaults", async () => {
  await using t = await testInterceptor(`export const afterApply = () => undefined;`);
  const cs = sampleChangeSet(1);
  assert.equal(t.host.has("beforeApply"), false);
  assert.deepEqual(await t.host.beforeApply(cs, "d"), {
    skip: false,
    changeset: cs,
    rewritten: false,
  });
  assert.deepEqual(await t.host.resolveConflicts(sampleConflicts(cs), "d"), [undefined]);
  assert.equal(t.host.stats().calls, 0);
});

Deno.test("invalid results are rejected with a reason and fall back", async () => {
  await using t = await testInterceptor(`
export function beforeApply(cs) {
  switch (cs.node) {
    case "null": return null;
    case "skipfalse": return { skip: false };
    case "typo": return { skipp: true };
    case "badvalue": return { changeset: { changes: [{ ...cs.changes[0], new_values: [1, 2] }] } };
    case "function": return () => 1;
    case "symbol": return { skip: Symbol("x") };
  }
}
export function afterApply() { return { error: 42 }; }`);
  const cs = sampleChangeSet(1);
  const expected = { skip: false, changeset: cs, rewritten: false };
  for (const node of ["null", "skipfalse", "typo", "badvalue", "function", "symbol"]) {
    const c = { ...cs, node };
    assert.deepEqual(await t.host.beforeApply(c, "ha.db"), { ...expected, changeset: c }, node);
  }
  assert.deepEqual(await t.host.afterApply(cs, { message: "orig" }, "ha.db"), { message: "orig" });
  const reasons = t.logs.filter((l) => l.level === "error").map((l) => String(l.reason));
  assert.equal(reasons.length, 7);
  assert.match(reasons[0], /expected undefined, \{skip: true\} or \{changeset\}, got null/);
  assert.match(reasons[1], /skip must be true/);
  assert.match(reasons[2], /keys \[skipp\]/);
  assert.match(reasons[3], /changes\[0\]\.new_values has 2 values for 4 columns/);
  assert.match(reasons[4], /cannot be sent to ha/);
  assert.match(reasons[5], /cannot be sent to ha/);
  assert.match(reasons[6], /error must be null or a non-empty string/);
  assert.equal(t.host.stats().byKind.invalid, 7);
  assert.equal(t.host.stats().byKind.threw, 0);
});

Deno.test("a throwing hook falls back, its worker is replaced, later calls work", async () => {
  await using t = await testInterceptor(`
import type { BeforeApply } from ${API};
let n = 0;
export const beforeApply: BeforeApply = (cs) => {
  n++;
  if (cs.node === "throw") throw new RangeError("bad node " + n);
  if (cs.node === "string") throw "just a string";
  if (cs.node === "reject") return Promise.reject(new Error("async no"));
  return { skip: true };
};`);
  const cs = sampleChangeSet(1);
  for (const node of ["throw", "string", "reject"]) {
    const out = await t.host.beforeApply({ ...cs, node }, "ha.db");
    assert.equal(out.skip, false, node);
  }
  assert.deepEqual(await t.host.beforeApply(cs, "ha.db"), { skip: true });
  const errs = t.logs.filter((l) => l.level === "error");
  assert.equal(errs.length, 3);
  assert.equal(errs[0].reason, "RangeError: bad node 1");
  assert.match(String(errs[0].at), /interceptor\.ts:6:\d+$/);
  assert.match(String(errs[0].stack), /at .*interceptor\.ts:6:\d+/);
  assert.doesNotMatch(String(errs[0].stack), /data:text/);
  assert.match(String(errs[1].reason), /non-Error thrown: just a string/);
  assert.equal(errs[2].reason, "Error: async no");
  assert.equal(t.host.stats().restarts, 3, "each throw replaces the worker");
  assert.equal(t.host.failures, 3);
});

Deno.test("ctx.query runs read-only SQL through the host; writes are rejected", async () => {
  const q = await engineQuery(
    "CREATE TABLE t(id INTEGER PRIMARY KEY, v); INSERT INTO t VALUES (1, 9007199254740993)",
  );
  await using t = await testInterceptor(
    `
import type { BeforeApply } from ${API};
export const beforeApply: BeforeApply = async (cs, ctx) => {
  const r = await ctx.query("SELECT id, v FROM t WHERE id = ?", [1n]);
  const named = await ctx.query("SELECT :x AS x", { x: "named" });
  let denied = "";
  try {
    await ctx.query("DELETE FROM t");
  } catch (e) {
    denied = (e as Error).message;
  }
  ctx.log("queried", { rows: r.rows, named: named.rows[0][0], denied, db: "spoofed" });
  return { skip: r.rows[0][1] === 9007199254740993n && denied !== "" };
};`,
    { query: q.query },
  );
  assert.deepEqual(await t.host.beforeApply(sampleChangeSet(1), "ha.db"), { skip: true });
  assert.deepEqual(q.seen, [
    "ha.db: SELECT id, v FROM t WHERE id = ?",
    "ha.db: SELECT :x AS x",
    "ha.db: DELETE FROM t",
  ]);
  const line = t.logs.find((l) => l.msg === "queried")!;
  assert.equal(line.level, "info");
  assert.equal(line.hook, "beforeApply");
  assert.equal(line.db, "ha.db");
  assert.equal(line.named, "named");
  assert.deepEqual(line.rows, [["1", "9007199254740993"]]); // bigints logged as strings
  assert.match(String(line.denied), /only read-only statements/);
  assert.equal(t.host.stats().queries, 3);
  assert.equal(t.host.stats().queryErrors, 1);
  await q.close();
});

Deno.test("ctx.query errors and slow queries reach the hook as errors", async () => {
  let calls = 0;
  await using t = await testInterceptor(
    `
export async function afterApply(cs, err, ctx) {
  try {
    await ctx.query("SELECT * FROM missing");
  } catch (e) {
    return { error: "first: " + e.message };
  }
}`,
    {
      timeoutMs: 60_000, // the first call must succeed however busy the machine is
      query: () => {
        calls++;
        return calls === 1
          ? Promise.reject(new Error("no such table: missing"))
          : new Promise(() => {});
      },
    },
  );
  const cs = sampleChangeSet(1);
  assert.deepEqual(await t.host.afterApply(cs, null, "d"), {
    message: "first: no such table: missing",
  });
  // The second query never answers: the hook itself times out first (same limit).
  t.options.timeoutMs = 300;
  assert.equal(await t.host.afterApply(cs, null, "d"), null);
  assert.equal(t.host.stats().byKind.timeout, 1);
});

Deno.test("console.* is routed to the structured log", async () => {
  await using t = await testInterceptor(`
export function beforeApply(cs) {
  console.log("hello", { n: 1n });
  console.warn("careful");
  console.error("bad", 42);
  console.debug("details");
}`);
  await t.host.beforeApply(sampleChangeSet(1), "ha.db");
  const lines = t.logs.filter((l) => l.interceptor && l.msg !== "interceptor loaded").map((l) =>
    `${l.level} ${l.msg}`
  );
  assert.deepEqual(lines, [
    "info hello { n: 1n }",
    "warn careful",
    "error bad 42",
    "debug details",
  ]);
});

Deno.test("ctx carries database and node", async () => {
  await using t = await testInterceptor(
    `export const beforeApply = (cs, ctx) => ({ skip: ctx.database === "db1" && ctx.node === "me" });`,
    { node: "me" },
  );
  assert.deepEqual(await t.host.beforeApply(sampleChangeSet(1), "db1"), { skip: true });
  assert.equal((await t.host.beforeApply(sampleChangeSet(1), "db2")).skip, false);
  assert.equal(t.host.failures, 1); // {skip: false} is not a documented shape
});

Deno.test("concurrent calls are answered by id", async () => {
  await using t = await testInterceptor(`
export async function beforeApply(cs) {
  await new Promise((r) => setTimeout(r, Number(cs.changes.length) * 3));
  return cs.changes.length % 2 ? { skip: true } : undefined;
}`);
  const sets: ChangeSet[] = Array.from({ length: 20 }, (_, i) => sampleChangeSet(20 - i));
  const outs = await Promise.all(sets.map((cs) => t.host.beforeApply(cs, "d")));
  outs.forEach((o, i) => assert.equal(o.skip, (20 - i) % 2 === 1));
});
