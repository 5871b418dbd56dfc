/**
 * INSERTs of rows with no version are written several to a statement (`held_inserts.ts`): the
 * outcome must be that of applying them one by one — the version recorded before the row (as a
 * user trigger sees it), rows that meet a version or a row go by LWW, and a table renamed by a
 * later changeset is not written through a view made for its old name.
 */
import assert from "node:assert/strict";
import { replicationClient } from "../../src/replication/plugin_api.ts";
import { close, forget, node, rows, sql, take } from "./helpers/replication_nodes.ts";

async function pair() {
  const a = await node("a");
  const b = await node("b", { interrupt: true });
  for (const n of [a, b]) await sql(n, "CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)");
  forget(a, b);
  return [a, b] as const;
}

Deno.test("held INSERTs: versions first, in order, as a user trigger sees them", async () => {
  const [a, b] = await pair();
  // On b only: each inserted row notes whether its version was already there, in order.
  await sql(b, "CREATE TABLE seen(n INTEGER PRIMARY KEY, id INTEGER, versioned INTEGER)");
  await sql(
    b,
    `CREATE TRIGGER note AFTER INSERT ON t BEGIN
       INSERT INTO seen(id, versioned) VALUES (new.id,
         (SELECT count(*) FROM _ha_versions WHERE tbl = 't' AND key = '[' || new.id || ']'));
     END`,
  );
  forget(b);
  // 70 single-row changesets and one of 40 rows: more than one statement's worth each.
  for (let i = 1; i <= 70; i++) await sql(a, "INSERT INTO t VALUES (?, ?)", [i, `v${i}`]);
  await sql(
    a,
    `WITH RECURSIVE c(x) AS (SELECT 101 UNION ALL SELECT x + 1 FROM c WHERE x < 140)
     INSERT INTO t SELECT x, 'w' || x FROM c`,
  );
  const batch = take(a);
  const r = await replicationClient(b.engine.defaultDb).call("apply", batch);
  assert.equal(r.error, null);
  assert.equal(r.applied, 71);
  const same = "SELECT id, v FROM t ORDER BY id";
  assert.equal(await rows(b, same), await rows(a, same));
  const versions = "SELECT tbl, key, hlc, node, deleted FROM _ha_versions ORDER BY tbl, key";
  assert.equal(await rows(b, versions), await rows(a, versions));
  const ids = [
    ...Array.from({ length: 70 }, (_, i) => i + 1),
    ...Array.from(
      { length: 40 },
      (_, i) => i + 101,
    ),
  ];
  assert.equal(
    await rows(b, "SELECT id, versioned FROM seen ORDER BY n"),
    JSON.stringify(ids.map((id) => [String(id), "1"])),
  );
  assert.equal(await replicationClient(b.engine.defaultDb).call("progress", "s"), r.through);
  await close(a, b);
});

Deno.test("held INSERTs that meet a version or a row go by LWW, the others apply", async () => {
  const [a, b] = await pair();
  await sql(b, "INSERT INTO t VALUES (50, 'older on b')"); // older than a's row 50
  for (let i = 1; i <= 60; i++) {
    await sql(a, "INSERT INTO t VALUES (?, ?)", [i, `a${i}`]);
    if (i === 20) await sql(b, "INSERT INTO t VALUES (20, 'newer on b')");
  }
  const r = await replicationClient(b.engine.defaultDb).call("apply", take(a));
  assert.equal(r.error, null);
  assert.equal(r.applied, 60);
  const expected = Array.from(
    { length: 60 },
    (_, i) => [String(i + 1), i + 1 === 20 ? "newer on b" : `a${i + 1}`],
  );
  assert.equal(await rows(b, "SELECT id, v FROM t ORDER BY id"), JSON.stringify(expected));
  assert.equal(
    await rows(b, "SELECT key, node FROM _ha_versions WHERE key IN ('[20]', '[50]') ORDER BY key"),
    '[["[20]","b"],["[50]","a"]]',
  );
  assert.equal(await rows(b, "SELECT count(*) FROM _ha_versions WHERE node = 'a'"), '[["59"]]');
  // Both lost a write (b's older row 50 to a, a's older row 20 to b): logged.
  assert.equal(
    await rows(b, "SELECT key FROM _ha_conflicts WHERE tbl = 't' ORDER BY key"),
    '[["[20]"],["[50]"]]',
  );
  await close(a, b);
});

Deno.test("held INSERTs after a table was renamed go to the table of that name", async () => {
  const [a, b] = await pair();
  const rep = replicationClient(b.engine.defaultDb);
  await sql(a, "INSERT INTO t VALUES (1, 'before')");
  assert.equal((await rep.call("apply", take(a))).error, null);
  // The next batch renames t (and a column) and creates a new t; rows go to both.
  await sql(a, "ALTER TABLE t RENAME TO t_old");
  await sql(a, "ALTER TABLE t_old RENAME COLUMN v TO w");
  await sql(a, "CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)");
  await sql(a, "INSERT INTO t VALUES (2, 'new t')");
  await sql(a, "INSERT INTO t_old VALUES (3, 'old t')");
  assert.equal((await rep.call("apply", take(a))).error, null);
  await sql(a, "INSERT INTO t VALUES (4, 'new t again')");
  assert.equal((await rep.call("apply", take(a))).error, null);
  for (const q of ["SELECT id, v FROM t ORDER BY id", "SELECT id, w FROM t_old ORDER BY id"]) {
    assert.equal(await rows(b, q), await rows(a, q));
  }
  assert.equal(await rows(b, "SELECT id FROM t ORDER BY id"), '[["2"],["4"]]');
  // A local rename on b: later rows of the new name's changesets still land where they should.
  await sql(b, "ALTER TABLE t RENAME TO t_b");
  await sql(b, "CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)");
  await sql(a, "INSERT INTO t VALUES (5, 'after b renamed')");
  assert.equal((await rep.call("apply", take(a))).error, null);
  assert.equal(await rows(b, "SELECT id FROM t ORDER BY id"), '[["5"]]');
  assert.equal(await rows(b, "SELECT id FROM t_b ORDER BY id"), '[["2"],["4"]]');
  await close(a, b);
});

Deno.test("a held INSERT that loses does not let a later change of its row win", async () => {
  const [a, b] = await pair();
  // One transaction on a inserts each row and changes (7) or deletes (8) it: one changeset with
  // an INSERT, then another change of the same row (group commit makes these common too).
  await a.engine.defaultDb.execute([
    { sql: "INSERT INTO t VALUES (7, 'a inserted'), (8, 'a inserted')" },
    { sql: "UPDATE t SET v = 'a updated' WHERE id = 7" },
    { sql: "DELETE FROM t WHERE id = 8" },
  ]);
  // b writes both rows later (newer versions) before a's changeset arrives.
  await sql(b, "INSERT INTO t VALUES (7, 'newer on b'), (8, 'newer on b')");
  const r = await replicationClient(b.engine.defaultDb).call("apply", take(a));
  assert.equal(r.error, null);
  assert.equal(
    await rows(b, "SELECT id, v FROM t ORDER BY id"),
    '[["7","newer on b"],["8","newer on b"]]',
  );
  assert.equal(
    await rows(b, "SELECT key, node, deleted FROM _ha_versions ORDER BY key"),
    '[["[7]","b","0"],["[8]","b","0"]]',
  );
  await close(a, b);
});
