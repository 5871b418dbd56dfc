/**
 * Three nodes write conflicting updates, upserts and deletes to the same rows concurrently for a
 * few seconds; after quiescence every node has identical tables (last writer wins per row).
 */
import assert from "node:assert/strict";
import { withCluster } from "./helpers/cluster.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };

Deno.test("three nodes, concurrent conflicting writes converge", opts, async () => {
  await withCluster(3, async ([n1, n2, n3], cluster) => {
    const nodes = [n1, n2, n3];
    await n1.sql("CREATE TABLE kv(k INTEGER PRIMARY KEY, v TEXT, n INTEGER)");
    await n1.sql("CREATE TABLE log(a, b)");
    await cluster.waitConverged(nodes, ["kv", "log"]);
    const end = Date.now() + 4_000;
    const MIN_ROUNDS = 20;
    let writes = 0;
    const worker = async (node: typeof n1, w: number) => {
      let i = 0;
      // At least MIN_ROUNDS whatever the machine's speed (at most one in five can get a 409).
      while (i < MIN_ROUNDS || Date.now() < end) {
        const k = (i * 7 + w) % 10;
        const r = (i + w) % 5;
        try {
          if (r === 0) await node.sql("DELETE FROM kv WHERE k = ?", [k]);
          else if (r === 1) {
            await node.sql("UPDATE kv SET n = n + 1, v = ? WHERE k = ?", [node.name, k]);
          } else if (r === 2) {
            await node.batch([
              {
                sql:
                  "INSERT INTO kv(k, v, n) VALUES (?, ?, 0) ON CONFLICT(k) DO UPDATE SET v = excluded.v",
                params: [k, `${node.name}-${i}`],
              },
              { sql: "UPDATE kv SET k = ? WHERE k = ?", params: [k + 100, (k + 1) % 10] },
            ]);
          } else if (r === 3) await node.sql("INSERT INTO log(a, b) VALUES (?, ?)", [node.name, i]);
          else {
            await node.sql("INSERT OR REPLACE INTO kv(k, v, n) VALUES (?, ?, ?)", [
              k,
              node.name,
              i,
            ]);
          }
          writes++;
        } catch (e) {
          // constraint errors from the PK-changing update are expected
          if (!String(e).includes("409")) throw e;
        }
        i++;
      }
    };
    await Promise.all(nodes.flatMap((n) => [0, 1, 2].map((w) => worker(n, w))));
    const sums = await cluster.waitConverged(nodes, ["kv", "log"], 30_000);
    assert.ok(writes > 100, `only ${writes} writes`);
    console.log(`writes: ${writes}, checksum ${sums[0]}`);
    for (const n of nodes) assert.equal((await n.get("/readyz")).status, 200);
  });
});
