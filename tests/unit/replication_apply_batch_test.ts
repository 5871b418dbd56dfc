/**
 * A batch is applied optimistically (no savepoint per changeset) and redone with a savepoint
 * each when one changeset fails: the failing changeset must be handled alone (dead-lettered,
 * parked or reported), with nothing of it kept, and the others applied, in one transaction with
 * the progress row.
 */
import assert from "node:assert/strict";
import { type ApplyMessage, replicationClient } from "../../src/replication/plugin_api.ts";
import { close, forget, nextSeq, node, rows, sql, take } from "./helpers/replication_nodes.ts";
import { pack } from "../../src/replication/packed.ts";

async function pair() {
  const a = await node("a");
  const b = await node("b");
  await sql(a, "CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)");
  await sql(a, "CREATE TABLE u(id INTEGER PRIMARY KEY)");
  // b has t (with a CHECK a does not have) but not u.
  await sql(b, "CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT CHECK (v <> 'bad'))");
  forget(a, b);
  return [a, b] as const;
}

Deno.test("a batch with invalid and misfit changesets: the others apply, those go alone", async () => {
  const [a, b] = await pair();
  await sql(a, "INSERT INTO t VALUES (1, 'x')");
  const [ok1] = take(a);
  const garbage: ApplyMessage = { seq: nextSeq(), subject: "s", data: "not a changeset" };
  await sql(a, "INSERT INTO t VALUES (2, 'x')");
  const [ok2] = take(a);
  // One changeset: a row of t (fits) then a row of u (no such table on b): parked whole.
  await a.engine.defaultDb.execute([
    { sql: "INSERT INTO t VALUES (9, 'part of a misfit')" },
    { sql: "INSERT INTO u VALUES (1)" },
  ]);
  const [misfit] = take(a);
  await sql(a, "INSERT INTO t VALUES (3, 'x')");
  const [ok3] = take(a);
  const batch = [ok1, garbage, ok2, misfit, ok3];
  const r = await replicationClient(b.engine.defaultDb).call("apply", batch);
  assert.equal(r.error, null);
  assert.equal(r.applied, 3);
  assert.equal(r.through, ok3.seq);
  assert.deepEqual(r.deadLetters!.map((d) => d.seq), [garbage.seq, misfit.seq]);
  assert.equal(await rows(b, "SELECT id FROM t ORDER BY id"), '[["1"],["2"],["3"]]');
  assert.equal(
    await rows(b, "SELECT seq, parked FROM _ha_dead_letters ORDER BY seq"),
    JSON.stringify([[String(garbage.seq), "0"], [String(misfit.seq), "1"]]),
  );
  assert.equal(await replicationClient(b.engine.defaultDb).call("progress", "s"), ok3.seq);
  await close(a, b);
});

Deno.test("a batch with a failing changeset: the ones before commit, it is reported", async () => {
  const [a, b] = await pair();
  await sql(a, "INSERT INTO t VALUES (1, 'x')");
  await sql(a, "INSERT INTO t VALUES (2, 'bad')");
  await sql(a, "INSERT INTO t VALUES (3, 'x')");
  const batch = take(a);
  const r = await replicationClient(b.engine.defaultDb).call("apply", batch);
  assert.equal(r.error?.seq, batch[1].seq);
  assert.equal(r.applied, 1);
  assert.equal(r.through, batch[0].seq);
  assert.equal(await rows(b, "SELECT id FROM t ORDER BY id"), '[["1"]]');
  assert.equal(await replicationClient(b.engine.defaultDb).call("progress", "s"), batch[0].seq);
  await close(a, b);
});

Deno.test("a batch with DDL before a failing changeset: the DDL applies and is captured", async () => {
  const [a, b] = await pair();
  await sql(a, "CREATE TABLE w(id INTEGER PRIMARY KEY)");
  await sql(a, "ALTER TABLE t ADD COLUMN z TEXT");
  const [create, alter] = take(a);
  const garbage: ApplyMessage = { seq: nextSeq(), subject: "s", data: "not a changeset" };
  const r = await replicationClient(b.engine.defaultDb).call("apply", [create, alter, garbage]);
  assert.equal(r.error, null);
  assert.equal(r.through, garbage.seq);
  forget(b);
  await sql(b, "INSERT INTO w VALUES (7)");
  await sql(b, "INSERT INTO t VALUES (7, 'x', 'z')");
  assert.equal(b.out.length, 2, "b's writes to the new and the altered table are captured");
  await close(a, b);
});

Deno.test("an INSERT of a row with no version records it; one with a version goes by LWW", async () => {
  const [a, b] = await pair();
  await sql(a, "INSERT INTO t VALUES (1, 'from a')");
  const [older] = take(a);
  await sql(b, "INSERT INTO t VALUES (1, 'local on b')"); // newer than a's row 1
  await sql(a, "INSERT INTO t VALUES (2, 'from a')");
  const [fresh] = take(a);
  const client = replicationClient(b.engine.defaultDb);
  const r = await client.call("apply", [older, fresh]);
  assert.equal(r.error, null);
  assert.equal(r.applied, 2);
  assert.equal(
    await rows(b, "SELECT id, v FROM t ORDER BY id"),
    '[["1","local on b"],["2","from a"]]',
  );
  const hlcOf = (m: ApplyMessage) => String(JSON.parse(m.data).hlc);
  assert.equal(
    await rows(b, "SELECT key, node, deleted FROM _ha_versions WHERE tbl = 't' ORDER BY key"),
    '[["[1]","b","0"],["[2]","a","0"]]',
  );
  assert.equal(
    await rows(b, "SELECT hlc FROM _ha_versions WHERE tbl = 't' AND key = '[2]'"),
    JSON.stringify([[hlcOf(fresh)]]),
  );
  // The older remote INSERT lost to b's row: logged as a conflict; the fresh one is not.
  assert.equal(await rows(b, "SELECT key FROM _ha_conflicts WHERE tbl = 't'"), '[["[1]"]]');
  // Redelivered under a new sequence: the version is its own, nothing applies again.
  await sql(b, "UPDATE t SET v = 'changed on b' WHERE id = 2");
  const again = await client.call("apply", [{ ...fresh, seq: nextSeq() }]);
  assert.equal(again.error, null);
  assert.equal(await rows(b, "SELECT v FROM t WHERE id = 2"), '[["changed on b"]]');
  await close(a, b);
});

Deno.test("a batch sent behind one in flight applies only if that one was applied whole", async () => {
  const [a, b] = await pair();
  await sql(a, "INSERT INTO t VALUES (1, 'x')");
  await sql(a, "INSERT INTO t VALUES (2, 'bad')");
  await sql(a, "INSERT INTO t VALUES (3, 'x')");
  await sql(a, "INSERT INTO t VALUES (4, 'x')");
  const [m1, m2, m3, m4] = take(a);
  const enc = new TextEncoder();
  const packed = (ms: ApplyMessage[], after?: number) => {
    const p = pack("s", ms.map((m) => ({ seq: m.seq, data: enc.encode(m.data) })));
    if (after !== undefined) p.after = after;
    return p;
  };
  const rep = replicationClient(b.engine.defaultDb);
  // The first batch stops at its failing changeset: the one behind it changes nothing.
  const first = await rep.call("applyPacked", packed([m1, m2]));
  assert.equal(first.error?.seq, m2.seq);
  const behind = await rep.call("applyPacked", packed([m3, m4], m2.seq));
  assert.equal(behind.stale, true);
  assert.equal(behind.through, 0);
  assert.equal(await rows(b, "SELECT id FROM t ORDER BY id"), '[["1"]]');
  assert.equal(await rep.call("progress", "s"), m1.seq);
  // Once the progress reached `after`, it applies.
  await rep.call("skip", { subject: "s", seq: m2.seq });
  const again = await rep.call("applyPacked", packed([m3, m4], m2.seq));
  assert.equal(again.stale, undefined);
  assert.equal(again.through, m4.seq);
  assert.equal(await rows(b, "SELECT id FROM t ORDER BY id"), '[["1"],["3"],["4"]]');
  await close(a, b);
});

Deno.test("table columns are read again after local DDL between two batches", async () => {
  const [a, b] = await pair();
  const rep = replicationClient(b.engine.defaultDb);
  await sql(a, "INSERT INTO t VALUES (1, 'x')");
  assert.equal((await rep.call("apply", take(a))).applied, 1);
  // Both add a column by hand (DDL sync would ship a's, here b's own DDL must be noticed).
  await sql(a, "ALTER TABLE t ADD COLUMN z TEXT");
  await sql(b, "ALTER TABLE t ADD COLUMN z TEXT");
  forget(a, b);
  await sql(a, "INSERT INTO t VALUES (2, 'x', 'zz')");
  const r = await rep.call("apply", take(a));
  assert.equal(r.applied, 1);
  assert.equal(r.deadLetters?.length ?? 0, 0);
  assert.equal(await rows(b, "SELECT id, z FROM t ORDER BY id"), '[["1",null],["2","zz"]]');
  // And a local drop: the next change naming the column no longer fits (parked, not applied).
  await sql(b, "ALTER TABLE t DROP COLUMN z");
  forget(b);
  await sql(a, "INSERT INTO t VALUES (3, 'x', 'zzz')");
  const r2 = await rep.call("apply", take(a));
  assert.equal(r2.applied, 0);
  assert.equal(r2.deadLetters?.length, 1);
  assert.equal(await rows(b, "SELECT id FROM t ORDER BY id"), '[["1"],["2"]]');
  await close(a, b);
});

Deno.test("capture is back on for a local write after packed batches left it off", async () => {
  const [a, b] = await pair();
  const rep = replicationClient(b.engine.defaultDb);
  for (let i = 1; i <= 3; i++) {
    await sql(a, "INSERT INTO t VALUES (?, 'x')", [i]);
    const [m] = take(a);
    const p = pack("s", [{ seq: m.seq, data: new TextEncoder().encode(m.data) }]);
    assert.equal((await rep.call("applyPacked", p)).applied, 1);
  }
  forget(b);
  await sql(b, "INSERT INTO t VALUES (10, 'local')");
  assert.equal(b.out.length, 1, "the local write is captured");
  assert.match(b.out[0].data, /"local"/);
  await close(a, b);
});
