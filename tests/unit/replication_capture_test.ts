/**
 * Capture and apply details of the replication writer plugin, in real engines without NATS:
 * user triggers (side effects made once per node), REPLACE conflict resolution, WITHOUT ROWID
 * tables, a row changed twice in one transaction, duplicate delivery, the max payload check and
 * tombstone purging.
 */
import assert from "node:assert/strict";
import { headers } from "@nats-io/transport-node";
import { HaError } from "../../src/errors/mod.ts";
import { decodeChangeSet, encodeChangeSet } from "../../src/cdc/mod.ts";
import { Action } from "../../src/engine/mod.ts";
import { resolvesByReplace, statementScope } from "../../src/replication/capture.ts";
import { headerBytes, INCARNATION_HEADER, NODE_HEADER } from "../../src/replication/headers.ts";
import { replicationClient } from "../../src/replication/plugin_api.ts";
import { tombstoneCutoff } from "../../src/replication/versions.ts";
import {
  close,
  node,
  redeliver,
  rows,
  ship,
  sql,
  type TestNode,
} from "./helpers/replication_nodes.ts";

/** The changes of the changesets a node committed and did not ship yet. */
function pending(n: TestNode) {
  return n.out.flatMap((p) => decodeChangeSet(p.data).changes);
}

const AUDIT = `
  CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT, n INTEGER DEFAULT 0);
  CREATE TABLE audit(id INTEGER PRIMARY KEY AUTOINCREMENT, what TEXT);
  CREATE TRIGGER t_ai AFTER INSERT ON t BEGIN
    INSERT INTO audit(what) VALUES ('insert ' || NEW.id || ' ' || NEW.v); END;
  CREATE TRIGGER t_uv AFTER UPDATE OF v ON t BEGIN
    INSERT INTO audit(what) VALUES ('update v ' || NEW.id || ' ' || NEW.v); END;
  CREATE TRIGGER t_un AFTER UPDATE OF n ON t BEGIN
    INSERT INTO audit(what) VALUES ('update n ' || NEW.id || ' ' || NEW.n); END;
  CREATE TRIGGER t_ad AFTER DELETE ON t BEGIN
    INSERT INTO audit(what) VALUES ('delete ' || OLD.id); END;
`;

Deno.test("trigger side effects: captured once, made once on every node", async () => {
  const a = await node("a");
  const b = await node("b");
  try {
    for (const s of AUDIT.split(/;\s*(?=CREATE)/)) await sql(a, s);
    await ship(a, [b]);
    await a.engine.defaultDb.execute([
      { sql: "INSERT INTO t(id, v) VALUES (1, 'x'), (2, 'y')" },
      { sql: "UPDATE t SET v = 'z' WHERE id = 1" },
      { sql: "DELETE FROM t WHERE id = 2" },
    ]);
    const changes = pending(a);
    assert.deepEqual(changes.map((c) => `${c.operation} ${c.table}`), [
      "INSERT t",
      "INSERT t",
      "UPDATE t",
      "DELETE t",
    ], "only the statements' own rows are captured, not the audit rows");
    assert.deepEqual(changes[2].updated_columns, ["v"]);
    await ship(a, [b]);
    const audit = "SELECT id, what FROM audit ORDER BY id";
    assert.deepEqual(JSON.parse(await rows(b, audit)), [
      ["1", "insert 1 x"],
      ["2", "insert 2 y"],
      ["3", "update v 1 z"],
      ["4", "delete 2"],
    ], "UPDATE OF n did not fire on the replica either");
    assert.equal(await rows(b, audit), await rows(a, audit));
    assert.equal(await rows(b, "SELECT * FROM t"), await rows(a, "SELECT * FROM t"));

    // A write on b replicates back: a makes its own audit row, exactly one.
    await sql(b, "INSERT INTO t(id, v) VALUES (3, 'from b')");
    await ship(b, [a]);
    assert.equal(await rows(a, audit), await rows(b, audit));
    assert.equal(await rows(a, "SELECT count(*) FROM audit"), '[["5"]]');
  } finally {
    await close(a, b);
  }
});

Deno.test("triggers writing their own table, and writes through a view", async () => {
  const a = await node("a");
  const b = await node("b");
  try {
    await sql(a, "CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT, n INTEGER DEFAULT 0)");
    await sql(
      a,
      "CREATE TRIGGER bump AFTER UPDATE OF v ON t BEGIN UPDATE t SET n = n + 1 WHERE id = NEW.id; END",
    );
    await sql(a, "CREATE VIEW tv AS SELECT id, v FROM t");
    await sql(
      a,
      "CREATE TRIGGER tv_ins INSTEAD OF INSERT ON tv BEGIN INSERT INTO t(id, v) VALUES (NEW.id, upper(NEW.v)); END",
    );
    await sql(a, "INSERT INTO tv(id, v) VALUES (1, 'x')");
    await sql(a, "UPDATE t SET v = 'y' WHERE id = 1");
    await sql(a, "UPDATE t SET v = 'z' WHERE id = 1");
    assert.deepEqual(pending(a).filter((c) => c.table === "t").map((c) => c.operation), [
      "INSERT",
      "UPDATE",
      "UPDATE",
      "UPDATE",
      "UPDATE",
    ], "the view's INSTEAD OF insert counts as direct; bump's updates are captured too");
    await ship(a, [b]);
    assert.equal(await rows(a, "SELECT * FROM t"), '[["1","z","2"]]');
    assert.equal(await rows(b, "SELECT * FROM t"), await rows(a, "SELECT * FROM t"));
  } finally {
    await close(a, b);
  }
});

Deno.test("a row changed twice in one transaction: both changes apply", async () => {
  const a = await node("a");
  const b = await node("b");
  try {
    await sql(a, "CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)");
    await a.engine.defaultDb.execute([
      { sql: "INSERT INTO t VALUES (1, 'first')" },
      { sql: "UPDATE t SET v = 'second' WHERE id = 1" },
      { sql: "INSERT INTO t VALUES (2, 'gone')" },
      { sql: "DELETE FROM t WHERE id = 2" },
      { sql: "INSERT INTO t VALUES (2, 'back')" },
    ]);
    await ship(a, [b]);
    assert.equal(await rows(b, "SELECT * FROM t ORDER BY id"), '[["1","second"],["2","back"]]');
  } finally {
    await close(a, b);
  }
});

Deno.test("duplicate delivery under a new sequence changes nothing", async () => {
  const a = await node("a");
  const b = await node("b");
  try {
    for (const s of AUDIT.split(/;\s*(?=CREATE)/)) await sql(a, s);
    await ship(a, [b]);
    await sql(a, "INSERT INTO t(id, v) VALUES (1, 'x')");
    await sql(a, "UPDATE t SET n = n + 1 WHERE id = 1");
    await sql(a, "DELETE FROM t WHERE id = 1");
    await sql(a, "INSERT INTO t(id, v) VALUES (2, 'y')");
    const msgs = await ship(a, [b]);
    const before = [await rows(b, "SELECT * FROM t"), await rows(b, "SELECT * FROM audit")];
    const [r] = await redeliver(msgs, [b]);
    assert.equal(r.error, null);
    assert.equal(r.applied, msgs.length, "the duplicates were processed");
    assert.deepEqual(
      [await rows(b, "SELECT * FROM t"), await rows(b, "SELECT * FROM audit")],
      before,
    );
    assert.equal(await rows(b, "SELECT count(*) FROM audit"), '[["4"]]');
  } finally {
    await close(a, b);
  }
});

Deno.test("rows deleted by REPLACE conflict resolution replicate", async () => {
  const a = await node("a");
  const b = await node("b");
  try {
    await sql(a, "CREATE TABLE u(id INTEGER PRIMARY KEY, email TEXT UNIQUE, v TEXT)");
    await sql(a, "CREATE TABLE c(id INTEGER PRIMARY KEY, k TEXT UNIQUE ON CONFLICT REPLACE)");
    await sql(a, "CREATE TABLE log(what TEXT)");
    await sql(a, "CREATE TRIGGER u_ad AFTER DELETE ON u BEGIN INSERT INTO log VALUES ('del'); END");
    await sql(a, "INSERT INTO u VALUES (1, 'a@x', 'one'), (2, 'b@x', 'two'), (3, 'c@x', 'three')");
    await sql(a, "INSERT INTO c VALUES (1, 'k1'), (2, 'k2')");
    await ship(a, [b]);

    await sql(a, "INSERT OR REPLACE INTO u VALUES (10, 'a@x', 'ten')");
    await sql(a, "REPLACE INTO u(id, email, v) VALUES (2, 'c@x', 'two again')");
    await sql(a, "INSERT INTO c VALUES (3, 'k1')");
    const changes = pending(a);
    assert.deepEqual(changes.map((c) => `${c.operation} ${c.table} ${c.on_conflict ?? ""}`), [
      "INSERT u REPLACE",
      "DELETE u ",
      "INSERT u REPLACE",
      "DELETE u ",
      "INSERT c ",
      "DELETE c ",
    ]);
    await ship(a, [b]);
    // A conflict resolved by UPDATE OR REPLACE, applied from the other side.
    await sql(b, "UPDATE OR REPLACE u SET email = 'c@x' WHERE id = 10");
    await ship(b, [a]);
    for (const t of ["u", "c", "log"]) {
      assert.equal(
        await rows(b, `SELECT * FROM ${t} ORDER BY 1`),
        await rows(a, `SELECT * FROM ${t} ORDER BY 1`),
        t,
      );
    }
    assert.equal(await rows(a, "SELECT id, email FROM u ORDER BY id"), '[["10","c@x"]]');
    assert.equal(await rows(a, "SELECT id, k FROM c ORDER BY id"), '[["2","k2"],["3","k1"]]');
    assert.equal(
      await rows(b, "SELECT count(*) FROM log"),
      '[["0"]]',
      "REPLACE fires no delete trigger (recursive_triggers off), on the replica neither",
    );
    // The deleted rows are tombstoned: an older write to one of them does not bring it back.
    const [tomb] = await sql(
      b,
      "SELECT count(*) FROM _ha_versions WHERE tbl = 'u' AND deleted = 1",
    );
    assert.equal(tomb.rows[0][0], 3n, "rows 1, 3 and 2");

    // b updates a row concurrently with (and before) a's REPLACE that deletes it: the
    // tombstone makes the update lose on a, and b deletes the row when the REPLACE arrives.
    await sql(a, "INSERT INTO u VALUES (20, 'd@x', 'twenty')");
    await ship(a, [b]);
    await sql(b, "UPDATE u SET v = 'late' WHERE id = 20");
    await sql(a, "INSERT OR REPLACE INTO u VALUES (21, 'd@x', 'twenty-one')");
    await ship(b, [a]);
    await ship(a, [b]);
    const q = "SELECT * FROM u ORDER BY id";
    assert.equal(await rows(a, q), '[["10","c@x","ten"],["21","d@x","twenty-one"]]');
    assert.equal(await rows(b, q), await rows(a, q));
  } finally {
    await close(a, b);
  }
});

Deno.test("WITHOUT ROWID tables with composite keys replicate by primary key", async () => {
  const a = await node("a");
  const b = await node("b");
  try {
    await sql(
      a,
      "CREATE TABLE w(k1 TEXT, k2 INTEGER, v BLOB, PRIMARY KEY(k1, k2)) WITHOUT ROWID",
    );
    await sql(a, "INSERT INTO w VALUES ('a', 1, x'01'), ('a', 2, x'02'), ('b', 1, NULL)");
    await sql(a, "UPDATE w SET v = x'ff' WHERE k1 = 'a' AND k2 = 2");
    await sql(a, "UPDATE w SET k2 = 5 WHERE k1 = 'b'");
    await sql(a, "DELETE FROM w WHERE k1 = 'a' AND k2 = 1");
    const changes = pending(a);
    assert.ok(changes.filter((c) => c.table === "w").every((c) => c.pk_columns.join() === "k1,k2"));
    await ship(a, [b]);
    const q = "SELECT k1, k2, quote(v) FROM w ORDER BY k1, k2";
    assert.equal(await rows(b, q), '[["a","2","X\'FF\'"],["b","5","NULL"]]');
    assert.equal(await rows(b, q), await rows(a, q));
    await sql(b, "INSERT INTO w VALUES ('c', 1, x'00') ");
    await sql(b, "DELETE FROM w WHERE k1 = 'a'");
    await ship(b, [a]);
    assert.equal(await rows(a, q), await rows(b, q));
  } finally {
    await close(a, b);
  }
});

Deno.test("a transaction larger than the max payload is refused before COMMIT", async () => {
  const a = await node("a", { maxPayload: 4096 });
  try {
    await sql(a, "CREATE TABLE t(id INTEGER PRIMARY KEY, b BLOB)");
    a.out.length = 0;
    const err = await sql(a, "INSERT INTO t VALUES (1, randomblob(5000))").catch((e) => e);
    assert.ok(err instanceof HaError, String(err));
    assert.equal(err.code, "too_large");
    assert.match(err.message, /over the NATS max_payload of 4096 bytes; it was rolled back/);
    assert.equal(await rows(a, "SELECT count(*) FROM t"), '[["0"]]');
    assert.equal(a.out.length, 0);
    await sql(a, "INSERT INTO t VALUES (2, randomblob(100))");
    assert.equal(a.out.length, 1);
  } finally {
    await close(a);
  }
});

Deno.test("tombstones are purged once older than the cutoff", async () => {
  const a = await node("a");
  try {
    await sql(a, "CREATE TABLE t(id INTEGER PRIMARY KEY)");
    await sql(a, "INSERT INTO t VALUES (1), (2), (3)");
    await sql(a, "DELETE FROM t WHERE id IN (1, 2)");
    const [v] = await sql(a, "SELECT max(hlc) FROM _ha_versions");
    const last = Number(v.rows[0][0]);
    await sql(a, "DELETE FROM t WHERE id = 3");
    const db = a.engine.defaultDb;
    assert.equal(
      await replicationClient(db).call("purgeTombstones", last),
      0,
      "strictly older only",
    );
    assert.equal(await replicationClient(db).call("purgeTombstones", last + 1), 2);
    assert.equal(
      await rows(a, "SELECT key, deleted FROM _ha_versions ORDER BY key"),
      '[["[3]","1"]]',
      "the newer tombstone stays; live versions are never purged",
    );
    const day = 86_400_000;
    assert.equal(tombstoneCutoff(10 * day, day), 8 * day * 1000);
    assert.equal(tombstoneCutoff(day, 1000), (day - 61_000) * 1000, "margin at least 1 minute");
    assert.equal(tombstoneCutoff(day, 0), null, "a stream without max age keeps them");
  } finally {
    await close(a);
  }
});

Deno.test("statement scope and REPLACE detection", () => {
  const act = (code: number, arg1: string, arg2: string | null, trigger: string | null) => ({
    code,
    arg1,
    arg2,
    db: "main",
    trigger,
  });
  const s = statementScope(
    [
      act(Action.INSERT, "v", null, null),
      act(Action.INSERT, "t", null, "v_ins"),
      act(Action.UPDATE, "t", "n", "v_ins"),
      act(Action.INSERT, "audit", null, "t_ai"),
      act(Action.READ, "x", "y", null),
    ],
    new Map([["v_ins", "v"], ["other", "w"]]),
    "INSERT OR REPLACE INTO v VALUES (1)",
  );
  assert.deepEqual([...s.tables].sort(), ["t", "v"]);
  assert.deepEqual([...s.updated], [["t", ["n"]]]);
  assert.equal(s.replace, true);
  assert.equal(resolvesByReplace("UPDATE OR  REPLACE t SET a = 1"), true);
  assert.equal(resolvesByReplace("with x as (select 1) replace into t select * from x"), true);
  assert.equal(resolvesByReplace("UPDATE t SET a = replace(a, 'x', 'y')"), false);
});

Deno.test("header size matches what nats.js sends", () => {
  const h = headers();
  const id = "my db.db:nöde:1234567890123456";
  h.set("Nats-Msg-Id", id);
  h.set(NODE_HEADER, "nöde");
  h.set(INCARNATION_HEADER, crypto.randomUUID());
  assert.equal(
    headerBytes(id, "nöde", h.get(INCARNATION_HEADER)),
    (h as unknown as { encode(): Uint8Array }).encode().length,
  );
});

Deno.test("the changeset JSON is encodeChangeSet's, row images spliced as captured", async () => {
  const a = await node("a");
  try {
    await sql(a, "CREATE TABLE u(id INTEGER PRIMARY KEY, k TEXT UNIQUE, v)");
    await a.engine.defaultDb.execute([
      {
        sql: `INSERT INTO u VALUES (1, 'a', 9223372036854775807), (2, 'b', x'00ff'), (3, 'c', 1.0)`,
      },
      { sql: `UPDATE u SET v = 'é "q" \\ 🌍' WHERE id = 1` },
      { sql: "UPDATE u SET id = 10 WHERE id = 2" },
      { sql: `REPLACE INTO u VALUES (4, 'c', -0.5)` },
      { sql: "DELETE FROM u WHERE id = 10" },
      { sql: "CREATE INDEX u_v ON u(v)" },
    ]);
    const data = a.out.at(-1)!.data;
    const cs = decodeChangeSet(data);
    assert.equal(data, encodeChangeSet(cs));
    assert.deepEqual(cs.changes.map((c) => `${c.operation} ${c.on_conflict ?? ""}`), [
      "INSERT ",
      "INSERT ",
      "INSERT ",
      "UPDATE ",
      "UPDATE ",
      "INSERT REPLACE",
      "DELETE ", // the row REPLACE removed, logged after its statement
      "DELETE ",
      "SQL ",
    ]);
    assert.deepEqual(cs.changes[3].updated_columns, ["v"]);
    assert.deepEqual(cs.changes[0].new_values, [1, "a", { int: "9223372036854775807" }]);
  } finally {
    await close(a);
  }
});
