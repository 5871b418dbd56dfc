/**
 * The statement-interrupt extension (src/engine/native/ha_interrupt.c) on its own: request-scoped
 * cancel (also when it arrives before the request starts), a timed-out write that fires triggers,
 * and the copy out of a compiled binary.
 * Needs vendor/ha_interrupt.so (`deno task test` builds it).
 */
import assert from "node:assert/strict";
import { DatabaseSync } from "node:sqlite";
import { EXTENSION_URL, findInterruptExtension } from "../../src/engine/native/locate.ts";
import { InterruptLib } from "../../src/engine/native/interrupt.ts";

const RUNAWAY =
  "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c";
const BOUNDED =
  "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 100000) SELECT count(*) n FROM c";

/** Column `n` of a query's first row. */
function n(db: DatabaseSync, sql: string): number {
  return Number((db.prepare(sql).get() as { n: number }).n);
}

async function guarded(): Promise<{ db: DatabaseSync; guard: number; lib: InterruptLib }> {
  const path = await findInterruptExtension();
  assert.ok(path, "vendor/ha_interrupt.so is missing: bash scripts/build-extension.sh");
  const db = new DatabaseSync(":memory:", { allowExtension: true });
  db.loadExtension(path);
  const guard = Number((db.prepare("SELECT ha_guard_id() AS id").get() as { id: number }).id);
  return { db, guard, lib: InterruptLib.open(path) };
}

Deno.test("a cancel stops its own request only, also when it arrives first", async () => {
  const { db, guard, lib } = await guarded();
  try {
    lib.begin(guard, 1, 0);
    lib.cancel(guard, 1, "cancel");
    assert.throws(() => db.prepare(RUNAWAY).get(), /interrupted/);
    assert.equal(lib.reason(guard), "cancel");

    lib.begin(guard, 2, 0);
    assert.equal(lib.reason(guard), null);
    assert.equal(n(db, BOUNDED), 100000, "a new request runs");

    lib.cancel(guard, 3, "shutdown"); // request 3 has not started yet
    lib.begin(guard, 3, 0);
    assert.throws(() => db.prepare(RUNAWAY).get(), /interrupted/);
    assert.equal(lib.reason(guard), "shutdown");

    lib.begin(guard, 4, 0);
    lib.cancel(guard, 3, "cancel"); // a late cancel of a finished request
    assert.equal(n(db, BOUNDED), 100000);
    lib.cancel(guard, 4, "cancel");
    lib.begin(guard, 5, 0);
    assert.equal(n(db, BOUNDED), 100000, "request 4's cancel ended with it");
  } finally {
    db.close();
  }
});

Deno.test("a timeout stops a runaway write that fires triggers, which rolls back", async () => {
  const { db, guard, lib } = await guarded();
  try {
    db.exec("CREATE TABLE t(x); CREATE TABLE log(x)");
    db.exec("CREATE TRIGGER tr AFTER INSERT ON t BEGIN INSERT INTO log VALUES (new.x); END");
    lib.begin(guard, 1, 100);
    assert.throws(
      () =>
        db.exec(`INSERT INTO t ${RUNAWAY.replace("SELECT count(*) FROM c", "SELECT x FROM c")}`),
      /interrupted/,
    );
    assert.equal(lib.reason(guard), "timeout");
    assert.equal(n(db, "SELECT count(*) n FROM t"), 0, "rolled back");
    lib.begin(guard, 2, 0);
    db.exec("INSERT INTO t VALUES (1)");
    assert.equal(n(db, "SELECT count(*) n FROM log"), 1);
  } finally {
    db.close();
  }
});

Deno.test("a compiled binary's embedded extension is copied out once and loads", async () => {
  const dir = await Deno.makeTempDir({ prefix: "ha-ext-cache-" });
  try {
    const path = await findInterruptExtension(EXTENSION_URL, true, dir);
    assert.ok(path?.startsWith(`${dir}/`) && path.endsWith("/ha_interrupt.so"), String(path));
    assert.equal(await findInterruptExtension(EXTENSION_URL, true, dir), path);
    const db = new DatabaseSync(":memory:", { allowExtension: true });
    db.loadExtension(path!); // the entry point comes from the file name, kept as is
    assert.ok(Number((db.prepare("SELECT ha_guard_id() AS id").get() as { id: number }).id) > 0);
    db.close();
    assert.equal(await findInterruptExtension(new URL("file:///nowhere/ha_interrupt.so")), null);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
