/**
 * The replication writer plugin inside real engines (no NATS): capture, exact values, apply,
 * idempotency and last-writer-wins convergence.
 */
import assert from "node:assert/strict";
import { replicationClient } from "../../src/replication/plugin_api.ts";
import { close, node, rows, ship, sql, type TestNode } from "./helpers/replication_nodes.ts";

function dump(n: TestNode, table: string): Promise<string> {
  return rows(n, `SELECT typeof(a) || ':' || quote(a) FROM "${table}" ORDER BY rowid`);
}

Deno.test("capture and apply: DDL, exact values, update, delete", async () => {
  const a = await node("a");
  const b = await node("b");
  try {
    await sql(a, 'CREATE TABLE "my t"(id INTEGER PRIMARY KEY, a)');
    await a.engine.defaultDb.execute([
      { sql: 'INSERT INTO "my t"(id, a) VALUES (1, 9223372036854775807)' },
      { sql: 'INSERT INTO "my t"(id, a) VALUES (2, 1.0)' },
      { sql: `INSERT INTO "my t"(id, a) VALUES (3, x'00ff10')` },
      { sql: `INSERT INTO "my t"(id, a) VALUES (4, 'héllo 🌍')` },
      { sql: 'INSERT INTO "my t"(id, a) VALUES (5, NULL)' },
      { sql: 'INSERT INTO "my t"(id, a) VALUES (6, -12.5)' },
      { sql: 'INSERT INTO "my t"(id, a) VALUES (7, 9e999)' },
    ]);
    assert.equal(a.out.length, 2);
    const msgs = await ship(a, [b]);
    assert.equal(await dump(b, "my t"), await dump(a, "my t"));
    // redelivery changes nothing
    const r = await replicationClient(b.engine.defaultDb).call("apply", msgs);
    assert.equal(r.applied, 0);
    await sql(a, 'UPDATE "my t" SET a = 2 WHERE id = 2');
    await sql(a, 'DELETE FROM "my t" WHERE id = 3');
    await sql(a, 'ALTER TABLE "my t" ADD COLUMN b TEXT');
    await sql(a, `UPDATE "my t" SET b = 'x'`);
    await ship(a, [b]);
    assert.equal(await dump(b, "my t"), await dump(a, "my t"));
    const [rb] = await sql(b, "SELECT count(*) FROM \"my t\" WHERE b = 'x'");
    assert.equal(rb.rows[0][0], 6n);
    // rollback captures nothing
    await assert.rejects(a.engine.defaultDb.execute([
      { sql: 'INSERT INTO "my t"(id) VALUES (100)' },
      { sql: "SELECT * FROM nope" },
    ]));
    assert.equal(a.out.length, 0);
  } finally {
    await close(a, b);
  }
});

Deno.test("concurrent conflicting writes converge (LWW by hlc, node)", async () => {
  const ns = [await node("n1"), await node("n2"), await node("n3")];
  try {
    await sql(ns[0], "CREATE TABLE t(id INTEGER PRIMARY KEY, a)");
    await ship(ns[0], [ns[1], ns[2]]);
    for (let round = 0; round < 20; round++) {
      for (const [i, n] of ns.entries()) {
        const id = (round + i) % 4;
        if ((round + i) % 3 === 0) await sql(n, "DELETE FROM t WHERE id = ?", [id]);
        else {
          await sql(n, "INSERT INTO t(id, a) VALUES (?, ?) ON CONFLICT(id) DO UPDATE SET a = ?", [
            id,
            `${n.name}-${round}`,
            `${n.name}-${round}u`,
          ]);
        }
      }
      // deliver in a different order to each node
      const batches = ns.map((n) => n.out.splice(0));
      for (const [i, n] of ns.entries()) {
        for (const j of [2, 0, 1]) {
          if (j !== i && round % 2 === 0) await ship(ns[j], [n], batches[j]);
        }
      }
      if (round % 2 === 1) {
        for (const [i, n] of ns.entries()) {
          for (const j of [1, 2, 0]) if (j !== i) await ship(ns[j], [n], batches[j]);
        }
      }
    }
    const dumps = await Promise.all(ns.map((n) => rows(n, "SELECT id, a FROM t ORDER BY id")));
    assert.equal(dumps[1], dumps[0]);
    assert.equal(dumps[2], dumps[0]);
  } finally {
    await close(...ns);
  }
});

Deno.test("row-identify rowid and full", async () => {
  for (const mode of ["rowid", "full"] as const) {
    const a = await node("a", { rowIdentify: mode });
    const b = await node("b", { rowIdentify: mode });
    try {
      await sql(a, "CREATE TABLE t(a, b)");
      await sql(a, "INSERT INTO t VALUES (1, 'x'), (2, NULL)");
      await sql(a, "UPDATE t SET b = 'y' WHERE a = 2");
      await sql(a, "DELETE FROM t WHERE a = 1");
      await ship(a, [b]);
      await ship(a, [b], []);
      assert.equal(await dump(b, "t"), await dump(a, "t"), mode);
    } finally {
      await close(a, b);
    }
  }
});

Deno.test("row-identify full: duplicate rows converge as a multiset in any order", async () => {
  const ns = [await node("n1", { rowIdentify: "full" }), await node("n2", { rowIdentify: "full" })];
  const [a, b] = ns;
  try {
    await sql(a, "CREATE TABLE t(a, b)");
    await sql(a, "INSERT INTO t VALUES (1, 'x'), (1, 'x'), (2, 'y')");
    await ship(a, [b]);
    // Concurrent: each node changes one of the identical rows, deletes and adds duplicates.
    await sql(a, "UPDATE t SET b = 'z' WHERE rowid = (SELECT min(rowid) FROM t WHERE a = 1)");
    await sql(a, "INSERT INTO t VALUES (2, 'y')");
    await sql(b, "DELETE FROM t WHERE rowid = (SELECT max(rowid) FROM t WHERE a = 1)");
    await sql(b, "INSERT INTO t VALUES (1, 'x'), (3, 'w')");
    await sql(b, "UPDATE t SET b = 'v' WHERE a = 2");
    const fromA = a.out.splice(0);
    const fromB = b.out.splice(0);
    await ship(b, [a], fromB);
    await ship(a, [b], fromA);
    const multiset = (n: TestNode) => rows(n, "SELECT a, b FROM t ORDER BY a, b");
    assert.equal(await multiset(b), await multiset(a));
    assert.equal(
      await multiset(a),
      JSON.stringify([["1", "x"], ["1", "z"], ["2", "v"], ["2", "y"], ["3", "w"]]),
    );
  } finally {
    await close(...ns);
  }
});

Deno.test("an INSERT whose key is here already updates the row, whatever the table's conflict clause, and fires no INSERT trigger", async () => {
  const a = await node("a");
  const b = await node("b");
  try {
    await sql(a, "CREATE TABLE t(id INTEGER PRIMARY KEY ON CONFLICT ROLLBACK, v)");
    await sql(a, "CREATE TABLE u(k TEXT PRIMARY KEY ON CONFLICT IGNORE, v)");
    await ship(a, [b]);
    await sql(b, "CREATE TABLE log(id)");
    await sql(
      b,
      "CREATE TRIGGER t_ins BEFORE INSERT ON t BEGIN INSERT INTO log VALUES (new.id); END",
    );
    b.out.splice(0);
    await sql(b, "INSERT INTO t(id, v) VALUES (1, 'b')");
    await sql(b, "INSERT INTO u(k, v) VALUES ('x', 'b')");
    await sql(b, "INSERT INTO u(k, v) VALUES (NULL, 'b')");
    await sql(a, "INSERT INTO t(id, v) VALUES (1, 'a'), (2, 'a')");
    await sql(a, "INSERT INTO u(k, v) VALUES ('x', 'a'), (NULL, 'a')");
    await ship(a, [b]);
    assert.equal(await rows(b, "SELECT id, v FROM t ORDER BY id"), '[["1","a"],["2","a"]]');
    assert.equal(await rows(b, "SELECT k, v FROM u ORDER BY k"), '[[null,"a"],["x","a"]]');
    // b's own INSERT of 1 fired the trigger, a's changes only for 2 (1 became an UPDATE here)
    assert.equal(await rows(b, "SELECT id FROM log ORDER BY rowid"), '[["1"],["2"]]');
  } finally {
    await close(a, b);
  }
});

Deno.test("last_insert_rowid() stays the user's across replicated commits (outbox, markers)", async () => {
  const a = await node("a");
  try {
    await sql(a, "CREATE TABLE t(id INTEGER PRIMARY KEY, a)");
    assert.equal((await sql(a, "INSERT INTO t(id, a) VALUES (42, 1)"))[0].lastInsertId, 42n);
    // The commit appended to the outbox; an UPDATE (it logs a statement marker) inserts nothing.
    const [u] = await sql(a, "UPDATE t SET a = 2 WHERE id = 42");
    assert.equal(u.lastInsertId, 42n);
    const [r, s] = await a.engine.defaultDb.execute([
      { sql: "UPDATE t SET a = 3" },
      { sql: "SELECT last_insert_rowid()" },
    ]);
    assert.equal(r.lastInsertId, 42n);
    assert.deepEqual(s.rows, [[42n]]);
    assert.equal(a.out.length, 4); // CREATE TABLE, INSERT, two UPDATEs
  } finally {
    await close(a);
  }
});
