/**
 * WAL checkpoints off the writer (src/engine/checkpointer.ts): which databases get them, and that
 * committed pages reach the database file soon after writes without SQLite's own checkpoint.
 */
import assert from "node:assert/strict";
import { offloadable } from "../../src/engine/checkpointer.ts";
import type { OpenSpec } from "../../src/engine/connection.ts";
import { openEngine } from "../../src/engine/mod.ts";
import { createLogger } from "../../src/log/mod.ts";

const spec = (pragmas: [string, string][], memory = false): OpenSpec => ({
  path: "x.db",
  memory,
  uriParams: "",
  pragmas,
  readOnly: false,
  extensions: [],
});

Deno.test("checkpoints move off the writer only for file databases in WAL mode", () => {
  const wal: [string, string] = ["journal_mode", "WAL"];
  assert.equal(offloadable(spec([wal, ["synchronous", "NORMAL"]])), true);
  assert.equal(offloadable(spec([wal], true)), false, "memory: no fsync to spare");
  assert.equal(offloadable(spec([["journal_mode", "DELETE"]])), false);
  assert.equal(offloadable(spec([wal, ["locking_mode", "EXCLUSIVE"]])), false);
  assert.equal(offloadable(spec([wal, ["wal_autocheckpoint", "100"]])), false, "the DSN's");
});

Deno.test("committed pages reach the database file without SQLite's autocheckpoint", async () => {
  const dir = await Deno.makeTempDir();
  const engine = await openEngine({
    dsns: [`${dir}/c.db`],
    memory: false,
    concurrentQueries: 4,
    logger: createLogger("error"),
  });
  try {
    const db = engine.defaultDb;
    await db.execute([{ sql: "CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)" }]);
    const [auto] = await db.execute([{ sql: "PRAGMA wal_autocheckpoint" }]);
    assert.equal(Number(auto.rows[0][0]), 0, "the writer does not checkpoint in its COMMITs");
    const insert = () =>
      db.execute([{ sql: "INSERT INTO t(v) VALUES (?)", params: ["x".repeat(3000)] }]);
    const checkpointed = async (rows: number) => {
      // Within 500 ms on a quiet machine; the bound only keeps a broken checkpointer from hanging.
      const deadline = Date.now() + 60_000;
      while ((await Deno.stat(`${dir}/c.db`)).size < rows * 3000 && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 20));
      }
      assert.ok((await Deno.stat(`${dir}/c.db`)).size >= rows * 3000, `${rows} checkpointed`);
    };
    // 20 rows of 3 KB, well below the 1000 WAL pages of SQLite's automatic checkpoint: an
    // isolated burst, checkpointed on the writer.
    for (let i = 0; i < 20; i++) await insert();
    await checkpointed(20);
    // 100 more, soon after: on the checkpointer's own worker.
    await Promise.all(Array.from({ length: 100 }, insert));
    await checkpointed(120);
  } finally {
    await engine.close();
    await Deno.remove(dir, { recursive: true });
  }
});
