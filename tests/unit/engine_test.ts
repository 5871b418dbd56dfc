/** Pure engine helpers: statement splitting, parameters, DSNs, error mapping, attach-dir containment. */
import assert from "node:assert/strict";
import {
  countParameters,
  leadingCommand,
  parseDsn,
  splitStatements,
} from "../../src/engine/mod.ts";
import { anonymousDollars, bindArgs, toBindValue } from "../../src/engine/bind.ts";
import { insideDir } from "../../src/engine/sql_policy.ts";
import { fromSqliteError } from "../../src/engine/sqlite_error.ts";
import { HaError } from "../../src/errors/mod.ts";

Deno.test("splitStatements honours quotes, comments and trigger bodies", () => {
  assert.deepEqual(splitStatements("SELECT 1; SELECT 2;"), ["SELECT 1", "SELECT 2"]);
  assert.deepEqual(splitStatements("SELECT ';' ; SELECT \"a;b\" FROM [c;d]"), [
    "SELECT ';'",
    'SELECT "a;b" FROM [c;d]',
  ]);
  assert.deepEqual(splitStatements("-- only a comment;\n /* ; */ ;;"), []);
  assert.deepEqual(splitStatements("SELECT 1 -- trailing ; comment"), [
    "SELECT 1 -- trailing ; comment",
  ]);
  const trig =
    "CREATE TRIGGER t AFTER INSERT ON a BEGIN INSERT INTO b VALUES (CASE WHEN 1 THEN 2 END); " +
    "DELETE FROM c; END";
  assert.deepEqual(splitStatements(`${trig}; SELECT 3`), [trig, "SELECT 3"]);
  assert.deepEqual(splitStatements("BEGIN; INSERT INTO t VALUES (1); END"), [
    "BEGIN",
    "INSERT INTO t VALUES (1)",
    "END",
  ]);
  assert.deepEqual(splitStatements("SELECT 'it''s'; SELECT 2"), ["SELECT 'it''s'", "SELECT 2"]);
});

Deno.test("countParameters and leadingCommand", () => {
  assert.equal(countParameters("SELECT ?, ?, '?'"), 2);
  assert.equal(countParameters("SELECT $1, $3"), 3);
  assert.equal(countParameters("SELECT ?2, ?1"), 2);
  assert.equal(countParameters("SELECT :a, :a, @b, x::text"), 2);
  assert.equal(leadingCommand("  insert into t values (1)"), "INSERT");
  assert.equal(leadingCommand("REPLACE INTO t VALUES (1)"), "INSERT");
  assert.equal(leadingCommand("CREATE UNIQUE INDEX i ON t(a)"), "CREATE INDEX");
  assert.equal(leadingCommand("create temp table x(a)"), "CREATE TABLE");
  assert.equal(leadingCommand("DROP VIEW IF EXISTS v"), "DROP VIEW");
  assert.equal(leadingCommand("/* c */ VALUES (1)"), "SELECT");
  assert.equal(leadingCommand("END TRANSACTION"), "COMMIT");
});

Deno.test("bind values keep storage classes", () => {
  assert.equal(toBindValue(1, "1"), 1n);
  assert.equal(toBindValue(1.5, "1"), 1.5);
  assert.equal(toBindValue(2 ** 60, "1"), 2 ** 60, "unsafe integers stay REAL-typed numbers");
  assert.equal(toBindValue(true, "1"), 1n);
  assert.equal(toBindValue(9223372036854775807n, "1"), 9223372036854775807n);
  assert.throws(() => toBindValue({} as never, "x"), HaError);
});

Deno.test("bindArgs: named prefixes, positional keys, $N placeholders", () => {
  assert.deepEqual(bindArgs("SELECT :a", { ":a": 1, b: "x" }), [{ a: 1n, b: "x" }]);
  assert.deepEqual(bindArgs("SELECT ?, ?", [1, "x"]), [1n, "x"]);
  assert.deepEqual(bindArgs("SELECT $1, $2", [1, "x"]), [{ $1: 1n, $2: "x" }]);
  assert.deepEqual(bindArgs("SELECT ?, ?", { $2: "b", $1: "a" }), ["a", "b"]);
  assert.deepEqual(bindArgs("SELECT 1", undefined), []);
  assert.throws(() => bindArgs("SELECT ?", undefined), /missing parameter \?1/);
  assert.throws(() => bindArgs("SELECT ?, ?", [1]), /missing parameter \?2/);
  assert.throws(() => bindArgs("SELECT $1, $2", { $2: 1 }), /missing parameter \$1/);
  assert.throws(() => bindArgs("SELECT :a, @b", { a: 1 }), /missing parameter @b/);
  assert.deepEqual(bindArgs("SELECT ?2", [null, 2]), [null, 2n]);
  assert.throws(() => bindArgs("SELECT 1", { "bad name": 1 }), /invalid parameter name/);
});

Deno.test("anonymousDollars: only $1..$n in order, each once", () => {
  assert.equal(anonymousDollars("SELECT $1, $2 FROM t"), "SELECT ?, ? FROM t");
  assert.equal(
    anonymousDollars("SELECT '$1', \"$2\" /* $1 */ FROM t WHERE a = $1 -- $2"),
    "SELECT '$1', \"$2\" /* $1 */ FROM t WHERE a = ? -- $2",
  );
  assert.equal(anonymousDollars("SELECT $2, $1"), null);
  assert.equal(anonymousDollars("SELECT $1, $1"), null);
  assert.equal(anonymousDollars("SELECT $1, ?"), null);
  assert.equal(anonymousDollars("SELECT $1, $name"), null);
  assert.equal(anonymousDollars("SELECT 1"), null);
});

Deno.test("bindArgs of an anonymized statement: positional, extra values refused", () => {
  const sql = "SELECT $1, $2";
  assert.deepEqual(bindArgs(sql, [1, "x"], true), [1n, "x"]);
  assert.deepEqual(bindArgs(sql, { $2: "b", $1: "a" }, true), ["a", "b"]);
  assert.deepEqual(bindArgs(sql, { "1": "a", $2: "b" }, true), ["a", "b"]);
  assert.throws(() => bindArgs(sql, [1], true), /missing parameter \$2/);
  assert.throws(() => bindArgs(sql, [1, 2, 3], true), /unknown parameter \$3/);
  assert.throws(() => bindArgs(sql, { $1: 1, $2: 2, x: 3 }, true), /unknown parameter x/);
});

Deno.test("parseDsn: paths, URIs with the README's parameters, memory", () => {
  const f = parseDsn("file:my.db?_journal=WAL&_busy_timeout=500&mode=rwc", false);
  assert.equal(f.id, "my.db");
  assert.equal(f.path, "my.db");
  assert.equal(f.uriParams, "mode=rwc");
  assert.deepEqual(Object.fromEntries(f.pragmas), {
    journal_mode: "WAL",
    busy_timeout: "500",
    synchronous: "NORMAL",
  });
  const m = parseDsn("data/x.db", true);
  assert.equal(m.id, "x.db");
  assert.equal(m.memory, true);
  assert.deepEqual(m.pragmas, []);
  assert.throws(() => parseDsn("file:a.db?_nope=1", false), /unknown parameter _nope/);
  assert.throws(() => parseDsn("file:a.db?_journal=WAL;DROP", false), /bad value/);
});

Deno.test("SQLite errors map to codes", () => {
  const unique = Object.assign(new Error("UNIQUE constraint failed: t.a"), { errcode: 2067 });
  assert.equal(fromSqliteError(unique).code, "constraint");
  assert.equal(fromSqliteError(unique).details.sqliteName, "SQLITE_CONSTRAINT_UNIQUE");
  const syntax = Object.assign(new Error('near "x": syntax error'), { errcode: 1 });
  assert.equal(fromSqliteError(syntax).code, "sql");
  const range = Object.assign(new Error("column index out of range"), { errcode: 25 });
  assert.equal(fromSqliteError(range).code, "bad_request");
  assert.equal(fromSqliteError(new TypeError("cannot bind")).code, "bad_request");
});

Deno.test("insideDir resolves .. and symlinks", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.mkdir(`${dir}/in`);
    await Deno.symlink("/tmp", `${dir}/in/out`);
    assert.equal(insideDir(`${dir}/in/a.db`, `${dir}/in`), true);
    assert.equal(insideDir(`${dir}/in/../a.db`, `${dir}/in`), false);
    assert.equal(insideDir(`${dir}/in/out/a.db`, `${dir}/in`), false);
    assert.equal(insideDir(`${dir}/in`, `${dir}/in`), false);
    assert.equal(insideDir(`${dir}/missing/a.db`, `${dir}/in`), false);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
