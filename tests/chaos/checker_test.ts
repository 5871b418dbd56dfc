/** The chaos suite's pure parts: outcomes, the checker, the fault plan, the proxy. */
import assert from "node:assert/strict";
import { checkRun, foldHot, type NodeDump } from "./checker.ts";
import { planFaults } from "./faults.ts";
import { FAULT_KINDS, httpOutcome, type Op, pgErrorOutcome } from "./history.ts";
import { Prng } from "./prng.ts";
import { Proxy } from "./proxy.ts";

Deno.test("outcomes: 200 and 503 committed locally are acknowledged", () => {
  assert.equal(httpOutcome(200, "{}"), "ok");
  assert.equal(httpOutcome(503, '{"error":"…the write was committed locally but…"}'), "ok");
  assert.equal(httpOutcome(503, '{"error":"shutting down"}'), "unknown");
  assert.equal(httpOutcome(409, "{}"), "fail");
  assert.equal(httpOutcome(0, "Connection refused", true), "fail");
  assert.equal(httpOutcome(0, "connection reset"), "unknown");
  assert.equal(pgErrorOutcome("replication unavailable: … committed locally …", true), "ok");
  assert.equal(pgErrorOutcome("UNIQUE constraint failed", false, "23505"), "fail");
  assert.equal(pgErrorOutcome("Connection terminated", true), "unknown");
});

const op = (id: number, outcome: Op["outcome"], table: string, key: string, value: string): Op => ({
  id,
  client: "c0",
  node: "node1",
  proto: "http",
  kind: "insert",
  request: null,
  status: 200,
  body: "",
  start: 0,
  end: 1,
  outcome,
  writes: [{ table, key, value }],
});

const dump = (name: string, u: [string, string][], sum = "s"): NodeDump => ({
  name,
  checksums: { u: sum },
  columns: { u: ["k", "v"] },
  rows: { u: new Map(u), hot: new Map([["h0", "x"]]) },
  totals: new Map([["c0", 2]]),
  ledger: new Map([["c0", name === "node2" ? 1 : 2]]),
});

Deno.test("checker: lost, phantom, divergent, lww and double application", () => {
  const ops = [
    op(0, "ok", "u", "a", "node1"),
    op(1, "fail", "u", "b", "node1"),
    op(2, "unknown", "u", "c", "n"),
  ];
  const dumps = [dump("node1", [["a", "node1"], ["c", "n"]]), dump("node2", [["b", "node1"]], "t")];
  const r = checkRun(ops, dumps, new Map([["h0", "x"], ["h1", null]]));
  assert.equal(r.lost, 1, "a is missing on node2");
  assert.deepEqual(r.lostByNode, { node2: 1 });
  assert.equal(r.phantom, 1, "b failed but is on node2");
  assert.equal(r.divergent, 1);
  assert.equal(r.lww, 0);
  assert.equal(r.doubleApplied, 1, "node2 counted 2 for 1 ledger row");
  assert.match(
    r.findings.find((f) => f.check === "lost")!.detail,
    /u\[a\]=node1 missing or wrong on node2\(absent\)/,
  );
  assert.equal(r.deadLettered, 0);
  const r2 = checkRun([], [dump("node1", [])], new Map([["h0", null]]));
  assert.equal(r2.lww, 1);
  const r3 = checkRun(
    [],
    [{ ...dump("node1", []), deadLetters: ["7: change 0: hlc …"] }],
    new Map(),
  );
  assert.equal(r3.deadLettered, 1, "a refused message of the load is a loss");
  const r4 = checkRun(
    [],
    [dump("node1", []), { ...dump("node2", []), columns: { u: ["v", "k"] } }],
    new Map(),
  );
  assert.equal(r4.columnOrder, 1, "reported");
  assert.equal(r4.divergent, 0, "same content by column name");
});

Deno.test("checker: LWW over the stream picks the highest (hlc, node), deletes included", () => {
  const best = new Map();
  const cs = (node: string, hlc: number, op: string, v: string | null) =>
    JSON.stringify({
      id: `ha.db:${node}:${hlc}`,
      node,
      incarnation: "i",
      db: "ha.db",
      hlc,
      timestamp_ns: 0,
      changes: [{
        database: "main",
        table: "hot",
        columns: ["k", "v"],
        pk_columns: ["k"],
        operation: op,
        hlc,
        ...(op === "DELETE" ? { old_values: ["h0", "old"] } : { new_values: ["h0", v] }),
        ...(op === "UPDATE" ? { old_values: ["h0", "old"] } : {}),
      }],
    });
  foldHot(best, cs("node2", 10, "INSERT", "a"));
  foldHot(best, cs("node1", 10, "UPDATE", "b"));
  assert.equal(best.get("h0").value, "a", "same hlc: node2 > node1");
  foldHot(best, cs("node1", 11, "DELETE", null));
  assert.equal(best.get("h0").value, null);
  foldHot(best, cs("node3", 9, "INSERT", "late"));
  assert.equal(best.get("h0").value, null, "an older write arriving later loses");
});

Deno.test("fault plan: deterministic per seed, every kind in a short run", () => {
  const input = {
    durationMs: 35_000,
    nodes: ["node1", "node2", "node3"],
    topology: "external" as const,
  };
  const a = planFaults(new Prng(1), input);
  assert.deepEqual(a, planFaults(new Prng(1), input));
  assert.notDeepEqual(a, planFaults(new Prng(2), input));
  assert.deepEqual(new Set(a.map((f) => f.kind)), new Set(FAULT_KINDS));
  assert.equal(a.filter((f) => f.kind === "snapshot").length, 1);
});

Deno.test("proxy: forwards, drops, pauses without loss, heals", async () => {
  const echo = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const serving = (async () => {
    for await (const c of echo) {
      (async () => {
        const buf = new Uint8Array(1024);
        for (;;) {
          const n = await c.read(buf).catch(() => null);
          if (n === null) break;
          await c.write(buf.subarray(0, n)).catch(() => {});
        }
        try {
          c.close();
        } catch { /* closed */ }
      })();
    }
  })();
  const proxy = new Proxy({ hostname: "127.0.0.1", port: (echo.addr as Deno.NetAddr).port });
  const roundTrip = async (c: Deno.Conn, s: string) => {
    await c.write(new TextEncoder().encode(s));
    const buf = new Uint8Array(64);
    const n = await c.read(buf);
    return n === null ? null : new TextDecoder().decode(buf.subarray(0, n));
  };
  try {
    const c = await Deno.connect({ hostname: "127.0.0.1", port: proxy.port });
    assert.equal(await roundTrip(c, "one"), "one");
    proxy.set("pause");
    const late = roundTrip(c, "two");
    const first = await Promise.race([
      late,
      new Promise((r) => setTimeout(() => r("waiting"), 300)),
    ]);
    assert.equal(first, "waiting", "nothing passes while paused");
    proxy.set("pass");
    assert.equal(await late, "two", "the paused bytes arrive after the heal");
    proxy.set("drop");
    assert.equal(await c.read(new Uint8Array(8)).catch(() => null), null, "open connection reset");
    c.close();
    const refused = await Deno.connect({ hostname: "127.0.0.1", port: proxy.port });
    assert.equal(await refused.read(new Uint8Array(8)).catch(() => null), null, "new ones closed");
    refused.close();
    proxy.set("pass");
    const d = await Deno.connect({ hostname: "127.0.0.1", port: proxy.port });
    assert.equal(await roundTrip(d, "three"), "three");
    d.close();
  } finally {
    await proxy.close();
    echo.close();
    await serving;
  }
});
