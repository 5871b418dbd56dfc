/** pgwire statement classification, settings, and the HaError → SQLSTATE mapping. */
import assert from "node:assert/strict";
import { HaError } from "../../src/errors/mod.ts";
import { type CatalogContext, classify } from "../../src/pgwire/catalog.ts";
import { Settings } from "../../src/pgwire/settings.ts";
import { PgError, toPgError } from "../../src/pgwire/errors.ts";
import { shapeOf, words } from "../../src/pgwire/sql.ts";

function ctx(): CatalogContext & { used: string[] } {
  const used: string[] = [];
  return {
    settings: new Settings("ha", { application_name: "psql", client_encoding: "SQL_ASCII" }),
    user: "ha",
    database: "ha.db",
    pid: 4242,
    databases: () => ["ha.db", "other.db"],
    useDatabase: (id: string) => {
      used.push(id);
      return Promise.resolve();
    },
    deallocate: () => {},
    used,
  };
}

async function runLocal(sql: string, c = ctx()) {
  const k = classify(sql);
  assert.equal(k.kind, "local", sql);
  if (k.kind !== "local") throw new Error();
  return { ...(await k.run(c)), fields: k.fields };
}

Deno.test("SET stores settings and reports GUC_REPORT ones", async () => {
  const c = ctx();
  let r = await runLocal("SET application_name = 'my app'", c);
  assert.equal(r.tag, "SET");
  assert.deepEqual(r.status, [["application_name", "my app"]]);
  r = await runLocal("set datestyle to ISO, DMY;", c);
  assert.deepEqual(r.status, [["DateStyle", "iso, dmy"]]);
  r = await runLocal("SET SESSION extra_float_digits = 3", c);
  assert.deepEqual(r.status, []);
  assert.equal(c.settings.get("extra_float_digits"), "3");
  r = await runLocal("SET TIME ZONE 'UTC'", c);
  assert.equal(c.settings.get("timezone"), "UTC");
  r = await runLocal("SET search_path TO DEFAULT", c);
  assert.equal(c.settings.get("search_path"), '"$user", public');
  r = await runLocal("SET TRANSACTION ISOLATION LEVEL SERIALIZABLE", c);
  assert.equal(r.tag, "SET");
  r = await runLocal("SET my.custom = 5", c);
  assert.equal(c.settings.get("my.custom"), "5");
  await assert.rejects(async () => await runLocal("SET server_version = '1'", c), PgError);
  await assert.rejects(async () => await runLocal("SET client_encoding = 'LATIN1'", c), PgError);
  assert.equal(c.settings.get("client_encoding"), "UTF8"); // SQL_ASCII at start-up → UTF8
  await runLocal("SET DATABASE TO other.db", c);
  assert.deepEqual(c.used, ["other.db"]);
  r = await runLocal("RESET application_name", c);
  assert.deepEqual(r.status, [["application_name", "psql"]]);
});

Deno.test("SHOW and the start-up functions", async () => {
  const c = ctx();
  let r = await runLocal("SHOW server_version", c);
  assert.deepEqual(r.rows, [["15.0 (ha)"]]);
  assert.deepEqual(r.fields.map((f) => f.name), ["server_version"]);
  r = await runLocal("show TRANSACTION ISOLATION LEVEL", c);
  assert.deepEqual(r.rows, [["serializable"]]);
  r = await runLocal("SHOW DATABASES", c);
  assert.deepEqual(r.rows, [["ha.db", "1"], ["other.db", "0"]]);
  await assert.rejects(
    async () => await runLocal("SHOW nonsense", c),
    (e: PgError) => e.code === "42704",
  );
  r = await runLocal("SELECT version()", c);
  assert.match(String(r.rows[0][0]), /^PostgreSQL 15\.0/);
  r = await runLocal(
    "select pg_catalog.current_setting('standard_conforming_strings') AS scs, current_database(), current_schema, pg_backend_pid()",
    c,
  );
  assert.deepEqual(r.rows, [["on", "ha.db", "public", 4242n]]);
  assert.deepEqual(r.fields.map((f) => f.name), [
    "scs",
    "current_database",
    "current_schema",
    "pg_backend_pid",
  ]);
  r = await runLocal("SELECT current_setting('nope', true)", c);
  assert.deepEqual(r.rows, [[null]]);
  r = await runLocal("SELECT set_config('application_name', 'x', false)", c);
  assert.equal(c.settings.get("application_name"), "x");
  // postgres.js fetch_types probe
  r = await runLocal(
    "select b.oid, b.typarray from pg_catalog.pg_type a left join pg_catalog.pg_type b on b.oid = a.typelem where a.typcategory = 'A' group by b.oid, b.typarray order by b.oid",
    c,
  );
  assert.deepEqual(r.rows, []);
  assert.deepEqual(r.fields.map((f) => f.name), ["oid", "typarray"]);
});

Deno.test("transaction control in PostgreSQL spellings", () => {
  const tx = (sql: string) => {
    const c = classify(sql);
    assert.equal(c.kind, "tx", sql);
    return c.kind === "tx" ? [c.op, c.sql, c.tag] : [];
  };
  assert.deepEqual(tx("BEGIN"), ["begin", "BEGIN", "BEGIN"]);
  assert.deepEqual(tx("begin isolation level read committed"), ["begin", "BEGIN", "BEGIN"]);
  assert.deepEqual(tx("START TRANSACTION READ WRITE"), ["begin", "BEGIN", "START TRANSACTION"]);
  assert.deepEqual(tx("BEGIN IMMEDIATE"), ["begin", "BEGIN IMMEDIATE", "BEGIN"]);
  assert.deepEqual(tx("END"), ["commit", "COMMIT", "COMMIT"]);
  assert.deepEqual(tx("commit work;"), ["commit", "COMMIT", "COMMIT"]);
  assert.deepEqual(tx("ABORT"), ["rollback", "ROLLBACK", "ROLLBACK"]);
  assert.deepEqual(tx("ROLLBACK TO SAVEPOINT sp1"), [
    "rollback_to",
    'ROLLBACK TO SAVEPOINT "sp1"',
    "ROLLBACK",
  ]);
  assert.deepEqual(tx("savepoint Sp1"), ["savepoint", 'SAVEPOINT "sp1"', "SAVEPOINT"]);
  assert.deepEqual(tx("RELEASE SAVEPOINT sp1"), ["release", 'RELEASE SAVEPOINT "sp1"', "RELEASE"]);
});

Deno.test("everything else goes to SQLite", () => {
  for (
    const sql of ["SELECT 1", "select version", "SELECT current_setting(x) FROM t", "PRAGMA x"]
  ) {
    assert.equal(classify(sql).kind, "sql", sql);
  }
  assert.equal(classify(" -- nothing\n ; ").kind, "empty");
  assert.equal(classify("COPY t FROM STDIN").kind, "copy");
  assert.throws(() => classify("COPY t FROM '/etc/passwd'"), (e: PgError) => e.code === "0A000");
  assert.throws(() => classify("LISTEN x"), (e: PgError) => e.code === "0A000");
  assert.equal(shapeOf("SELECT 1"), "query");
  assert.equal(shapeOf("/* c */ (SELECT 1)"), "query");
  assert.equal(shapeOf("WITH x AS (SELECT 1) SELECT * FROM x"), "query");
  assert.equal(shapeOf("WITH x AS (SELECT 1) INSERT INTO t SELECT * FROM x"), "unknown");
  assert.equal(shapeOf("INSERT INTO t VALUES (1) RETURNING id"), "returning");
  assert.equal(shapeOf("insert into t values ('returning')"), "none");
  assert.equal(shapeOf("CREATE TABLE t(a)"), "none");
  assert.equal(shapeOf("PRAGMA table_info(t)"), "unknown");
  assert.deepEqual(words(`SELECT "a b", 'c' -- d\n FROM [e]`), ["SELECT", "FROM"]);
});

Deno.test("HaError → SQLSTATE", () => {
  const cases: [HaError, string][] = [
    [new HaError("constraint", "UNIQUE constraint failed: t.a", { sqliteCode: 2067 }), "23505"],
    [new HaError("constraint", "x", { sqliteCode: 1555 }), "23505"],
    [new HaError("constraint", "NOT NULL constraint failed: t.a", { sqliteCode: 1299 }), "23502"],
    [new HaError("constraint", "FOREIGN KEY constraint failed", { sqliteCode: 787 }), "23503"],
    [new HaError("constraint", "CHECK constraint failed: c", { sqliteCode: 275 }), "23514"],
    [new HaError("constraint", "CHECK constraint failed: c"), "23514"],
    [new HaError("sql", "no such table: x", { sqliteCode: 1 }), "42P01"],
    [new HaError("sql", "no such column: y", { sqliteCode: 1 }), "42703"],
    [new HaError("sql", 'near "selec": syntax error', { sqliteCode: 1 }), "42601"],
    [new HaError("sql", "incomplete input", { sqliteCode: 1 }), "42601"],
    [new HaError("sql", "table t already exists", { sqliteCode: 1 }), "42P07"],
    [new HaError("sql", "no such function: f", { sqliteCode: 1 }), "42883"],
    [new HaError("sql", "attempt to write a readonly database", { sqliteCode: 8 }), "25006"],
    [new HaError("sql", "something odd", { sqliteCode: 1 }), "42000"],
    [new HaError("cancelled", "interrupted"), "57014"],
    [new HaError("unavailable", "replication timed out"), "08006"],
    [new HaError("not_found", 'database "x" not found'), "3D000"],
    [new HaError("bad_request", "bad"), "22023"],
    [new HaError("too_large", "big"), "54000"],
    [new HaError("internal", "bug"), "XX000"],
  ];
  for (const [e, code] of cases) assert.equal(toPgError(e).code, code, e.message);
  assert.equal(
    toPgError(new HaError("cancelled", "x")).message,
    "canceling statement due to user request",
  );
  assert.equal(toPgError(new Error("boom")).code, "XX000");
  const pe = new PgError("28P01", "no", { fatal: true });
  assert.equal(toPgError(pe), pe);
  assert.equal(pe.fields().severity, "FATAL");
});
