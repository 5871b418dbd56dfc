/**
 * SQL security (issue 11, findings 3 and 4): a real ha process with a file database. ATTACH,
 * VACUUM INTO and load_extension() cannot reach the filesystem outside `--attach-dir`, an
 * allowed attachment does not stay on the shared writer, and PRAGMAs that would change the
 * database or connection for every client are refused over HTTP (400) and PostgreSQL (42501),
 * while the node's own backup (`/download`, VACUUM INTO) still works.
 */
import assert from "node:assert/strict";
import { freePort, post, startHa } from "../integration/helpers/ha.ts";
import { psql } from "../integration/pgwire_helpers.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch {
    return false;
  }
}

Deno.test("ATTACH, VACUUM INTO, load_extension and shared PRAGMAs are denied", opts, async (t) => {
  const dir = await Deno.makeTempDir({ prefix: "ha-sqlsec-" });
  const allowed = `${dir}/allowed`;
  await Deno.mkdir(allowed);
  const pgPort = freePort();
  const ha = await startHa({
    cwd: dir,
    args: [
      "-n",
      "sqlsec",
      "--nats-port",
      "0",
      "--pg-port",
      String(pgPort),
      "--attach-dir",
      allowed,
      "app.db",
    ],
  });
  let denied = 0;
  const q = async (sql: string) => {
    const r = await post(ha.url, { sql });
    if (r.status === 400) denied++;
    return r;
  };
  try {
    assert.equal((await q("CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)")).status, 200);

    await t.step("HTTP: files outside --attach-dir are refused with 400", async () => {
      for (
        const sql of [
          `ATTACH DATABASE '${dir}/evil.db' AS x`,
          `VACUUM INTO '${dir}/copy.db'`,
          `VACUUM INTO '${allowed}/../escape.db'`,
          `ATTACH DATABASE 'file:${dir}/uri.db' AS x`,
          "ATTACH DATABASE 'relative.db' AS x",
          "SELECT load_extension('/tmp/nothing.so')",
          "DETACH DATABASE main",
        ]
      ) {
        const r = await q(sql);
        assert.equal(r.status, 400, `${sql}: ${r.text}`);
        assert.match(r.body.error, /not authorized/, sql);
      }
      for (const f of ["evil.db", "copy.db", "escape.db", "uri.db", "relative.db"]) {
        assert.equal(await exists(`${dir}/${f}`), false, f);
      }
    });

    await t.step("HTTP: inside --attach-dir allowed, and nothing stays attached", async () => {
      assert.equal((await q(`VACUUM INTO '${allowed}/copy.db'`)).status, 200);
      assert.equal(await exists(`${allowed}/copy.db`), true);
      assert.equal((await q(`ATTACH DATABASE '${allowed}/a.db' AS a`)).status, 200);
      const list = await q("PRAGMA database_list");
      // `temp` holds ha's own temp tables (capture, last_insert_id), not an attachment.
      const names = list.body.rows.map((r: unknown[]) => r[1]).filter((n: unknown) => n !== "temp");
      assert.deepEqual(names, ["main"]);
    });

    await t.step("HTTP: PRAGMAs that change the database for everyone are refused", async () => {
      const sync = (await q("PRAGMA synchronous")).body.rows;
      for (
        const sql of [
          "PRAGMA synchronous = OFF",
          "PRAGMA max_page_count = 1",
          "PRAGMA query_only = ON",
          "PRAGMA journal_mode = DELETE",
          "PRAGMA writable_schema = 1",
          "PRAGMA foreign_keys = OFF",
        ]
      ) {
        const r = await q(sql);
        assert.equal(r.status, 400, `${sql}: ${r.text}`);
        assert.match(r.body.error, /not authorized: PRAGMA/, sql);
      }
      assert.deepEqual((await q("PRAGMA synchronous")).body.rows, sync);
      assert.deepEqual((await q("PRAGMA journal_mode")).body.rows, [["wal"]]);
      assert.equal((await q("PRAGMA table_info(t)")).body.rows.length, 2);
      assert.equal((await q("PRAGMA user_version = 7")).status, 200);
      assert.equal((await q("INSERT INTO t VALUES (1, 'still writable')")).status, 200);
    });

    await t.step("psql: refused with SQLSTATE 42501", async () => {
      for (const sql of [`ATTACH DATABASE '${dir}/pg.db' AS x`, "PRAGMA query_only = ON"]) {
        const r = await psql(pgPort, [
          "-d",
          "app.db",
          "-c",
          "\\set VERBOSITY verbose",
          "-c",
          sql,
        ]);
        assert.notEqual(r.code, 0, sql);
        assert.match(r.stderr, /42501/, `${sql}: ${r.stderr}`);
      }
      assert.equal(await exists(`${dir}/pg.db`), false);
      const r = await psql(pgPort, ["-d", "app.db", "-tA", "-c", "SELECT v FROM t"]);
      assert.equal(r.stdout.trim(), "still writable", r.stderr);
    });

    console.info(
      `sql bad input: ${denied} HTTP + 2 psql filesystem/PRAGMA statements refused, 0 files ` +
        "written outside --attach-dir, 0 crashes",
    );
    await t.step("the node's own backup (VACUUM INTO) still works", async () => {
      const r = await fetch(`${ha.url}/download`);
      assert.equal(r.status, 200);
      const bytes = new Uint8Array(await r.arrayBuffer());
      assert.equal(new TextDecoder().decode(bytes.slice(0, 15)), "SQLite format 3");
    });
  } finally {
    await ha.stop();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
});
