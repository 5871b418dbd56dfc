/** node `pg`, `postgres` (porsager) and Python psycopg 3 against `ha --pg-port`. */
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import pg from "pg";
import postgres from "postgres";
import { python, startPg } from "./pgwire_helpers.ts";

const opts = { sanitizeResources: false, sanitizeOps: false };

const TABLE = `CREATE TABLE typed(
  id INTEGER PRIMARY KEY, i INTEGER, f REAL, s TEXT, v VARCHAR(20), b BOOLEAN, bl BLOB,
  d DATE, ts TIMESTAMP, tz TIMESTAMPTZ, n NUMERIC, u UUID, j JSON, jb JSONB)`;

Deno.test("node pg: parameters of every type, transactions, errors", opts, async (t) => {
  const server = await startPg();
  const client = new pg.Client({
    host: "127.0.0.1",
    port: server.port,
    user: "ha",
    password: "ha",
    database: "ha",
  });
  await client.connect();
  try {
    await t.step("round-trips values through typed columns", async () => {
      await client.query(TABLE);
      const when = new Date("2024-02-03T04:05:06.789Z");
      const ins = await client.query(
        "INSERT INTO typed(i, f, s, v, b, bl, d, ts, tz, n, u, j, jb) " +
          "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) RETURNING id",
        [
          9007199254740993n.toString(),
          -1.25,
          "héllo 'quoted'",
          "var",
          true,
          Buffer.from([0, 1, 254, 255]),
          "2024-02-03",
          when,
          when,
          "12.5",
          "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11",
          JSON.stringify({ a: [1, 2] }),
          JSON.stringify({ b: null }),
        ],
      );
      assert.equal(ins.command, "INSERT");
      assert.equal(ins.rowCount, 1);
      assert.deepEqual(ins.rows, [{ id: "1" }]);
      const r = await client.query("SELECT * FROM typed WHERE id = $1", [1]);
      const row = r.rows[0];
      assert.equal(row.i, "9007199254740993"); // int8 is a string in node pg: no digit lost
      assert.equal(row.f, -1.25);
      assert.equal(row.s, "héllo 'quoted'");
      assert.equal(row.v, "var");
      assert.equal(row.b, true);
      assert.deepEqual([...row.bl], [0, 1, 254, 255]);
      assert.equal(row.ts.getTime(), when.getTime());
      assert.equal(row.tz.getTime(), when.getTime());
      assert.equal(row.n, "12.5");
      assert.equal(row.u, "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11");
      assert.deepEqual(row.j, { a: [1, 2] });
      assert.deepEqual(row.jb, { b: null });
      const oids = Object.fromEntries(
        r.fields.map((f: { name: string; dataTypeID: number }) => [f.name, f.dataTypeID]),
      );
      assert.deepEqual(oids, {
        id: 20,
        i: 20,
        f: 701,
        s: 25,
        v: 1043,
        b: 16,
        bl: 17,
        d: 1082,
        ts: 1114,
        tz: 1184,
        n: 1700,
        u: 2950,
        j: 114,
        jb: 3802,
      });
      const e = await client.query("SELECT count(*) AS n, 1.5 AS x, NULL AS z, $1 || 'b' AS y", [
        "a",
      ]);
      assert.deepEqual(e.rows, [{ n: "1", x: 1.5, z: null, y: "ab" }]);
      assert.deepEqual(e.fields.map((f: { name: string; dataTypeID: number }) => f.dataTypeID), [
        20,
        701,
        25,
        25,
      ]);
    });

    await t.step("command tags and row counts", async () => {
      await client.query("CREATE TABLE tags(a INTEGER)");
      assert.equal((await client.query("INSERT INTO tags VALUES (1), (2), (3)")).rowCount, 3);
      const u = await client.query("UPDATE tags SET a = a + 1 WHERE a > $1", [1]);
      assert.equal(u.command, "UPDATE");
      assert.equal(u.rowCount, 2);
      const d = await client.query("DELETE FROM tags WHERE a = 4");
      assert.equal(d.command, "DELETE");
      assert.equal(d.rowCount, 1);
      const s = await client.query("SELECT * FROM tags");
      assert.equal(s.command, "SELECT");
      assert.equal(s.rowCount, 2);
    });

    await t.step("named prepared statements are reused and re-run", async () => {
      for (let i = 0; i < 3; i++) {
        await client.query({
          name: "ins",
          text: "INSERT INTO tags VALUES ($1)",
          values: [100 + i],
        });
      }
      const q = { name: "cnt", text: "SELECT count(*) AS n FROM tags WHERE a >= $1" };
      assert.equal((await client.query({ ...q, values: [100] })).rows[0].n, "3");
      await client.query("INSERT INTO tags VALUES (103)");
      assert.equal((await client.query({ ...q, values: [100] })).rows[0].n, "4");
    });

    await t.step("transactions: commit, rollback, failed state", async () => {
      await client.query("BEGIN");
      await client.query("INSERT INTO tags VALUES (500)");
      await client.query("COMMIT");
      await client.query("BEGIN");
      await client.query("INSERT INTO tags VALUES (501)");
      await client.query("ROLLBACK");
      const r = await client.query("SELECT a FROM tags WHERE a >= 500 ORDER BY a");
      assert.deepEqual(r.rows, [{ a: "500" }]);
      await client.query("BEGIN");
      await client.query("INSERT INTO tags VALUES (502)");
      await assert.rejects(client.query("SELECT * FROM missing"), { code: "42P01" });
      await assert.rejects(client.query("SELECT 1"), { code: "25P02" });
      assert.equal((await client.query("COMMIT")).command, "ROLLBACK");
      assert.equal(
        (await client.query("SELECT count(*) AS n FROM tags WHERE a = 502")).rows[0].n,
        "0",
      );
    });

    await t.step("errors map to SQLSTATEs", async () => {
      await client.query("CREATE TABLE parent(id INTEGER PRIMARY KEY)");
      await client.query(
        "CREATE TABLE child(pid INTEGER REFERENCES parent(id), c INTEGER CHECK (c > 0))",
      );
      await client.query("PRAGMA foreign_keys = ON").catch(() => {});
      const cases: [string, unknown[], string][] = [
        ["SELEC 1", [], "42601"],
        ["SELECT * FROM nope", [], "42P01"],
        ["SELECT nope FROM tags", [], "42703"],
        ["INSERT INTO typed(id) VALUES (1)", [], "23505"],
        ["INSERT INTO child(c) VALUES (0)", [], "23514"],
        ["INSERT INTO tags VALUES ($1)", ["x", "y"], "08P01"],
        ["SELECT 1; SELECT 2", [1], "42601"],
      ];
      for (const [sql, params, code] of cases) {
        await assert.rejects(client.query(sql, params.length ? params : undefined), { code }, sql);
      }
      assert.equal((await client.query("SELECT 'ok' AS ok")).rows[0].ok, "ok");
    });
  } finally {
    await client.end();
    await server.stop();
  }
});

Deno.test("postgres.js: prepared statements, pipelining, cursors, transactions", opts, async () => {
  const server = await startPg();
  const sql = postgres({
    host: "127.0.0.1",
    port: server.port,
    user: "ha",
    password: "ha",
    database: "ha",
    max: 4,
    onnotice: () => {},
  });
  try {
    await sql.unsafe(TABLE);
    const when = new Date("2020-01-01T00:00:00.000Z");
    const [ins] = await sql`
      INSERT INTO typed(i, f, s, b, bl, ts, n, j)
      VALUES (${42}, ${0.5}, ${"ünïcode"}, ${true}, ${Buffer.from("hi")}, ${when}, ${"3.25"},
              ${sql.json({ k: "v" })})
      RETURNING id`;
    assert.equal(ins.id, "1");
    const [row] = await sql`SELECT i, f, s, b, bl, ts, n, j FROM typed WHERE s = ${"ünïcode"}`;
    assert.equal(row.i, "42");
    assert.equal(row.f, 0.5);
    assert.equal(row.b, true);
    assert.deepEqual([...row.bl], [104, 105]);
    assert.equal(row.ts.getTime(), when.getTime());
    assert.equal(row.n, "3.25");
    assert.deepEqual(row.j, { k: "v" });
    // the same statement many times, concurrently: pipelined on few connections
    const many = await Promise.all(
      Array.from({ length: 50 }, (_, i) => sql`SELECT ${i} + 1 AS n, ${"x" + i} AS s`),
    );
    assert.deepEqual(many.map((r) => Number(r[0].n)), Array.from({ length: 50 }, (_, i) => i + 1));
    // a cursor fetches in batches: Execute with a row limit → PortalSuspended
    await sql`CREATE TABLE seq(n INTEGER)`;
    await sql`WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 25)
              INSERT INTO seq SELECT x FROM c`;
    const batches: number[] = [];
    await sql`SELECT n FROM seq WHERE n > ${0} ORDER BY n`.cursor(10, (rows) => {
      batches.push(rows.length);
    });
    assert.deepEqual(batches, [10, 10, 5]);
    // transactions
    await sql.begin(async (tx) => {
      await tx`INSERT INTO seq VALUES (${100})`;
      await tx`INSERT INTO seq VALUES (${101})`;
    });
    await assert.rejects(
      sql.begin(async (tx) => {
        await tx`INSERT INTO seq VALUES (${200})`;
        await tx`INSERT INTO nope VALUES (1)`;
      }),
      { code: "42P01" },
    );
    const [c] = await sql`SELECT count(*) AS n FROM seq WHERE n >= 100`;
    assert.equal(c.n, "2");
    await assert.rejects(sql`SELECT * FROM typed WHERE id = ${"a"} AND nope = 1`, {
      code: "42703",
    });
  } finally {
    await sql.end();
    await server.stop();
  }
});

Deno.test("psycopg 3: text and binary, prepared, transactions, errors", opts, async () => {
  const server = await startPg();
  try {
    const r = await python(`
import datetime, decimal, uuid, psycopg
from psycopg.types.json import Jsonb
dsn = "host=127.0.0.1 port=${server.port} user=ha password=ha dbname=ha"
with psycopg.connect(dsn, autocommit=True) as c:
    c.execute("""${TABLE}""")
with psycopg.connect(dsn) as conn:
    cur = conn.cursor()
    vals = (2**40, 1.5, "x'y", "v", True, b"\\x00\\x01", datetime.date(2024, 1, 2),
            datetime.datetime(2024, 1, 2, 3, 4, 5, 123456),
            datetime.datetime(2024, 1, 2, 3, 4, 5, tzinfo=datetime.timezone.utc),
            decimal.Decimal("1.25"), uuid.UUID(int=1), Jsonb({"a": [1, 2]}))
    cur.execute("INSERT INTO typed(i,f,s,v,b,bl,d,ts,tz,n,u,jb) VALUES "
                "(%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s) RETURNING id", vals)
    assert cur.fetchone() == (1,)
    conn.commit()
    expected = (1, 2**40, 1.5, "x'y", "v", True, b"\\x00\\x01", datetime.date(2024, 1, 2),
                datetime.datetime(2024, 1, 2, 3, 4, 5, 123456),
                datetime.datetime(2024, 1, 2, 3, 4, 5, tzinfo=datetime.timezone.utc),
                decimal.Decimal("1.25"), uuid.UUID(int=1), None, {"a": [1, 2]})
    for binary in (False, True):
        with conn.cursor(binary=binary) as bc:
            bc.execute("SELECT * FROM typed WHERE id = %s", (1,))
            got = bc.fetchone()
            assert got == expected, (binary, got)
    for i in range(8):  # psycopg prepares after 5 executions
        cur.execute("SELECT count(*), sum(f) FROM typed WHERE s = %s", ("x'y",))
        assert cur.fetchone() == (1, 1.5)
    conn.commit()
    try:
        cur.execute("SELECT * FROM nope")
        raise SystemExit("no error")
    except psycopg.errors.UndefinedTable:
        pass
    try:
        cur.execute("SELECT 1")
        raise SystemExit("no error")
    except psycopg.errors.InFailedSqlTransaction:
        pass
    conn.rollback()
    try:
        cur.execute("INSERT INTO typed(id) VALUES (1)")
    except psycopg.errors.UniqueViolation:
        pass
    conn.rollback()
    cur.execute("SELECT count(*) FROM typed")
    assert cur.fetchone() == (1,)
print("psycopg ok")
`);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /psycopg ok/);
  } finally {
    await server.stop();
  }
});
