/**
 * README usage with real processes: node1 runs the embedded nats-server, node2 connects to it;
 * DDL and rows written on either node appear on the other, values exactly.
 */
import assert from "node:assert/strict";
import { withCluster } from "./helpers/cluster.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };

Deno.test("two nodes: DDL and inserts on either node appear on the other", opts, async () => {
  await withCluster(2, async ([n1, n2], cluster) => {
    await n1.sql("CREATE TABLE users(id INTEGER PRIMARY KEY, name TEXT)");
    await n1.sql("INSERT INTO users(id, name) VALUES (1, 'HA user')");
    await n2.sql("INSERT INTO users(id, name) VALUES (2, 'new HA user')");
    await cluster.waitConverged([n1, n2], ["users"]);
    const r = await n1.sql("SELECT id, name FROM users ORDER BY id");
    assert.deepEqual(r.rows, [[1, "HA user"], [2, "new HA user"]]);
    await n2.sql("UPDATE users SET name = 'renamed' WHERE id = 1");
    await n1.sql("DELETE FROM users WHERE id = 2");
    await n2.sql("ALTER TABLE users ADD COLUMN email TEXT");
    await n1.sql("UPDATE users SET email = 'a@b' WHERE id = 1").catch(() => null);
    await cluster.waitConverged([n1, n2], ["users"]);
    const r2 = await n2.sql("SELECT id, name FROM users ORDER BY id");
    assert.deepEqual(r2.rows, [[1, "renamed"]]);
    const repl = await n1.get("/replications");
    assert.equal(repl.status, 200);
    const names = (repl.body as { replications: { name: string }[] }).replications.map((c) =>
      c.name
    ).sort();
    assert.deepEqual(names, ["ha_db_node1", "ha_db_node2"]);
    assert.equal((await n1.get("/replications/ha_db_node2")).status, 200);
    assert.equal((await n1.get("/replications/nope")).status, 404);
    assert.equal((await n2.get("/readyz")).status, 200);
  });
});

Deno.test("exact values across nodes: typeof and quote identical", opts, async () => {
  await withCluster(2, async ([n1, n2], cluster) => {
    await n1.sql('CREATE TABLE "odd ""name"""(k INTEGER PRIMARY KEY, "select" ANY, n NUMERIC)');
    const values = [
      "9223372036854775807",
      "-9223372036854775808",
      "9007199254740993",
      "1.0",
      "-0.0",
      "1e300",
      "0.1",
      "9e999",
      "x'00ff7f'",
      "x''",
      "'héllo 🌍 \"quoted\" ''single'''",
      "''",
      "NULL",
      "42",
    ];
    await n1.batch(values.map((v, i) => ({
      sql: `INSERT INTO "odd ""name"""(k, "select", n) VALUES (${i}, ${v}, ${v})`,
    })));
    await n2.sql(`INSERT INTO "odd ""name"""(k, "select") VALUES (100, 2.5)`);
    const sums = await cluster.waitConverged([n1, n2], ['odd "name"']);
    assert.ok(sums[0].startsWith("15:"), sums[0]);
    const q = `SELECT k, typeof("select"), quote("select"), typeof(n), quote(n)
               FROM "odd ""name""" ORDER BY k`;
    assert.deepEqual((await n2.sql(q)).rows, (await n1.sql(q)).rows);
  });
});
