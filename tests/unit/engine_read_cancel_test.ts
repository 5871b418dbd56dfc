/**
 * Cancelling a read terminates its reader; the other reads queued on that reader run again
 * elsewhere instead of failing with the cancellation.
 */
import assert from "node:assert/strict";
import { openEngine } from "../../src/engine/mod.ts";
import { HaError } from "../../src/errors/mod.ts";
import { createLogger } from "../../src/log/mod.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };
const SLOW = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 1e9) " +
  "SELECT count(*) FROM c";

Deno.test(
  "a cancelled read does not fail the other reads queued on its reader",
  opts,
  async () => {
    const engine = await openEngine({
      dsns: [],
      memory: true,
      concurrentQueries: 64,
      logger: createLogger("error"),
    });
    try {
      const db = engine.defaultDb;
      await db.execute([{ sql: "CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)" }]);
      await db.execute([{
        sql: "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 50) " +
          "INSERT INTO t SELECT x, 'v' || x FROM c",
      }]);
      const point = (id: number) =>
        db.execute([{ sql: "SELECT v FROM t WHERE id = ?", params: [id] }]).then((r) => r[0].rows);

      const ids = Array.from({ length: 40 }, (_, i) => i + 1);
      assert.deepEqual(await Promise.all(ids.map(point)), ids.map((i) => [[`v${i}`]]));

      const ac = new AbortController();
      const slow = db.execute([{ sql: SLOW }], { signal: ac.signal });
      const fast = ids.map(point);
      setTimeout(() => ac.abort(), 50);
      await assert.rejects(slow, (e) => e instanceof HaError && e.code === "cancelled");
      assert.deepEqual(await Promise.all(fast), ids.map((i) => [[`v${i}`]]));
      assert.deepEqual(await point(7), [["v7"]], "reads still work after a reader was replaced");
    } finally {
      await engine.close();
    }
  },
);
