/** A read-only follower's engine (`--read-only`): reads run, client writes are refused. */
import assert from "node:assert/strict";
import { DatabaseSync } from "node:sqlite";
import { openEngine } from "../../src/engine/mod.ts";
import { HaError } from "../../src/errors/mod.ts";
import { createLogger } from "../../src/log/mod.ts";
import { toPgError } from "../../src/pgwire/mod.ts";
import { statusOf } from "../../src/http/mod.ts";

const logger = createLogger("error");

async function fileDb(): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "ha-ro-" });
  const path = `${dir}/app.db`;
  const engine = await openEngine({ dsns: [path], memory: false, concurrentQueries: 4, logger });
  await engine.defaultDb.execute([
    { sql: "CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)" },
    { sql: "INSERT INTO t VALUES (1, 'a')" },
  ]);
  await engine.close();
  return path;
}

function isRefusal(e: unknown, command: string): boolean {
  assert.ok(e instanceof HaError, String(e));
  assert.match(e.message, new RegExp(`^read-only node: ${command} refused`));
  assert.equal(statusOf(e.code), 400);
  assert.equal(toPgError(e).code, "25006");
  return true;
}

Deno.test("read-only engine: reads run, writes are refused before they run", async () => {
  const path = await fileDb();
  const engine = await openEngine({
    dsns: [path],
    memory: false,
    concurrentQueries: 4,
    readOnly: true,
    logger,
  });
  try {
    const db = engine.defaultDb;
    const [r] = await db.execute([{ sql: "SELECT v FROM t WHERE id = ?", params: [1] }]);
    assert.deepEqual(r.rows, [["a"]]);
    for (
      const [sql, command] of [
        ["INSERT INTO t VALUES (2, 'b')", "INSERT"],
        ["UPDATE t SET v = 'z'", "UPDATE"],
        ["CREATE TABLE u(a)", "CREATE TABLE"],
        ["PRAGMA journal_mode = DELETE", "PRAGMA"],
      ]
    ) {
      // Twice: the second time the statement's kind comes from the routing cache.
      await assert.rejects(db.execute([{ sql }]), (e) => isRefusal(e, command));
      await assert.rejects(db.execute([{ sql }]), (e) => isRefusal(e, command));
    }
    await assert.rejects(
      db.execute([{ sql: "SELECT 1" }, { sql: "DELETE FROM t" }]),
      (e) => isRefusal(e, "DELETE"),
    );

    // Transactions may read; a write inside one is refused and leaves it open.
    const s = db.session();
    await s.execute({ sql: "BEGIN" });
    assert.deepEqual((await s.execute({ sql: "SELECT count(*) FROM t" })).rows, [[1n]]);
    await assert.rejects(s.execute({ sql: "DELETE FROM t" }), (e) => isRefusal(e, "DELETE"));
    assert.equal(s.inTransaction, true);
    await s.execute({ sql: "SAVEPOINT sp" });
    await s.execute({ sql: "RELEASE sp" });
    assert.equal((await s.execute({ sql: "COMMIT" })).command, "COMMIT");
    await s.close();

    const [after] = await db.execute([{ sql: "SELECT id, v FROM t" }]);
    assert.deepEqual(after.rows, [[1n, "a"]], "nothing was written");
    // Another connection (here node:sqlite, read-only) can read the file while it is open.
    const other = new DatabaseSync(path, { readOnly: true });
    try {
      assert.equal(other.prepare("PRAGMA journal_mode").get()?.journal_mode, "wal");
      assert.deepEqual(other.prepare("SELECT v FROM t").all().map((r) => r.v), ["a"]);
    } finally {
      other.close();
    }
  } finally {
    await engine.close();
  }
});

Deno.test("read-only engine: a file database must stay in WAL mode", async () => {
  const path = await fileDb();
  await assert.rejects(
    openEngine({
      dsns: [`file:${path}?_journal=DELETE`],
      memory: false,
      concurrentQueries: 4,
      readOnly: true,
      logger,
    }),
    (e) => e instanceof HaError && e.code === "config" && /WAL mode/.test(e.message),
  );
});
