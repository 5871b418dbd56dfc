/**
 * `--row-identify full` with real processes (issue 9, scenario 6): a WITHOUT ROWID table created
 * in the same transaction as its first rows replicates, and a table without a primary key that
 * holds duplicate rows converges to the same multiset of rows on both nodes (an UPDATE or DELETE
 * changes exactly one of the identical rows, an INSERT always adds one).
 */
import assert from "node:assert/strict";
import { withCluster } from "./helpers/cluster.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };
const FULL = ["--row-identify", "full"];

Deno.test(
  "row-identify full: WITHOUT ROWID in one transaction, duplicate rows",
  opts,
  async (t) => {
    await withCluster(2, async ([n1, n2], cluster) => {
      const both = [n1, n2];

      await t.step("a WITHOUT ROWID table created with its first rows", async () => {
        await n1.batch([
          { sql: "CREATE TABLE kv(k TEXT PRIMARY KEY, v) WITHOUT ROWID" },
          { sql: "INSERT INTO kv VALUES ('a', 1), ('b', 2)" },
          { sql: "UPDATE kv SET v = 3 WHERE k = 'b'" },
        ]);
        await n1.sql("DELETE FROM kv WHERE k = 'a'");
        await cluster.waitConverged(both, ["kv"]);
        await n2.sql("INSERT INTO kv VALUES ('c', 4)");
        await cluster.waitConverged(both, ["kv"]);
        assert.deepEqual((await n2.sql("SELECT k, v FROM kv ORDER BY k")).rows, [["b", 3], [
          "c",
          4,
        ]]);
      });

      await t.step("duplicate rows in a table without a primary key", async () => {
        await n1.sql("CREATE TABLE log(a, b)");
        await n1.sql("INSERT INTO log VALUES (1, 'x'), (1, 'x')");
        await n1.sql("INSERT INTO log VALUES (1, 'x')");
        await n1.sql("INSERT INTO log VALUES (2, 'y'), (2, 'y')");
        await cluster.waitConverged(both, ["log"]);
        // One of three identical rows changes; one of two is deleted; an update makes a duplicate.
        await n1.sql(
          "UPDATE log SET b = 'z' WHERE rowid = (SELECT min(rowid) FROM log WHERE a = 1)",
        );
        await n2.sql("DELETE FROM log WHERE rowid = (SELECT max(rowid) FROM log WHERE a = 2)");
        await cluster.waitConverged(both, ["log"]);
        await n2.sql("UPDATE log SET b = 'x' WHERE b = 'z'");
        await n1.sql("INSERT INTO log VALUES (2, 'y')");
        await n2.sql("DELETE FROM log WHERE a = 1 AND rowid IN (SELECT rowid FROM log LIMIT 1)");
        await cluster.waitConverged(both, ["log"]);
        const expected = [[1, "x"], [1, "x"], [2, "y"], [2, "y"]];
        assert.deepEqual((await n1.sql("SELECT a, b FROM log ORDER BY a, b")).rows, expected);
        assert.deepEqual((await n2.sql("SELECT a, b FROM log ORDER BY a, b")).rows, expected);
      });
    }, { args: FULL });
  },
);
