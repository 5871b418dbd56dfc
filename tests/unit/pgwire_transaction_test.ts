/** pgwire transaction state: failed blocks, the implicit transaction of a batch, Sync. */
import assert from "node:assert/strict";
import type { Session, Statement, StatementResult } from "../../src/engine/mod.ts";
import { MessageWriter } from "../../src/pgwire/backend.ts";
import { type Classified, classify } from "../../src/pgwire/catalog.ts";
import type { Wire } from "../../src/pgwire/contracts.ts";
import type { FrameReader } from "../../src/pgwire/messages.ts";
import { TxControl, type TxStatement } from "../../src/pgwire/transaction.ts";

/** A session that follows BEGIN/COMMIT/ROLLBACK and records the SQL it ran. */
function fakeSession(): Session & { ran: string[] } {
  const s = {
    ran: [] as string[],
    inTransaction: false,
    execute(stmt: Statement): Promise<StatementResult> {
      s.ran.push(stmt.sql);
      if (/^BEGIN/i.test(stmt.sql)) s.inTransaction = true;
      if (/^(COMMIT|ROLLBACK)$/i.test(stmt.sql)) s.inTransaction = false;
      return Promise.resolve({
        command: "",
        columns: [],
        rows: [],
        rowsAffected: 0,
        lastInsertId: 0n,
      });
    },
    describe: () => Promise.resolve({ columns: [], paramCount: 0, command: "" }),
    close: () => Promise.resolve(),
  };
  return s as unknown as Session & { ran: string[] };
}

function setup(nextIsSync = false) {
  const session = fakeSession();
  const out = new MessageWriter();
  const wire: Wire = {
    reader: { nextIsSync: () => nextIsSync } as unknown as FrameReader,
    out,
    flush: () => Promise.resolve(),
  };
  return { session, out, tx: new TxControl(wire, () => session) };
}

const tx = (sql: string) => classify(sql) as TxStatement;
const write: Classified = classify("INSERT INTO t VALUES (1)");

Deno.test("a failed block says E and COMMIT rolls it back", async () => {
  const { session, tx: t } = setup();
  assert.equal(await t.control(tx("BEGIN")), "BEGIN");
  assert.equal(t.status(), "T");
  t.fail();
  assert.equal(t.status(), "E");
  assert.equal(t.failed, true);
  assert.equal(await t.control(tx("COMMIT")), "ROLLBACK");
  assert.deepEqual(session.ran, ["BEGIN", "ROLLBACK"]);
  assert.equal(t.status(), "I");
});

Deno.test("a batch write opens an implicit transaction that Sync commits", async () => {
  const { session, tx: t } = setup();
  await t.beginImplicit(classify("SELECT 1")); // reads need none
  assert.deepEqual(session.ran, []);
  await t.beginImplicit(write);
  assert.deepEqual(session.ran, ["BEGIN"]);
  await t.endImplicit(false);
  assert.deepEqual(session.ran, ["BEGIN", "COMMIT"]);
  assert.equal(t.status(), "I");
});

Deno.test("a lone write (Sync next) autocommits: no implicit transaction", async () => {
  const { session, tx: t } = setup(true);
  await t.beginImplicit(write);
  await t.endImplicit(false);
  assert.deepEqual(session.ran, []);
});

Deno.test("an error in the implicit transaction (or skipped messages) rolls it back at Sync", async () => {
  for (const [failed, skipped] of [[true, false], [false, true]]) {
    const { session, tx: t } = setup();
    await t.beginImplicit(write);
    if (failed) {
      t.fail();
      assert.equal(t.status(), "E");
    }
    await t.endImplicit(skipped);
    assert.deepEqual(session.ran, ["BEGIN", "ROLLBACK"]);
    assert.equal(t.status(), "I");
  }
});

Deno.test("BEGIN inside the implicit transaction makes it explicit: Sync leaves it open", async () => {
  const { session, tx: t } = setup();
  await t.beginImplicit(write);
  assert.equal(await t.control(tx("BEGIN")), "BEGIN");
  await t.endImplicit(false);
  assert.deepEqual(session.ran, ["BEGIN"]);
  assert.equal(t.status(), "T");
});

Deno.test("COMMIT and ROLLBACK outside a block warn; SAVEPOINT outside one fails", async () => {
  const { out, tx: t } = setup();
  assert.equal(await t.control(tx("COMMIT")), "COMMIT");
  assert.equal(await t.control(tx("ROLLBACK")), "ROLLBACK");
  const notices = new TextDecoder().decode(out.take());
  assert.match(notices, /25P01/);
  await assert.rejects(
    () => t.control(tx("SAVEPOINT a")),
    /can only be used in transaction blocks/,
  );
});
