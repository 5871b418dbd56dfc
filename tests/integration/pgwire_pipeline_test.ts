/**
 * Pipelines: the messages up to Sync form one implicit transaction, as in PostgreSQL
 * (psycopg 3 pipeline mode in autocommit).
 */
import assert from "node:assert/strict";
import { python, startPg } from "./pgwire_helpers.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };

Deno.test("a pipeline is one implicit transaction: all or nothing", opts, async () => {
  const pg = await startPg();
  try {
    const r = await python(`
import psycopg
conn = psycopg.connect(host="127.0.0.1", port=${pg.port}, user="ha", password="ha", dbname="ha", autocommit=True)
conn.execute("CREATE TABLE pipe(id INTEGER PRIMARY KEY, v TEXT)")
try:
    with conn.pipeline():
        conn.execute("INSERT INTO pipe VALUES (%s, %s)", (1, "a"))
        conn.execute("INSERT INTO pipe VALUES (%s, %s)", (2, "b"))
        conn.execute("INSERT INTO pipe VALUES (%s, %s)", (1, "duplicate"))
except psycopg.errors.UniqueViolation:
    print("unique violation")
print("after failed pipeline", conn.execute("SELECT count(*) FROM pipe").fetchone()[0])
with conn.pipeline():
    conn.execute("INSERT INTO pipe VALUES (%s, %s)", (1, "a"))
    conn.execute("INSERT INTO pipe VALUES (%s, %s)", (2, "b"))
    cur = conn.execute("SELECT group_concat(v) FROM pipe")
print("after good pipeline", cur.fetchone()[0])
print("single", conn.execute("INSERT INTO pipe VALUES (3, 'c') RETURNING id").fetchone()[0])
`);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(r.stdout.trim().split("\n"), [
      "unique violation",
      "after failed pipeline 0",
      "after good pipeline a,b",
      "single 3",
    ]);
  } finally {
    await pg.stop();
  }
});
