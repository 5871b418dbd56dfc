/** Exact value encoding, the changeset format, DDL idempotency and the hybrid logical clock. */
import assert from "node:assert/strict";
import {
  alreadyApplied,
  compareVersion,
  decodeChangeSet,
  decodeValue,
  encodeValue,
  Hlc,
  idempotentDdl,
} from "../../src/cdc/mod.ts";

Deno.test("values round-trip exactly through JSON", () => {
  const cases: [unknown, unknown][] = [
    [null, null],
    [42n, 42],
    [2n ** 63n - 1n, { int: "9223372036854775807" }],
    [-(2n ** 63n), { int: "-9223372036854775808" }],
    [2n ** 53n + 1n, { int: "9007199254740993" }],
    [1.0, { real: "1.0" }],
    [-0, { real: "0.0" }],
    [1e300, { real: "1e+300" }],
    [Infinity, { real: "Infinity" }],
    [0.1, 0.1],
    ["héllo 🌍", "héllo 🌍"],
    [new Uint8Array([0, 255, 16]), { blob: "AP8Q" }],
  ];
  for (const [v, wire] of cases) {
    const enc = encodeValue(v as never);
    assert.deepEqual(enc, wire);
    const back = decodeValue(JSON.parse(JSON.stringify(enc)));
    if (typeof v === "number") assert.equal(typeof back, "number");
    if (typeof v === "bigint") assert.equal(back, v);
    else if (v instanceof Uint8Array) assert.deepEqual(back, v);
    else if (typeof v === "number" && Object.is(v, -0)) assert.equal(back, 0);
    else assert.equal(back, v);
  }
  assert.equal(decodeValue(5), 5n);
  assert.throws(() => decodeValue({ int: "1.5" }));
});

Deno.test("changeset validation", () => {
  assert.throws(() => decodeChangeSet('{"node":"n"}'), /"id"/);
  assert.throws(
    () => decodeChangeSet('{"id":"a","node":"n","db":"d","hlc":1,"changes":[{"operation":"X"}]}'),
    /bad operation/,
  );
  const cs = decodeChangeSet(
    '{"id":"a","node":"n","db":"d","hlc":1,"changes":[{"operation":"SQL","command":"x"}]}',
  );
  assert.equal(cs.changes.length, 1);
});

Deno.test("DDL is made idempotent", () => {
  assert.equal(idempotentDdl("CREATE TABLE t(a)"), "CREATE TABLE IF NOT EXISTS t(a)");
  assert.equal(
    idempotentDdl("-- c\n create unique index i on t(a)"),
    "create unique index IF NOT EXISTS i on t(a)",
  );
  assert.equal(idempotentDdl("CREATE TABLE IF NOT EXISTS t(a)"), "CREATE TABLE IF NOT EXISTS t(a)");
  assert.equal(idempotentDdl("DROP VIEW v"), "DROP VIEW IF EXISTS v");
  assert.equal(idempotentDdl("ALTER TABLE t ADD b"), "ALTER TABLE t ADD b");
  assert.ok(alreadyApplied("ALTER TABLE t ADD b", "duplicate column name: b"));
  assert.ok(!alreadyApplied("INSERT INTO t VALUES (1)", "no such table: t"));
});

Deno.test("hybrid logical clock", () => {
  let now = 1000;
  const c = new Hlc(() => now);
  const a = c.next();
  const b = c.next();
  assert.ok(b > a);
  c.observe(a + 1_000_000);
  assert.ok(c.next() > a + 1_000_000);
  now = 0; // wall clock going backwards never goes back
  assert.ok(c.next() > a + 1_000_000);
  assert.ok(compareVersion(1, "a", 1, "b") < 0);
  assert.ok(compareVersion(2, "a", 1, "b") > 0);
  assert.equal(compareVersion(1, "a", 1, "a"), 0);
});
