/**
 * Group commit on the writer: concurrent autocommit writes share one transaction (one set of
 * plugin payloads), yet each request succeeds or fails alone.
 */
import assert from "node:assert/strict";
import { openEngine } from "../../src/engine/mod.ts";
import { HaError } from "../../src/errors/mod.ts";
import { createLogger } from "../../src/log/mod.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };
const PLUGIN = new URL("./fixtures/statement_counter_plugin.ts", import.meta.url).href;

async function engineWithCounter() {
  const engine = await openEngine({
    dsns: [],
    memory: true,
    concurrentQueries: 64,
    logger: createLogger("error"),
    plugins: [{ name: "counter", url: PLUGIN }],
  });
  const commits: number[] = [];
  engine.defaultDb.onCommit((payloads) => void commits.push(payloads[0] as number));
  await engine.defaultDb.execute([{ sql: "CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)" }]);
  commits.length = 0;
  return { engine, db: engine.defaultDb, commits };
}

Deno.test("concurrent writes share commits; a failing one fails alone", opts, async () => {
  const { engine, db, commits } = await engineWithCounter();
  try {
    await db.execute([{ sql: "INSERT INTO t(id, v) VALUES (5, 'first')" }]);
    const ids = Array.from({ length: 20 }, (_, i) => i + 1); // id 5 collides
    const outcomes = await Promise.allSettled(
      ids.map((id) =>
        db.execute([{ sql: "INSERT INTO t(id, v) VALUES (?, ?)", params: [id, "x"] }])
      ),
    );
    const failed = outcomes.flatMap((o, i) => o.status === "rejected" ? [[ids[i], o.reason]] : []);
    assert.equal(failed.length, 1);
    assert.equal(failed[0][0], 5);
    assert.ok(failed[0][1] instanceof HaError && failed[0][1].code === "constraint");
    const [r] = await db.execute([{ sql: "SELECT count(*), sum(v = 'x') FROM t" }]);
    assert.deepEqual(r.rows, [[20n, 19n]]);
    // 1 (the first insert) + 19 successful grouped inserts, in fewer commits than requests.
    assert.equal(commits.reduce((a, b) => a + b, 0), 20);
    assert.ok(commits.length < 20, `commits: ${commits}`);
  } finally {
    await engine.close();
  }
});

Deno.test(
  "a statement that aborts the shared transaction does not take others down",
  opts,
  async () => {
    const { engine, db, commits } = await engineWithCounter();
    try {
      await db.execute([{ sql: "INSERT INTO t(id, v) VALUES (1, 'taken')" }]);
      const reqs = [
        { sql: "INSERT INTO t(id, v) VALUES (2, 'a')" },
        { sql: "INSERT OR ROLLBACK INTO t(id, v) VALUES (1, 'dup')" }, // ends the whole transaction
        { sql: "INSERT INTO t(id, v) VALUES (3, 'b')" },
        { sql: "UPDATE t SET v = 'c' WHERE id = 1" },
        { sql: "CREATE TABLE u(a)" }, // DDL runs alone, in order
        { sql: "INSERT INTO u VALUES (1)" },
      ];
      const outcomes = await Promise.allSettled(reqs.map((s) => db.execute([s])));
      assert.deepEqual(outcomes.map((o) => o.status), [
        "fulfilled",
        "rejected",
        "fulfilled",
        "fulfilled",
        "fulfilled",
        "fulfilled",
      ]);
      const [r] = await db.execute([{ sql: "SELECT group_concat(id || v, ',') FROM t" }]);
      assert.deepEqual(r.rows, [["1c,2a,3b"]]);
      const [u] = await db.execute([{ sql: "SELECT count(*) FROM u" }]);
      assert.deepEqual(u.rows, [[1n]]);
      assert.equal(commits.reduce((a, b) => a + b, 0), 6, `commits: ${commits}`);
    } finally {
      await engine.close();
    }
  },
);

Deno.test(
  "a statement rewritten for the schema is rewritten again after DDL in its group",
  opts,
  async () => {
    const engine = await openEngine({
      dsns: [],
      memory: true,
      concurrentQueries: 64,
      logger: createLogger("error"),
      plugins: [{
        name: "rewrite",
        url: new URL("./fixtures/column_count_rewrite_plugin.ts", import.meta.url).href,
      }],
    });
    const db = engine.defaultDb;
    const insert = (v: string) => db.execute([{ sql: "INSERT INTO w(v) VALUES (?)", params: [v] }]);
    const mark = { sql: "INSERT INTO z VALUES (1)" };
    try {
      await db.execute([{ sql: "CREATE TABLE w(v TEXT)" }, { sql: "CREATE TABLE z(a)" }]);
      await insert("a"); // rewritten and cached for one column
      await db.execute([mark]); // a known write: the batch below queues in order
      await Promise.all([
        insert("b"),
        insert("c"),
        db.execute([mark, { sql: "ALTER TABLE w ADD COLUMN x" }]), // runs alone, in order
        insert("d"),
        insert("e"),
      ]);
      const [r] = await db.execute([{ sql: "SELECT group_concat(v, ',') FROM w" }]);
      assert.deepEqual(r.rows, [["a:1,b:1,c:1,d:2,e:2"]]);
    } finally {
      await engine.close();
    }
  },
);

Deno.test(
  "writes issued together while another awaits its commit listeners form one group",
  opts,
  async () => {
    const { engine, db, commits } = await engineWithCounter();
    try {
      // Known as a write from now on (a statement of unknown kind is tried on a reader first).
      const sql = "INSERT INTO t(id, v) VALUES (?, 'x')";
      await db.execute([{ sql, params: [100] }]);
      // The next write's listener holds it (like a changeset awaiting its JetStream ack).
      const held = Promise.withResolvers<void>();
      let hold = true;
      db.onCommit(() => hold ? held.promise : undefined);
      const first = db.execute([{ sql, params: [1] }]);
      while (commits.length === 1) await new Promise((r) => setTimeout(r, 1));
      hold = false;
      // Five writes issued in one turn: the first does not leave alone, all five share a commit.
      await Promise.all(
        [2, 3, 4, 5, 6].map((id) => db.execute([{ sql, params: [id] }])),
      );
      assert.deepEqual(commits, [1, 1, 5]);
      held.resolve();
      await first;
      // A lone write still commits alone.
      await db.execute([{ sql, params: [7] }]);
      assert.deepEqual(commits, [1, 1, 5, 1]);
    } finally {
      await engine.close();
    }
  },
);
