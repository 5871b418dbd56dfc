/**
 * Cluster ids, pure parts: the bit layouts of the generator, and the INSERT rewrite checked
 * against real SQLite (node:sqlite): the rewritten statement inserts the same rows, keeps
 * explicit ids, and takes every id SQLite would have chosen from `_ha_id()`.
 */
import assert from "node:assert/strict";
import { DatabaseSync } from "node:sqlite";
import { ID_EPOCH_MS, IdGenerator, type IdTable, rewriteInsert } from "../../src/ids/mod.ts";

Deno.test("ids: cluster layout is time | 10-bit slot | 12-bit sequence, monotonic", () => {
  let now = ID_EPOCH_MS + 5;
  const g = new IdGenerator("cluster", 3, () => now);
  assert.equal(g.next(), (5n << 22n) | (3n << 12n));
  assert.equal(g.next(), (5n << 22n) | (3n << 12n) | 1n);
  now -= 2; // the clock steps back: ids still grow
  assert.equal(g.next(), (5n << 22n) | (3n << 12n) | 2n);
  now = ID_EPOCH_MS + 6;
  assert.equal(g.next(), (6n << 22n) | (3n << 12n));
});

Deno.test("ids: after a restart, ids start above the node's last recorded write", () => {
  const g = new IdGenerator("cluster", 2, () => ID_EPOCH_MS + 10); // the clock stepped back
  g.after(ID_EPOCH_MS + 20);
  assert.equal(g.next(), (21n << 22n) | (2n << 12n));
  g.after(ID_EPOCH_MS + 5); // older: no effect
  assert.equal(g.next(), (21n << 22n) | (2n << 12n) | 1n);
});

Deno.test("ids: a burst beyond the sequence borrows the next millisecond", () => {
  const g = new IdGenerator("js-safe", 63, () => ID_EPOCH_MS + 1);
  const ids = Array.from({ length: 65 }, () => g.next());
  assert.equal(ids[63], (1n << 12n) | (63n << 6n) | 63n);
  assert.equal(ids[64], (2n << 12n) | (63n << 6n));
  const today = new IdGenerator("js-safe", 63).next();
  assert.ok(today <= BigInt(Number.MAX_SAFE_INTEGER));
  assert.throws(() => new IdGenerator("js-safe", 64), RangeError);
});

const SCHEMA = `
  CREATE TABLE ipk(id INTEGER PRIMARY KEY, name TEXT UNIQUE, n INT DEFAULT 0);
  CREATE TABLE auto(id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT);
  CREATE TABLE plain(name TEXT, x);
`;
const TABLES: Record<string, IdTable> = {
  ipk: {
    columns: ["id", "name", "n"],
    rowid: "id",
    rowidNames: new Set(["id", "rowid", "_rowid_", "oid"]),
  },
  auto: {
    columns: ["id", "name"],
    rowid: "id",
    rowidNames: new Set(["id", "rowid", "_rowid_", "oid"]),
  },
  plain: {
    columns: ["name", "x"],
    rowid: "rowid",
    rowidNames: new Set(["rowid", "_rowid_", "oid"]),
  },
};
const BASE = 1_000_000n;

/** Runs `sql` rewritten for `table` on a fresh database; rows as `rowid|values`. */
function runRewritten(sql: string, table: string, params: unknown[] = []) {
  const db = new DatabaseSync(":memory:");
  let n = BASE;
  db.function("_ha_id", () => ++n);
  db.exec(SCHEMA);
  db.exec(
    "INSERT INTO ipk(id, name) VALUES (1, 'old'); INSERT INTO plain(rowid, name) VALUES (1, 'old')",
  );
  const rewritten = rewriteInsert(sql, TABLES[table]);
  assert.ok(rewritten, `not rewritten: ${sql}`);
  const stmt = db.prepare(rewritten);
  stmt.setReadBigInts(true);
  const out = stmt.columns().length > 0
    ? stmt.all(...params as never[])
    : stmt.run(...params as never[]);
  const rows = db.prepare(`SELECT rowid AS r, * FROM ${table} ORDER BY rowid`).all();
  return {
    rewritten,
    out,
    rows: rows.map((r) => Object.values(r).join("|")),
    issued: Number(n - BASE),
  };
}

Deno.test("ids: INSERT forms get ids from _ha_id(), explicit ids stay", () => {
  const cases: [string, string, unknown[], string[], number][] = [
    ["INSERT INTO ipk(name) VALUES (?)", "ipk", ["a"], ["1|1|old|0", "1000001|1000001|a|0"], 1],
    ["insert into ipk values (null, 'a', 1), (5, 'b', 2)", "ipk", [], [
      "1|1|old|0",
      "5|5|b|2",
      "1000001|1000001|a|1",
    ], 1],
    [
      'INSERT INTO main.ipk AS t ("name") VALUES (:n) ON CONFLICT(name) DO UPDATE SET n = t.n + 1',
      "ipk",
      [
        { n: "old" },
      ],
      ["1|1|old|1"],
      1,
    ],
    ["WITH s(v) AS (VALUES ('x'), ('y')) INSERT INTO plain SELECT v, v FROM s", "plain", [], [
      "1|old|",
      "1000001|x|x",
      "1000002|y|y",
    ], 2],
    ["INSERT INTO plain(rowid, name) SELECT 7, 'a' UNION ALL SELECT NULL, 'b'", "plain", [], [
      "1|old|",
      "7|a|",
      "1000001|b|",
    ], 1],
    ["REPLACE INTO auto DEFAULT VALUES", "auto", [], ["1000001|1000001|"], 1],
    ["INSERT OR IGNORE INTO ipk(id, name) VALUES (1, 'dup') -- kept", "ipk", [], ["1|1|old|0"], 0],
    ["INSERT INTO plain(name) VALUES ((SELECT max(name) FROM plain)), (?)", "plain", ["z"], [
      "1|old|",
      "1000001|old|",
      "1000002|z|",
    ], 2],
  ];
  for (const [sql, table, params, rows, issued] of cases) {
    const r = runRewritten(sql, table, params);
    assert.deepEqual(r.rows, rows, `${sql}\n→ ${r.rewritten}`);
    assert.equal(r.issued, issued, `${sql}\n→ ${r.rewritten}`);
  }
});

Deno.test("ids: RETURNING and parameters keep their meaning", () => {
  const r = runRewritten(
    "INSERT INTO auto(name) SELECT ?1 || 'a' UNION ALL SELECT ?2 RETURNING id, name",
    "auto",
    ["p", "q"],
  );
  assert.deepEqual((r.out as object[]).map((x) => ({ ...x })), [
    { id: 1000001n, name: "pa" },
    { id: 1000002n, name: "q" },
  ]);
});

Deno.test("ids: shapes the rewrite does not understand are reported, not guessed", () => {
  assert.equal(rewriteInsert("UPDATE ipk SET name = 'x'", TABLES.ipk), null);
  assert.equal(rewriteInsert("INSERT INTO ipk(name) VALUES ('a', 'b')", TABLES.ipk), null);
});

Deno.test("ids: the engine with the id plugin (EXPLAIN, triggers, RETURNING, last_insert_id)", async () => {
  const { openEngine } = await import("../../src/engine/mod.ts");
  const { createLogger } = await import("../../src/log/mod.ts");
  const engine = await openEngine({
    dsns: [],
    memory: true,
    concurrentQueries: 4,
    plugins: [{
      name: "ids",
      url: new URL("../../src/ids/plugin.ts", import.meta.url).href,
      options: { scheme: "js-safe", slot: 5, node: "n" },
    }],
    logger: createLogger("error"),
  });
  try {
    const db = engine.defaultDb;
    const run = async (sql: string, params?: unknown[]) =>
      (await db.execute([{ sql, params: params as never }]))[0];
    await run("CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)");
    await run("CREATE TABLE log(t_id INTEGER, note TEXT)");
    await run(
      "CREATE TRIGGER t_ins AFTER INSERT ON t BEGIN INSERT INTO log VALUES (NEW.id, 'i'); END",
    );
    assert.ok((await run("EXPLAIN INSERT INTO t(v) VALUES ('x')")).rows.length > 0);
    const r = await run("INSERT INTO t(v) VALUES (?) RETURNING id", ["a"]);
    const id = r.rows[0][0] as bigint;
    assert.equal(Number((id >> 6n) & 63n), 5, "the node's slot");
    assert.equal(r.lastInsertId, id);
    const w = await run("INSERT INTO t(v) VALUES ('b')");
    assert.ok(w.lastInsertId > id);
    const log = await run("SELECT t_id FROM log ORDER BY t_id");
    assert.deepEqual(log.rows, [[id], [w.lastInsertId]], "triggers see the final id");
    // A schema change re-derives the rewrite of a cached statement.
    await run("CREATE TABLE u(id INTEGER PRIMARY KEY, v TEXT)");
    await run("INSERT INTO u(v) VALUES ('c')");
    await run("DROP TABLE u");
    await run("CREATE TABLE u(v TEXT)");
    const u = await run("INSERT INTO u(v) VALUES ('c')");
    const c = await run("SELECT rowid FROM u");
    assert.deepEqual(c.rows, [[u.lastInsertId]]);
    assert.ok(u.lastInsertId > w.lastInsertId);
  } finally {
    await engine.close();
  }
});
