/**
 * A long-lived plain connection writes through `send(2)` (`src/pgwire/socket_send.ts`) once it
 * has flushed 1024 times: the same bytes as before, small answers and large results alike.
 */
import assert from "node:assert/strict";
import { python, startPg } from "./pgwire_helpers.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };

Deno.test("answers after the connection switches to send(2) are the same", opts, async () => {
  const pg = await startPg();
  try {
    const r = await python(`
import psycopg
conn = psycopg.connect(host="127.0.0.1", port=${pg.port}, user="ha", password="ha", dbname="ha", autocommit=True)
conn.execute("CREATE TABLE kv(k INTEGER PRIMARY KEY, v TEXT)")
conn.execute("WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 2000) INSERT INTO kv SELECT x, 'v' || x FROM c")
bad = 0
for i in range(1, 1301):
    k = (i * 7919) % 2000 + 1
    row = conn.execute("SELECT v FROM kv WHERE k = %s", (k,), prepare=(i % 2 == 0)).fetchone()
    if row[0] != f"v{k}":
        bad += 1
print("point selects wrong", bad)
big = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 200000) SELECT x, printf('%-40d', x) FROM c"
rows = conn.execute(big).fetchall()
print("large result", len(rows), sum(r[0] for r in rows), all(r[1].strip() == str(r[0]) for r in rows))
try:
    conn.execute("SELECT * FROM missing_table")
except psycopg.errors.UndefinedTable:
    print("error then")
with conn.pipeline():
    a = conn.execute("SELECT v FROM kv WHERE k = %s", (5,))
    b = conn.execute("SELECT count(*) FROM kv")
print("pipeline", a.fetchone()[0], b.fetchone()[0])
`);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(r.stdout.trim().split("\n"), [
      "point selects wrong 0",
      `large result 200000 ${(200000 * 200001) / 2} True`,
      "error then",
      "pipeline v5 2000",
    ]);
  } finally {
    await pg.stop();
  }
});
