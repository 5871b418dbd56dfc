/**
 * Replication semantics with real processes (two nodes, embedded NATS): user triggers make their
 * side effects once on every node, rows deleted by ON CONFLICT REPLACE and WITHOUT ROWID tables
 * replicate, a transaction too large for NATS is refused with 413, and `/replications` shows
 * JetStream consumer infos.
 */
import assert from "node:assert/strict";
import { DEFAULT_MAX_PAYLOAD } from "../../src/nats/mod.ts";
import { type HaNode, HttpError, withCluster } from "./helpers/cluster.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };

/** Rows of a query, exact per storage class. */
async function dump(n: HaNode, sql: string): Promise<unknown[][]> {
  return (await n.sql(sql)).rows;
}

Deno.test("replication semantics across two nodes", opts, async (t) => {
  await withCluster(2, async ([n1, n2], cluster) => {
    const both = [n1, n2];

    await t.step("an AFTER INSERT audit trigger: one audit row per insert per node", async () => {
      await n1.batch([
        { sql: "CREATE TABLE items(id INTEGER PRIMARY KEY, name TEXT)" },
        { sql: "CREATE TABLE audit(id INTEGER PRIMARY KEY AUTOINCREMENT, what TEXT)" },
        {
          sql: `CREATE TRIGGER items_audit AFTER INSERT ON items BEGIN
                  INSERT INTO audit(what) VALUES ('added ' || NEW.name); END`,
        },
      ]);
      await cluster.waitConverged(both, ["items", "audit"]);
      // Alternate writers, converging in between: AUTOINCREMENT ids are allocated in the same
      // order everywhere, so the audit tables are identical, ids included.
      for (const [i, n] of [n1, n2, n1, n2].entries()) {
        await n.sql("INSERT INTO items(id, name) VALUES (?, ?)", [i + 1, `${n.name}-${i}`]);
        await cluster.waitConverged(both, ["items", "audit"]);
      }
      await n2.batch([
        { sql: "INSERT INTO items(id, name) VALUES (10, 'batch a')" },
        { sql: "INSERT INTO items(id, name) VALUES (11, 'batch b')" },
      ]);
      await cluster.waitConverged(both, ["items", "audit"]);
      const audit = await dump(n1, "SELECT id, what FROM audit ORDER BY id");
      assert.deepEqual(audit, [
        [1, "added node1-0"],
        [2, "added node2-1"],
        [3, "added node1-2"],
        [4, "added node2-3"],
        [5, "added batch a"],
        [6, "added batch b"],
      ]);
      assert.deepEqual(await dump(n2, "SELECT id, what FROM audit ORDER BY id"), audit);

      // Concurrent inserts on both nodes: each node numbers its audit rows in its own order, but
      // has exactly one per item, with the same content (a replicated audit row would collide
      // with the other node's under the same id and overwrite it).
      await Promise.all(both.map(async (n, k) => {
        for (let i = 0; i < 20; i++) {
          await n.sql("INSERT INTO items(id, name) VALUES (?, ?)", [100 + 2 * i + k, `c${k}-${i}`]);
        }
      }));
      await cluster.waitConverged(both, ["items"]);
      const contents = await Promise.all(
        both.map((n) => dump(n, "SELECT what FROM audit ORDER BY what")),
      );
      assert.equal(contents[0].length, 46);
      assert.deepEqual(contents[1], contents[0]);
      assert.deepEqual(
        await dump(n1, "SELECT count(DISTINCT what) FROM audit"),
        [[46]],
        "no duplicates",
      );
    });

    await t.step("rows deleted by ON CONFLICT REPLACE replicate", async () => {
      await n1.sql("CREATE TABLE users(id INTEGER PRIMARY KEY, email TEXT UNIQUE, name TEXT)");
      await n1.sql(
        "CREATE TABLE tags(id INTEGER PRIMARY KEY, tag TEXT UNIQUE ON CONFLICT REPLACE)",
      );
      await n1.sql("INSERT INTO users VALUES (1, 'a@x', 'A'), (2, 'b@x', 'B'), (3, 'c@x', 'C')");
      await n1.sql("INSERT INTO tags VALUES (1, 'red'), (2, 'blue')");
      await cluster.waitConverged(both, ["users", "tags"]);
      await n1.sql("INSERT OR REPLACE INTO users VALUES (4, 'a@x', 'A2')");
      await n2.sql("REPLACE INTO users(id, email, name) VALUES (5, 'b@x', 'B2')");
      await n2.sql("UPDATE OR REPLACE users SET email = 'c@x' WHERE id = 4");
      await n1.sql("INSERT INTO tags VALUES (3, 'red')");
      await cluster.waitConverged(both, ["users", "tags"]);
      for (const n of both) {
        assert.deepEqual(await dump(n, "SELECT id, email, name FROM users ORDER BY id"), [
          [4, "c@x", "A2"],
          [5, "b@x", "B2"],
        ], n.name);
        assert.deepEqual(await dump(n, "SELECT id, tag FROM tags ORDER BY id"), [
          [2, "blue"],
          [3, "red"],
        ], n.name);
      }
    });

    await t.step("WITHOUT ROWID tables with a composite key replicate", async () => {
      await n2.sql(
        "CREATE TABLE kv(ns TEXT, k INTEGER, v ANY, PRIMARY KEY(ns, k)) WITHOUT ROWID",
      );
      await n2.sql("INSERT INTO kv VALUES ('a', 1, 1.0), ('a', 2, x'0102'), ('b', 1, 'x')");
      await n1.sql("INSERT INTO kv VALUES ('c', 1, 9223372036854775807)");
      await cluster.waitConverged(both, ["kv"]);
      await n1.sql("UPDATE kv SET v = 'changed' WHERE ns = 'a' AND k = 1");
      await n2.sql("UPDATE kv SET k = 7 WHERE ns = 'b'");
      await n1.sql("DELETE FROM kv WHERE ns = 'a' AND k = 2");
      await cluster.waitConverged(both, ["kv"]);
      for (const n of both) {
        assert.deepEqual(await dump(n, "SELECT ns, k, typeof(v), quote(v) FROM kv ORDER BY 1, 2"), [
          ["a", 1, "text", "'changed'"],
          ["b", 7, "text", "'x'"],
          ["c", 1, "integer", "9223372036854775807"],
        ], n.name);
      }
    });

    await t.step(
      "a transaction larger than the NATS max payload: 413, nothing committed",
      async () => {
        await n1.sql("CREATE TABLE blobs(id INTEGER PRIMARY KEY, b BLOB)");
        // 7 MB of random bytes travel as ~9.3 MB of base64: over the embedded server's 8 MiB.
        const err = await n1.sql("INSERT INTO blobs VALUES (1, randomblob(7000000))").catch((e) =>
          e
        );
        assert.ok(err instanceof HttpError, String(err));
        assert.equal(err.status, 413);
        assert.match(
          err.message,
          new RegExp(
            `over the NATS max_payload of ${DEFAULT_MAX_PAYLOAD} bytes; it was rolled back`,
          ),
        );
        assert.deepEqual(await dump(n1, "SELECT count(*) FROM blobs"), [[0]]);
        // Under the limit is fine, and publication goes on.
        await n1.sql("INSERT INTO blobs VALUES (2, randomblob(3000000))");
        await n1.sql("INSERT INTO blobs VALUES (3, x'00')");
        await cluster.waitConverged(both, ["blobs"]);
        assert.deepEqual(await dump(n2, "SELECT id, length(b) FROM blobs ORDER BY id"), [
          [2, 3000000],
          [3, 1],
        ]);
      },
    );

    await t.step("/replications: consumer infos, 404 for unknown names", async () => {
      const list = (await n1.get("/replications")).body as {
        replications: {
          name: string;
          delivered: { stream_seq: number; last_active: string };
          ack_floor: { stream_seq: number };
          num_pending: number;
          num_redelivered: number;
        }[];
      };
      const last = (await n2.get("/replications/ha_db_node2")).body as {
        replications: { name: string; delivered: { stream_seq: number } };
      };
      assert.equal(last.replications.name, "ha_db_node2");
      for (const c of list.replications) {
        assert.ok(c.delivered.stream_seq > 10, JSON.stringify(c));
        assert.equal(c.ack_floor.stream_seq, c.delivered.stream_seq, "all acknowledged");
        assert.equal(c.num_pending, 0);
        assert.equal(c.num_redelivered, 0);
        assert.ok(!Number.isNaN(Date.parse(c.delivered.last_active)));
      }
      assert.deepEqual(list.replications.map((c) => c.name).sort(), ["ha_db_node1", "ha_db_node2"]);
      assert.equal((await n1.get("/replications/unknown")).status, 404);
      const del = await fetch(`${n1.url}/replications/unknown`, { method: "DELETE" });
      assert.equal(del.status, 404);
      await del.body?.cancel();
    });
  });
});
