/** The catalog rewriter, the DDL mapping and the COPY formats, without a server. */
import assert from "node:assert/strict";
import { DatabaseSync } from "node:sqlite";
import { classify } from "../../src/pgwire/catalog.ts";
import { CopyDecoder, copyValue, encodeCopyRow, parseCopy } from "../../src/pgwire/copy.ts";
import { mapDdl } from "../../src/pgwire/ddl_map.ts";
import { fillValuesDefaults, valuesDefaultTarget } from "../../src/pgwire/insert_defaults.ts";
import type { PgError } from "../../src/pgwire/errors.ts";
import {
  type CatalogEnv,
  isCatalogQuery,
  PgCatalog,
  rewriteCatalogSql,
} from "../../src/pgwire/pg_catalog/mod.ts";
import { Settings } from "../../src/pgwire/settings.ts";
import { findInterruptExtension, type SqlValue } from "../../src/engine/mod.ts";
import { tokenize } from "../../src/pgwire/sql.ts";
import { formatType, pgTypeOf } from "../../src/pgwire/pg_catalog/types.ts";

Deno.test("catalog queries are told apart from ordinary SQL", () => {
  const yes = [
    "SELECT * FROM pg_catalog.pg_class",
    "select relname from pg_class c join pg_namespace n on n.oid=c.relnamespace",
    "SELECT * FROM information_schema.tables WHERE table_name = $1",
    "SELECT 'users'::regclass",
    "SELECT format_type(23, -1)",
  ];
  const no = ["SELECT * FROM users", "INSERT INTO pg_class_copy VALUES (1)", "SELECT version()"];
  for (const q of yes) assert.ok(isCatalogQuery(tokenize(q)), q);
  for (const q of no) assert.ok(!isCatalogQuery(tokenize(q)), q);
  assert.equal(classify("SELECT * FROM pg_catalog.pg_class").kind, "catalog");
  assert.equal(classify("SELECT * FROM users").kind, "sql");
});

Deno.test("PostgreSQL syntax is rewritten for SQLite", () => {
  const cases: [string, string][] = [
    ["SELECT 'users'::regclass", "SELECT _pg_regclass('users')"],
    [
      "SELECT c.oid::pg_catalog.regclass::pg_catalog.text",
      "SELECT CAST(_pg_regclass(c.oid) AS TEXT)",
    ],
    ["SELECT f(x)::int", "SELECT CAST(f(x) AS INTEGER)"],
    [
      "WHERE relname OPERATOR(pg_catalog.~) '^(t)$' COLLATE pg_catalog.default",
      "WHERE relname REGEXP '^(t)$'",
    ],
    ["WHERE n !~ '^pg_' AND m ~* 'x'", "WHERE n NOT REGEXP '^pg_' AND m REGEXP '(?i)' || 'x'"],
    ["WHERE k IN (1) AND x != 2", "WHERE k IN (1) AND x != 2"],
    ["WHERE x = ANY(ARRAY['a','b'])", "WHERE x IN ('a','b')"],
    ["WHERE x <> ALL (ARRAY[1,2])", "WHERE x NOT IN (1,2)"],
    [
      "WHERE a.attnum = ANY(ix.indkey)",
      "WHERE a.attnum IN (SELECT value FROM json_each(_pg_array_json(ix.indkey)))",
    ],
    ["SELECT E'a\\nb'", "SELECT 'a\nb'"],
    ["SELECT pg_catalog.pg_get_userbyid(1)", "SELECT pg_get_userbyid(1)"],
    ["SELECT current_user, current_schema", "SELECT current_user(), current_schema()"],
    ["WHERE x = $1 AND y = $2", "WHERE x = ?1 AND y = ?2"],
    [
      "WHERE ix.indisprimary = 'f' AND c.contype = 'f'",
      "WHERE ix.indisprimary = 0 AND c.contype = 'f'",
    ],
    ["SELECT a IS DISTINCT FROM b", "SELECT a IS NOT b"],
    ["SELECT x AS default", 'SELECT x AS "default"'],
    ["SELECT substring(s FROM 'f=([0-9]*)')", "SELECT _pg_substring(s, 'f=([0-9]*)')"],
    ["SELECT indkey[0] FROM pg_index", "SELECT _pg_subscript(indkey, 0) FROM pg_index"],
  ];
  for (const [pg, lite] of cases) assert.equal(rewriteCatalogSql(pg), lite, pg);
  assert.equal(
    rewriteCatalogSql(
      "SELECT unnest(ix.indkey) a, generate_subscripts(ix.indkey, 1) o FROM pg_index ix WHERE 1",
    ),
    "SELECT _srf.value a, (_srf.key + 1) o FROM pg_index ix, json_each(_pg_array_json(ix.indkey)) AS _srf WHERE 1",
  );
  assert.match(
    rewriteCatalogSql("SELECT ARRAY(SELECT rolname FROM pg_roles)"),
    /^SELECT \(SELECT _pg_array_agg\(v\) FROM \(SELECT NULL AS v WHERE 0 UNION ALL SELECT \* FROM \(SELECT rolname FROM pg_roles\)\)\)$/,
  );
});

Deno.test("declared SQLite types get PostgreSQL type names", () => {
  assert.equal(
    formatType(pgTypeOf("VARCHAR(50)").oid, pgTypeOf("VARCHAR(50)").typmod),
    "character varying(50)",
  );
  assert.equal(formatType(pgTypeOf("INTEGER").oid, -1), "bigint");
  assert.equal(formatType(pgTypeOf("BOOLEAN").oid, -1), "boolean");
  assert.equal(
    formatType(pgTypeOf("TIMESTAMP WITHOUT TIME ZONE").oid, -1),
    "timestamp without time zone",
  );
  assert.equal(formatType(pgTypeOf("").oid, -1), "text");
  const n = pgTypeOf("NUMERIC(10,2)");
  assert.equal(formatType(n.oid, n.typmod), "numeric(10,2)");
});

Deno.test("PostgreSQL DDL is mapped onto SQLite and runs there", () => {
  const cases: [string, string][] = [
    [
      "CREATE TABLE t (id SERIAL NOT NULL, at TIMESTAMP WITHOUT TIME ZONE DEFAULT now(), PRIMARY KEY (id))",
      "CREATE TABLE t (id INTEGER NOT NULL, at TIMESTAMP WITHOUT TIME ZONE DEFAULT CURRENT_TIMESTAMP, PRIMARY KEY (id))",
    ],
    [
      'create table "u" ("id" bigserial primary key, "ok" boolean default true)',
      'create table "u" ("id" INTEGER primary key, "ok" boolean default 1)',
    ],
    [
      "CREATE TABLE g (id bigint GENERATED BY DEFAULT AS IDENTITY (START WITH 1) PRIMARY KEY, tags text[])",
      "CREATE TABLE g (id INTEGER  PRIMARY KEY, tags JSON)",
    ],
    [
      "CREATE TABLE d (s varchar(10) DEFAULT 'x'::character varying)",
      "CREATE TABLE d (s varchar(10) DEFAULT 'x')",
    ],
    ['CREATE INDEX CONCURRENTLY "i" ON "t" USING btree ("a")', 'CREATE INDEX  "i" ON "t"  ("a")'],
    ["DROP TABLE t CASCADE", "DROP TABLE t "],
    ["ALTER TABLE t ADD COLUMN n serial", "ALTER TABLE t ADD COLUMN n INTEGER"],
    ["SELECT now()", "SELECT now()"],
  ];
  for (const [pg, lite] of cases) assert.equal(mapDdl(pg), lite, pg);
  assert.throws(
    () => mapDdl("ALTER TABLE a ADD CONSTRAINT f FOREIGN KEY (x) REFERENCES b(id)"),
    (e: PgError) => e.code === "0A000",
  );
  // the mapped statements are valid SQLite, defaults included
  const db = new DatabaseSync(":memory:");
  db.exec(
    mapDdl(
      "CREATE TABLE t (id SERIAL NOT NULL, at TIMESTAMP DEFAULT now(), u UUID DEFAULT gen_random_uuid(), ok BOOLEAN DEFAULT false, PRIMARY KEY (id))",
    ),
  );
  db.exec("INSERT INTO t DEFAULT VALUES");
  const row = db.prepare("SELECT id, at, u, ok FROM t").get() as Record<string, unknown>;
  assert.equal(row.id, 1);
  assert.match(String(row.at), /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$/);
  assert.match(
    String(row.u),
    /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/,
  );
  assert.equal(row.ok, 0);
  db.close();
});

Deno.test("COPY statements and formats", () => {
  const c = parseCopy("COPY t (a, \"B\") FROM STDIN WITH (FORMAT csv, HEADER, NULL 'NA')");
  assert.deepEqual(
    [c.table, c.columns, c.format, c.header, c.delimiter, c.null],
    ["t", ["a", '"B"'], "csv", true, ",", "NA"],
  );
  const old = parseCopy("copy public.t to stdout with csv header delimiter as ';'");
  assert.deepEqual([old.table, old.direction, old.format, old.header, old.delimiter], [
    "t",
    "to",
    "csv",
    true,
    ";",
  ]);
  assert.equal(parseCopy("COPY (SELECT 1) TO STDOUT").query, "SELECT 1");
  assert.throws(() => parseCopy("COPY t FROM '/tmp/x'"), (e: PgError) => e.code === "0A000");
  assert.throws(
    () => parseCopy("COPY t FROM STDIN (FORMAT binary)"),
    (e: PgError) => e.code === "0A000",
  );

  // text: escapes, \N, end marker, rows split across chunks
  const text = new CopyDecoder(parseCopy("COPY t FROM STDIN"));
  text.push("1\ta\\tb\t\\N\n2\t");
  assert.deepEqual(text.take(), [["1", "a\tb", null]]);
  text.push("x\\ny\tz\n\\.\n");
  text.finish();
  assert.deepEqual(text.take(), [["2", "x\ny", "z"]]);
  // csv: header, quotes, doubled quotes, newlines in quotes, empty = NULL, "" = empty string
  const csv = new CopyDecoder(parseCopy("COPY t FROM STDIN (FORMAT csv, HEADER true)"));
  csv.push('a,b,c\n1,"x, ""y""",\n2,"multi\nli');
  csv.push('ne",""');
  csv.finish();
  assert.deepEqual(csv.take(), [["1", 'x, "y"', null], ["2", "multi\nline", ""]]);

  const out = parseCopy("COPY t TO STDOUT (FORMAT csv)");
  assert.equal(encodeCopyRow([1n, 'a,"b"', null, ""], [20, 25, 25, 25], out), '1,"a,""b""",,""\n');
  assert.equal(
    encodeCopyRow(
      [1n, "a\tb\\", null, "x"],
      [20, 25, 25, 25],
      parseCopy("COPY t TO STDOUT"),
    ),
    "1\ta\\tb\\\\\t\\N\tx\n",
  );
  assert.equal(copyValue("t", "BOOLEAN"), 1n);
  assert.equal(copyValue("false", "bool"), 0n);
  assert.deepEqual(copyValue("\\x00ff", "BYTEA"), new Uint8Array([0, 255]));
  assert.equal(copyValue("12", "INTEGER"), "12");
  assert.throws(() => copyValue("maybe", "BOOLEAN"), (e: PgError) => e.code === "22P02");
});

Deno.test("INSERT … VALUES (DEFAULT, …) gets the columns' defaults", () => {
  const sql = 'insert into "k" ("a", "b") values (DEFAULT, $1), ($2, DEFAULT) returning "id"';
  assert.equal(valuesDefaultTarget(tokenize(sql)), "k");
  assert.equal(valuesDefaultTarget(tokenize("INSERT INTO k DEFAULT VALUES")), null);
  assert.equal(valuesDefaultTarget(tokenize("INSERT INTO k VALUES (1)")), null);
  assert.equal(
    fillValuesDefaults(sql, [["id", null], ["a", "'1'"], ["b", null]]),
    'insert into "k" ("a", "b") values ((\'1\'), $1), ($2, NULL) returning "id"',
  );
  assert.equal(
    fillValuesDefaults("INSERT INTO k VALUES (DEFAULT, 2)", [["id", null], [
      "a",
      "CURRENT_TIMESTAMP",
    ]]),
    "INSERT INTO k VALUES (NULL, 2)",
  );
});

/** A catalog environment over the user database `user`. */
function catalogEnv(user: DatabaseSync, timeoutMs = 0): CatalogEnv {
  return {
    user: "ha",
    database: "ha.db",
    pid: 1,
    settings: new Settings("ha"),
    databases: () => ["ha.db"],
    timeoutMs,
    query: (sql: string) => {
      const s = user.prepare(sql);
      s.setReadBigInts(true);
      (s as unknown as { setReturnArrays(on: boolean): void }).setReturnArrays(true);
      return Promise.resolve(s.all() as unknown as SqlValue[][]);
    },
  };
}

Deno.test("a catalog function's error fails the query (and never reaches SQLite)", async () => {
  // Deno's node:sqlite hangs when a user function throws: errors must come back as values
  const user = new DatabaseSync(":memory:");
  user.exec("CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT)");
  const env = catalogEnv(user);
  const catalog = new PgCatalog();
  try {
    const ok = await catalog.run("SELECT 't'::regclass::oid AS oid", [], env);
    assert.deepEqual(ok.rows, [[16384n]]);
    await assert.rejects(
      catalog.run("SELECT 'nope'::regclass", [], env),
      (e: PgError) => e.code === "42P01" && /relation "nope" does not exist/.test(e.message),
    );
    await assert.rejects(
      catalog.run("SELECT relname FROM pg_class WHERE relname ~ '('", [], env),
      (e: PgError) => e.code === "0A000" && /Invalid regular expression/.test(e.message),
    );
    await assert.rejects(
      catalog.run("SELECT current_setting('no_such_setting')", [], env),
      (e: PgError) => e.code === "42704",
    );
    // the catalog still answers afterwards
    const r = await catalog.run(
      "SELECT relname FROM pg_catalog.pg_class WHERE relname ~ '^t' AND relkind = 'r'",
      [],
      env,
    );
    assert.deepEqual(r.rows, [["t"]]);
  } finally {
    catalog.close();
    user.close();
  }
});

Deno.test("a runaway catalog query stops at its timeout (57014); load_extension() stays off", async () => {
  const ext = await findInterruptExtension();
  assert.ok(ext, "vendor/ha_interrupt.so: run scripts/build-extension.sh");
  const user = new DatabaseSync(":memory:");
  user.exec("CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT)");
  const catalog = new PgCatalog(ext);
  try {
    const runaway = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) " +
      "SELECT count(*) FROM c, pg_class";
    await assert.rejects(
      catalog.run(runaway, [], catalogEnv(user, 100)),
      (e: PgError) => e.code === "57014" && /statement timeout \(100 ms/.test(e.message),
    );
    await assert.rejects(
      catalog.run("SELECT load_extension($1) FROM pg_class", [ext], catalogEnv(user, 100)),
      (e: PgError) => e.code === "0A000" && /not authorized/.test(e.message),
    );
    const r = await catalog.run(
      "SELECT relname FROM pg_catalog.pg_class WHERE relname = 't'",
      [],
      catalogEnv(user, 100),
    );
    assert.deepEqual(r.rows, [["t"]]);
  } finally {
    catalog.close();
    user.close();
  }
});
