/** Reader workers (src/engine/reader_pool.ts) end when unused and start again on demand. */
import assert from "node:assert/strict";
import { DatabaseSync } from "node:sqlite";
import type { OpenSpec } from "../../src/engine/connection.ts";
import type { ExecReply } from "../../src/engine/protocol.ts";
import { ReaderPool } from "../../src/engine/reader_pool.ts";

Deno.test("an unused reader ends, a busy one stays, the next read starts one again", async () => {
  const dir = await Deno.makeTempDir();
  const path = `${dir}/r.db`;
  const init = new DatabaseSync(path);
  init.exec("PRAGMA journal_mode=WAL; CREATE TABLE t(v); INSERT INTO t VALUES (42)");
  init.close();
  const spec: OpenSpec = {
    path,
    memory: false,
    uriParams: "",
    pragmas: [],
    readOnly: false,
    extensions: [],
  };
  const pool = new ReaderPool("r", spec, null, 2, 50);
  const read = async (sql: string) => {
    const r = await pool.pick();
    const reply = await r.request<ExecReply>({ t: "exec", stmts: [{ sql }], timeoutMs: 0 });
    return Number(reply.results[0].rows[0][0]);
  };
  const running = () => pool.all.filter((r) => r.alive).length;
  const until = async (f: () => boolean) => {
    // Generous: only keeps a broken pool from hanging the test.
    for (const end = Date.now() + 60_000; !f() && Date.now() < end;) {
      await new Promise((r) => setTimeout(r, 20));
    }
  };
  try {
    assert.equal(await read("SELECT v FROM t"), 42);
    const first = pool.all[0];
    await until(() => running() === 0);
    assert.equal(running(), 0, "the unused reader ended");
    await until(() => !first.alive);
    assert.equal(first.alive, false);
    // A read running longer than the idle time keeps its reader.
    const slow = read(
      "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 3000000) " +
        "SELECT count(*) FROM c",
    );
    const state = { done: false };
    void slow.finally(() => state.done = true);
    await new Promise((r) => setTimeout(r, 200));
    if (!state.done) assert.equal(running(), 1, "kept while busy");
    assert.equal(await slow, 3000000);
    assert.equal(await read("SELECT v FROM t"), 42, "a reader again");
  } finally {
    await pool.close();
    assert.equal(pool.all.length, 0);
    await Deno.remove(dir, { recursive: true });
  }
});
