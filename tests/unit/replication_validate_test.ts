import assert from "node:assert/strict";
import { ddlRefusal } from "../../src/cdc/mod.ts";
import { signPayload, verifyPayload } from "../../src/replication/signature.ts";
import { checkMessage, InvalidMessage, loadVerifier } from "../../src/replication/validate.ts";
import {
  REPLICATION_PLUGIN,
  replicationClient,
  type ReplicationPluginOptions,
} from "../../src/replication/plugin_api.ts";
import { openEngine } from "../../src/engine/mod.ts";
import { createLogger } from "../../src/log/mod.ts";
import { testInterceptor } from "../../src/interceptor/testing.ts";
import { applyIntercepted } from "../../src/replication/apply_intercepted.ts";

const PLUGIN = new URL("../../src/replication/writer_plugin.ts", import.meta.url).href;

const NOW = 1_700_000_000_000;
const rules = { clusterKey: null, maxClockSkewMs: 60_000, now: () => NOW };

function cs(change: Record<string, unknown>, hlc = NOW * 1000): string {
  return JSON.stringify({
    id: "x",
    node: "n",
    incarnation: "i",
    db: "ha.db",
    hlc,
    timestamp_ns: 0,
    changes: [{ database: "main", hlc, ...change }],
  });
}

const row = { table: "t", columns: ["id", "v"], pk_columns: ["id"], operation: "INSERT" };

Deno.test("checkMessage accepts a well-formed changeset", () => {
  const c = checkMessage({ data: cs({ ...row, new_rowid: 1, new_values: [1, "a"] }) }, rules);
  assert.equal(c.changes.length, 1);
});

Deno.test("checkMessage refuses what can never apply, with the reason", () => {
  const cases: [string, RegExp][] = [
    ["hello", /undecodable/],
    ["[]", /undecodable/],
    [cs({ ...row, new_values: [1] }), /1 new_values for 2 columns/],
    [cs({ ...row, columns: ["id", "id"], new_values: [1, 1] }), /duplicate/],
    [cs({ ...row, pk_columns: ["zz"], new_values: [1, 2] }), /pk_columns/],
    [cs({ ...row, new_values: [1, { bogus: 1 }] }), /invalid wire value/],
    [cs({ ...row, new_rowid: "x", new_values: [1, 2] }), /new_rowid/],
    [cs({ ...row, new_values: [1, 2] }, 2 ** 60), /safe integer/],
    [cs({ ...row, new_values: [1, 2] }, -5), /positive/],
    [cs({ ...row, new_values: [1, 2] }, (NOW + 61_000) * 1000), /max-clock-skew/],
    [cs({ ...row, new_values: [1, 2], hlc: "7" }), /change 0: hlc/],
    [cs({ operation: "SQL", table: "", columns: [], command: "PRAGMA x=1" }), /schema/],
  ];
  for (const [data, why] of cases) {
    assert.throws(() => checkMessage({ data }, rules), (e: unknown) => {
      assert.ok(e instanceof InvalidMessage, String(e));
      assert.match(e.message, why, data);
      return true;
    });
  }
  // Within the skew bound is fine.
  checkMessage({ data: cs({ ...row, new_values: [1, 2] }, (NOW + 59_000) * 1000) }, rules);
});

Deno.test("checkMessage with a cluster key: signature over the (original) payload", async () => {
  await loadVerifier();
  const keyed = { ...rules, clusterKey: "k" };
  const data = cs({ ...row, new_values: [1, 2] });
  assert.throws(() => checkMessage({ data }, keyed), /unsigned/);
  assert.throws(() => checkMessage({ data, sig: signPayload("j", data) }, keyed), /bad signature/);
  assert.throws(() => checkMessage({ data, sig: "zz" }, keyed), /bad signature/);
  checkMessage({ data, sig: signPayload("k", data) }, keyed);
  const rewritten = cs({ ...row, new_values: [1, 3] });
  checkMessage({ data: rewritten, signed: data, sig: signPayload("k", data) }, keyed);
  assert.equal(verifyPayload("k", data + " ", signPayload("k", data)), false);
});

Deno.test("ddlRefusal: one schema statement on main only", () => {
  for (
    const ok of [
      "CREATE TABLE IF NOT EXISTS t(a)",
      "create unique index if not exists i on t(a)",
      "CREATE VIRTUAL TABLE f USING fts5(x)",
      "DROP TABLE IF EXISTS main.t",
      "ALTER TABLE t ADD COLUMN b",
      "CREATE TRIGGER tr AFTER INSERT ON t BEGIN UPDATE t SET a = 1; END",
      "CREATE VIEW v AS SELECT 1;",
    ]
  ) assert.equal(ddlRefusal(ok), null, ok);
  for (
    const bad of [
      "CREATE TABLE t(a); ATTACH 'x' AS y",
      "COMMIT; ATTACH DATABASE '/tmp/x.db' AS x",
      "UPDATE t SET a = 1",
      "PRAGMA synchronous = OFF",
      "ATTACH 'x' AS y",
      "CREATE TEMP TABLE x(a)",
      "CREATE TABLE aux.t(a)",
      'CREATE TABLE "temp".t(a)',
      "",
    ]
  ) assert.notEqual(ddlRefusal(bad), null, bad);
});

async function pluginEngine(disableDdlSync: boolean, clusterKey: string | null = null) {
  const options: ReplicationPluginOptions = {
    node: "me",
    incarnation: "i",
    rowIdentify: "pk",
    disableDdlSync,
    memory: true,
    outboxDir: null,
    maxPayload: 0,
    clusterKey,
  };
  return await openEngine({
    dsns: [],
    memory: true,
    concurrentQueries: 2,
    plugins: [{ name: REPLICATION_PLUGIN, url: PLUGIN, options }],
    logger: createLogger("error"),
  });
}

Deno.test("a change to an unknown table: dead letter with DDL sync, retried without", async () => {
  const data = cs({ ...row, new_rowid: 1, new_values: [1, "a"] }, Date.now() * 1000);
  for (const disableDdlSync of [false, true]) {
    const engine = await pluginEngine(disableDdlSync);
    try {
      const db = engine.defaultDb;
      const r = await replicationClient(db).call("apply", [{ seq: 1, subject: "s", data }]);
      if (!disableDdlSync) {
        assert.equal(r.error, null);
        assert.equal(r.through, 1);
        assert.match(r.deadLetters![0].reason, /no table "t"/);
        const [d] = await db.execute([{
          sql: "SELECT seq, reason, payload FROM _ha_dead_letters",
        }]);
        assert.deepEqual(d.rows.map((x) => [x[0], x[2]]), [[1n, data]]);
        continue;
      }
      // The schema is managed by hand: the change waits for it, then applies.
      assert.equal(r.through, 0);
      assert.match(r.error!.message, /no table "t"/);
      await db.execute([{ sql: "CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)" }]);
      const again = await replicationClient(db).call("apply", [{ seq: 1, subject: "s", data }]);
      assert.equal(again.error, null);
      const [t] = await db.execute([{ sql: "SELECT v FROM t" }]);
      assert.deepEqual(t.rows, [["a"]]);
    } finally {
      await engine.close();
    }
  }
});

Deno.test("interceptor hooks never see invalid messages; rewrites keep the signature", async () => {
  await using t = await testInterceptor(`
export const beforeApply = (cs) => {
  const c = cs.changes[0];
  // Seeing the forged message would skip it instead of letting it be dead-lettered.
  if (c.new_values[1] === "b") return { skip: true };
  return { changeset: { ...cs, changes: [{ ...c, new_values: [c.new_values[0], "seen"] }] } };
};`);
  const engine = await pluginEngine(false, "k");
  try {
    const db = engine.defaultDb;
    await db.execute([{ sql: "CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)" }]);
    const hlc = Date.now() * 1000;
    const good = cs({ ...row, new_rowid: 1, new_values: [1, "a"] }, hlc);
    const forged = cs({ ...row, new_rowid: 2, new_values: [2, "b"] }, hlc);
    const r = await applyIntercepted({
      host: t.host,
      db,
      self: { node: "me" },
      logger: createLogger("error"),
      consumer: "test",
      rules: { clusterKey: "k", maxClockSkewMs: 60_000 },
    }, [
      { seq: 1, subject: "s", data: good, sig: signPayload("k", good) },
      { seq: 2, subject: "s", data: forged, sig: signPayload("other", forged) },
    ]);
    assert.equal(r.error, null);
    assert.equal(r.through, 2);
    assert.deepEqual(r.deadLetters?.map((d) => d.seq), [2]);
    const [rows] = await db.execute([{ sql: "SELECT id, v FROM t" }]);
    assert.deepEqual(rows.rows, [[1n, "seen"]]);
  } finally {
    await engine.close();
  }
});

Deno.test("a change that arrives before its DDL is parked and applied once the DDL comes", async () => {
  const hlc = Date.now() * 1000;
  const data = cs({ ...row, new_rowid: 1, new_values: [1, "a"] }, hlc);
  // The DDL's changeset was published later (a retried publication lands after its successor).
  const ddl = cs({
    table: "t",
    columns: [],
    pk_columns: [],
    operation: "SQL",
    command: "CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)",
  }, hlc - 1);
  const engine = await pluginEngine(false);
  try {
    const db = engine.defaultDb;
    const r = await replicationClient(db).call("apply", [{ seq: 1, subject: "s", data }]);
    assert.equal(r.error, null);
    assert.match(r.deadLetters![0].reason, /parked until its schema arrives: .*no table "t"/);
    const r2 = await replicationClient(db).call("apply", [{ seq: 2, subject: "s", data: ddl }]);
    assert.equal(r2.error, null);
    assert.equal(r2.through, 2);
    const [t] = await db.execute([{ sql: "SELECT id, v FROM t" }]);
    assert.deepEqual(t.rows, [[1n, "a"]]);
    const [d] = await db.execute([{ sql: "SELECT count(*) FROM _ha_dead_letters" }]);
    assert.deepEqual(d.rows, [[0n]]);
  } finally {
    await engine.close();
  }
});
