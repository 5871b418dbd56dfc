/** Engine sessions (the PostgreSQL front end's transactions) on a real engine with workers. */
import assert from "node:assert/strict";
import { openEngine } from "../../src/engine/mod.ts";
import { HaError } from "../../src/errors/mod.ts";
import { createLogger } from "../../src/log/mod.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };

/** An engine with one in-memory database, as a node would open it. */
function memoryEngine(dsns: string[] = []) {
  return openEngine({
    dsns,
    memory: true,
    concurrentQueries: 8,
    logger: createLogger("error"),
  });
}

Deno.test("session transactions see what they created; COMMIT publishes once", opts, async () => {
  const engine = await memoryEngine();
  try {
    const db = engine.defaultDb;
    const s = db.session();
    assert.equal((await s.execute({ sql: "BEGIN" })).command, "BEGIN");
    assert.equal(s.inTransaction, true);
    await s.execute({ sql: "CREATE TABLE q(a)" });
    const ins = await s.execute({ sql: "INSERT INTO q VALUES (?) RETURNING a", params: [7] });
    assert.deepEqual(ins.rows, [[7n]]);
    const d = await s.describe("SELECT a FROM q WHERE a = ?");
    assert.deepEqual(d.columns.map((c) => c.name), ["a"]);
    assert.equal(d.paramCount, 1);
    await assert.rejects(s.execute({ sql: "SELECT * FROM missing" }), /no such table/);
    assert.equal(s.inTransaction, true, "an error keeps the transaction open");
    assert.equal((await s.execute({ sql: "COMMIT" })).command, "COMMIT");
    assert.equal(s.inTransaction, false);
    const [r] = await db.execute([{ sql: "SELECT count(*) FROM q" }]);
    assert.deepEqual(r.rows, [[1n]]);

    await s.execute({ sql: "BEGIN" });
    await s.execute({ sql: "INSERT INTO q VALUES (8)" });
    await s.execute({ sql: "SAVEPOINT sp" });
    await s.execute({ sql: "INSERT INTO q VALUES (9)" });
    await s.execute({ sql: "ROLLBACK TO sp" });
    assert.equal((await s.execute({ sql: "ROLLBACK" })).command, "ROLLBACK");
    const [after] = await db.execute([{ sql: "SELECT count(*) FROM q" }]);
    assert.deepEqual(after.rows, [[1n]]);

    await assert.rejects(s.execute({ sql: "SAVEPOINT x" }), HaError);
    assert.equal((await s.execute({ sql: "COMMIT" })).command, "COMMIT", "warning-free no-op");

    // A dropped session rolls back and frees the writer for others.
    const t = db.session();
    await t.execute({ sql: "BEGIN" });
    await t.execute({ sql: "INSERT INTO q VALUES (10)" });
    await t.close();
    await db.execute([{ sql: "INSERT INTO q VALUES (11)" }]);
    const [end] = await db.execute([{ sql: "SELECT group_concat(a) FROM q" }]);
    assert.deepEqual(end.rows, [["7,11"]]);
    await s.close();
  } finally {
    await engine.close();
  }
});

Deno.test("a failing COMMIT ends the transaction and frees the writer", opts, async () => {
  const engine = await memoryEngine(["file:ha.db?_fk=1"]);
  try {
    const db = engine.defaultDb;
    // Clients may not change connection settings: foreign keys are on from the DSN.
    await assert.rejects(db.execute([{ sql: "PRAGMA foreign_keys = ON" }]), /not authorized/);
    await db.execute([{
      sql: "CREATE TABLE p(id INTEGER PRIMARY KEY); " +
        "CREATE TABLE c(p INTEGER REFERENCES p(id) DEFERRABLE INITIALLY DEFERRED)",
    }]);
    const s = db.session();
    await s.execute({ sql: "BEGIN" });
    await s.execute({ sql: "INSERT INTO c VALUES (42)" });
    await assert.rejects(s.execute({ sql: "COMMIT" }), /FOREIGN KEY/);
    assert.equal(s.inTransaction, false);
    await db.execute([{ sql: "INSERT INTO p VALUES (1)" }]);
    await s.close();
  } finally {
    await engine.close();
  }
});

Deno.test("read-only execute accepts reads and refuses anything that writes", opts, async () => {
  const engine = await memoryEngine();
  try {
    const db = engine.defaultDb;
    await db.execute([{ sql: "CREATE TABLE t(a, name)" }]);
    for (
      const sql of [
        "SELECT 1",
        "  select * from t where a = ';' ;",
        "-- comment\nSELECT 1",
        "/* x */ VALUES (1), (2)",
        "WITH x AS (SELECT 1) SELECT * FROM x",
        "SELECT replace(name, 'a', 'b') FROM t",
        "PRAGMA table_info(t)",
        "PRAGMA main.table_info('t')",
        "PRAGMA user_version",
        "EXPLAIN QUERY PLAN SELECT 1",
        'SELECT "a" FROM t',
      ]
    ) {
      await db.execute([{ sql }], { readOnly: true });
    }
    for (
      const sql of [
        "DELETE FROM t",
        "insert into t values (1, 2)",
        "UPDATE t SET a = 1",
        "CREATE TABLE x(a)",
        "DROP TABLE t",
        "ATTACH 'x.db' AS x",
        "SELECT 1; DELETE FROM t",
        "WITH x AS (SELECT 1) DELETE FROM t",
        "WITH x AS (SELECT 1) REPLACE INTO t SELECT 1, 2 FROM x",
        "PRAGMA user_version = 5",
        "PRAGMA journal_mode(WAL)",
        "PRAGMA optimize",
        "BEGIN",
        "VACUUM",
        "SELECT 'unterminated",
      ]
    ) {
      await assert.rejects(db.execute([{ sql }], { readOnly: true }), HaError, sql);
    }
    const [n] = await db.execute([{ sql: "SELECT count(*) FROM t" }]);
    assert.deepEqual(n.rows, [[0n]], "nothing was written");
    const [v] = await db.execute([{ sql: "PRAGMA user_version" }]);
    assert.deepEqual(v.rows, [[0n]]);
    // VACUUM has no authorizer action: it must run on the writer, not fail on a reader.
    await db.execute([{ sql: "VACUUM" }]);
  } finally {
    await engine.close();
  }
});
