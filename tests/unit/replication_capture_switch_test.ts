/**
 * The capture switch of `ha_interrupt.so` (issue 13): with the extension loaded the capture
 * triggers test `ha_capturing()` before calling into JavaScript, and an apply switches it off for
 * its transaction. Applied rows are still never captured, local writes always are (also after a
 * batch that failed and was redone, and rows deleted by REPLACE), and clients cannot switch it.
 */
import assert from "node:assert/strict";
import { decodeChangeSet } from "../../src/cdc/mod.ts";
import { findInterruptExtension } from "../../src/engine/native/locate.ts";
import type { ApplyMessage } from "../../src/replication/plugin_api.ts";
import { replicationClient } from "../../src/replication/plugin_api.ts";
import { close, node, rows, ship, sql, type TestNode } from "./helpers/replication_nodes.ts";

const ext = await findInterruptExtension();

function pending(n: TestNode): string[] {
  return n.out.flatMap((p) => decodeChangeSet(p.data).changes)
    .map((c) => `${c.operation} ${c.table}`);
}

/** A test with nodes of these names that load the extension (skipped without it), closed after. */
function switchTest(name: string, names: string[], fn: (nodes: TestNode[]) => Promise<void>): void {
  Deno.test({
    name,
    ignore: ext === null,
    fn: async () => {
      const nodes: TestNode[] = [];
      try {
        for (const n of names) nodes.push(await node(n, { interrupt: true }));
        await fn(nodes);
      } finally {
        await close(...nodes);
      }
    },
  });
}

switchTest(
  "capture switch: applied rows not captured, local writes captured",
  ["a", "b"],
  async ([a, b]) => {
    await sql(a, "CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)");
    await sql(a, "CREATE TABLE u(id INTEGER PRIMARY KEY, email TEXT UNIQUE)");
    await sql(a, "CREATE TABLE audit(what TEXT)");
    await sql(
      a,
      "CREATE TRIGGER t_ai AFTER INSERT ON t BEGIN INSERT INTO audit VALUES (NEW.v); END",
    );
    await ship(a, [b]);
    // On the writer: a batch that writes runs there, with its temp schema.
    const [, trig] = await b.engine.defaultDb.execute([
      { sql: "INSERT INTO audit VALUES ('probe')" },
      {
        sql: "SELECT count(*) FROM temp.sqlite_schema WHERE type = 'trigger' AND " +
          "sql LIKE '%WHEN ha_capturing() AND \\_ha\\_%' ESCAPE '\\'",
      },
      { sql: "DELETE FROM audit" },
    ]);
    b.out.splice(0);
    // t and audit: 3 AFTER triggers each; u: 3 AFTER and 2 BEFORE (its unique index).
    assert.equal(trig.rows[0][0], 11n, "the triggers test the switch first");

    await sql(a, "INSERT INTO t VALUES (1, 'x'), (2, 'y')");
    await sql(a, "INSERT INTO u VALUES (1, 'a@x')");
    await ship(a, [b]);
    assert.deepEqual(b.out, [], "nothing applied is captured");
    assert.equal(await rows(b, "SELECT what FROM audit ORDER BY 1"), '[["x"],["y"]]');

    // Right after an apply, b's own writes are captured (the switch is back on), also a row
    // deleted by REPLACE (the BEFORE triggers) and not the user trigger's audit row.
    await sql(b, "INSERT INTO t VALUES (3, 'z')");
    await sql(b, "INSERT OR REPLACE INTO u VALUES (2, 'a@x')");
    assert.deepEqual(pending(b), ["INSERT t", "INSERT u", "DELETE u"]);
    await ship(b, [a]);
    assert.deepEqual(a.out, []);
    for (const t of ["t", "u", "audit"]) {
      assert.equal(
        await rows(a, `SELECT * FROM ${t} ORDER BY 1`),
        await rows(b, `SELECT * FROM ${t} ORDER BY 1`),
      );
    }
  },
);

switchTest(
  "capture switch: back on after a batch redone with a savepoint each",
  ["a", "b"],
  async ([a, b]) => {
    await sql(a, "CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)");
    await ship(a, [b]);
    await sql(a, "INSERT INTO t VALUES (1, 'x')");
    let seq = 1000;
    const good: ApplyMessage[] = a.out.splice(0).map((p) => ({
      seq: ++seq,
      subject: "s",
      data: p.data,
    }));
    const garbage: ApplyMessage = { seq: ++seq, subject: "s", data: "not a changeset" };
    const r = await replicationClient(b.engine.defaultDb).call("apply", [...good, garbage]);
    assert.equal(r.error, null);
    assert.equal(r.deadLetters?.length, 1, "the redo dead-lettered the garbage");
    assert.deepEqual(b.out, []);
    await sql(b, "INSERT INTO t VALUES (2, 'b')");
    assert.deepEqual(pending(b), ["INSERT t"]);
  },
);

switchTest("capture switch: clients may not call ha_capture()", ["a"], async ([a]) => {
  await sql(a, "CREATE TABLE t(id INTEGER PRIMARY KEY)");
  a.out.splice(0);
  await assert.rejects(() => sql(a, "SELECT ha_capture(0)"), /ha_capture\(\) is internal/);
  await sql(a, "INSERT INTO t VALUES (1)");
  assert.deepEqual(pending(a), ["INSERT t"]);
  const [r] = await sql(a, "SELECT ha_capturing()");
  assert.equal(r.rows[0][0], 1n);
});
