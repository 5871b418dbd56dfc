/**
 * The HTTP API against a real `ha` process: the README's examples verbatim,
 * value mapping, parameters, errors, limits and health.
 */
import assert from "node:assert/strict";
import { waitFor } from "./helpers/cluster.ts";
import { type HaProcess, post, startHa } from "./helpers/ha.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };

Deno.test("HTTP API on one in-memory node", opts, async (t) => {
  const node = await startHa({ args: ["-n", "node1", "-m", "--nats-port", "0", "--pg-port", "0"] });
  const q = (body: unknown, path = "/") => post(node.url + path, body);
  try {
    await t.step(
      "README: create, insert with named params, transaction array, select",
      async () => {
        let r = await q([{
          sql: "CREATE TABLE IF NOT EXISTS users (id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT)",
        }]);
        assert.equal(r.status, 200, r.text);
        assert.deepEqual(r.body, {
          results: [{ columns: ["rows_affected", "last_insert_id"], rows: [[0, 0]] }],
        });
        r = await q([{
          sql: "INSERT INTO users(name) VALUES(:name)",
          params: { name: "HA User" },
        }]);
        assert.deepEqual(r.body.results[0].rows, [[1, 1]]);
        r = await q({ sql: "INSERT INTO users(name) VALUES(:name)", params: { name: "HA user" } });
        assert.deepEqual(r.body, { columns: ["rows_affected", "last_insert_id"], rows: [[1, 2]] });
        r = await q([
          { sql: "INSERT INTO users(name) VALUES(:name)", params: { name: "new HA user" } },
          { sql: "DELETE FROM users WHERE name = :name", params: { name: "new HA user" } },
          { sql: "SELECT * FROM users" },
        ]);
        assert.equal(r.status, 200, r.text);
        assert.deepEqual(r.body.results[0].rows, [[1, 3]]);
        assert.deepEqual(r.body.results[1].rows, [[1, 3]]);
        assert.deepEqual(r.body.results[2], {
          columns: ["id", "name"],
          rows: [[1, "HA User"], [2, "HA user"]],
        });
        r = await q({ sql: "SELECT count(*) AS n FROM users" }, "/query");
        assert.deepEqual(r.body, { columns: ["n"], rows: [[2]] });
      },
    );

    await t.step("exact values: big integers, REAL, BLOB, NULL, unicode", async () => {
      await q({ sql: "CREATE TABLE v (i INTEGER, r REAL, t TEXT, b BLOB, n)" });
      const r = await q({
        sql: "INSERT INTO v VALUES (?, ?, ?, ?, ?)",
        params: [9223372036854775807n, 1.5, "héllo ✓ 😀", { base64: "AAEC/w==" }, null],
      }, "/").catch(() => null);
      // JSON.stringify cannot write bigint: send the raw text instead.
      const raw =
        '{"sql":"INSERT INTO v VALUES (?, ?, ?, ?, ?)","params":[-9223372036854775808, 2.0, "x", {"base64":"AAEC/w=="}, null]}';
      assert.equal(r, null);
      const ins = await q(raw);
      assert.equal(ins.status, 200, ins.text);
      const sel = await fetch(node.url, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: '{"sql":"SELECT i, typeof(i), r, typeof(r), t, b, typeof(b), n FROM v"}',
      });
      const text = await sel.text();
      assert.match(text, /-9223372036854775808,"integer",2\.0,"real","x","AAEC\/w==","blob",null/);
      const big = await q({ sql: "SELECT 9007199254740993 AS x, 1e999 AS inf, 0.1 AS d" });
      assert.equal(big.status, 200);
      assert.match(big.text, /\[\[9007199254740993,1e999,0\.1\]\]/);
    });

    await t.step("statements returning columns: WITH, PRAGMA, RETURNING, VALUES", async () => {
      let r = await q({ sql: "WITH x(a) AS (SELECT 1) SELECT a FROM x" });
      assert.deepEqual(r.body, { columns: ["a"], rows: [[1]] });
      r = await q({ sql: "PRAGMA table_info(users)" });
      assert.equal(r.body.columns[1], "name");
      assert.equal(r.body.rows.length, 2);
      r = await q({ sql: "INSERT INTO users(name) VALUES ('ret') RETURNING id, name" });
      assert.deepEqual(r.body, { columns: ["id", "name"], rows: [[4, "ret"]] });
      r = await q({ sql: "VALUES (1, 'a'), (2, 'b')" });
      assert.deepEqual(r.body.rows, [[1, "a"], [2, "b"]]);
    });

    await t.step("parameters: named prefixes, positional arrays, $N and ?NNN", async () => {
      const cases: [unknown, unknown][] = [
        [{ sql: "SELECT :a, @b, $c", params: { a: 1, "@b": 2, $c: 3 } }, [[1, 2, 3]]],
        [{ sql: "SELECT :a", params: { ":a": "x" } }, [["x"]]],
        [{ sql: "SELECT ?, ?", params: [1, "two"] }, [[1, "two"]]],
        [{ sql: "SELECT ?2, ?1", params: [1, 2] }, [[2, 1]]],
        [{ sql: "SELECT $1, $2", params: [true, false] }, [[1, 0]]],
        [{ sql: "SELECT $2, $1", params: { $1: "a", $2: "b" } }, [["b", "a"]]],
      ];
      for (const [body, rows] of cases) {
        const r = await q(body);
        assert.equal(r.status, 200, r.text);
        assert.deepEqual(r.body.rows, rows, JSON.stringify(body));
      }
    });

    await t.step("a failing statement rolls back the whole array", async () => {
      const before = await q({ sql: "SELECT count(*) FROM users" });
      const r = await q([
        { sql: "INSERT INTO users(name) VALUES ('rolled back')" },
        { sql: "INSERT INTO users(id, name) VALUES (1, 'duplicate')" },
      ]);
      assert.equal(r.status, 409, r.text);
      assert.match(r.body.error, /statement 2: UNIQUE constraint failed/);
      const after = await q({ sql: "SELECT count(*) FROM users" });
      assert.deepEqual(after.body, before.body);
    });

    await t.step("bad input gets clear JSON errors and harms nothing", async () => {
      const bad: [unknown, number, RegExp][] = [
        ["{bad json", 400, /invalid JSON/],
        ["42", 400, /expected an object/],
        [{ sql: 5 }, 400, /"sql" must be a string/],
        [{ sql: "SELECT 1", params: "x" }, 400, /"params" must be an array or an object/],
        [{ sql: "SELECT ?", params: [{ nested: 1 }] }, 400, /BLOB/],
        [{ sql: "SELEC 1" }, 400, /syntax error/],
        [{ sql: "SELECT * FROM nope" }, 400, /no such table: nope/],
        [{ sql: "SELECT ?", params: [1, 2] }, 400, /parameter/],
        [[], 400, /empty/],
        [{ sql: "BEGIN" }, 400, /transaction control/],
        [[{ sql: "BEGIN" }, { sql: "INSERT INTO users(name) VALUES ('x')" }], 400, /transaction/],
        [[{ sql: "INSERT INTO users(name) VALUES ('x')" }, { sql: "COMMIT" }], 400, /transaction/],
        [{ sql: "INSERT INTO users(name) VALUES (NULL); BEGIN" }, 400, /transaction/],
      ];
      for (const [body, status, re] of bad) {
        const r = await q(body);
        assert.equal(r.status, status, `${JSON.stringify(body)} → ${r.text}`);
        assert.match(r.body.error, re, JSON.stringify(body));
      }
      const r404 = await q({ sql: "SELECT 1" }, "/databases/nope.db");
      assert.equal(r404.status, 404);
      assert.match(r404.body.error, /database "nope.db" not found/);
      const route = await fetch(node.url + "/no/such/route");
      assert.equal(route.status, 404);
      assert.match((await route.json()).error, /no route/);
      const count = await q({ sql: "SELECT count(*) FROM users WHERE name = 'x'" });
      assert.deepEqual(count.body.rows, [[0]]);
    });

    await t.step("a 100 MB body is refused with 413 and the node keeps serving", async () => {
      const chunk = new Uint8Array(1 << 20).fill(0x20);
      let sent = 0;
      const stream = new ReadableStream<Uint8Array>({
        pull(c) {
          if (sent >= 100) return c.close();
          sent++;
          c.enqueue(chunk);
        },
      });
      const r = await fetch(node.url, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: stream,
      }).catch((e) => e);
      if (r instanceof Response) {
        assert.equal(r.status, 413);
        assert.match((await r.json()).error, /exceeds the limit/);
      }
      const ok = await q({ sql: "SELECT 1 AS one" });
      assert.deepEqual(ok.body.rows, [[1]]);
    });

    await t.step("multi-statement sql string returns the last result", async () => {
      const r = await q({
        sql: "CREATE TABLE m(a); INSERT INTO m VALUES (1),(2); SELECT sum(a) FROM m",
      });
      assert.deepEqual(r.body, { columns: ["sum(a)"], rows: [[3]] });
    });

    await t.step("databases list, health and readiness", async () => {
      assert.deepEqual(await (await fetch(node.url + "/databases")).json(), {
        databases: ["ha.db"],
      });
      assert.equal(await fetch(node.url + "/healthz").then((r) => r.status), 200);
      const ready = await fetch(node.url + "/readyz");
      assert.equal(ready.status, 200);
      assert.equal((await ready.json()).status, "ready");
    });
  } finally {
    assert.equal(await node.stop(), 0, node.output());
  }
});

Deno.test("token auth", opts, async () => {
  const node = await startHa({
    args: ["-n", "auth", "-m", "--nats-port", "0", "--pg-port", "0", "--token", "s3cret"],
  });
  try {
    const none = await post(node.url, { sql: "SELECT 1" });
    assert.equal(none.status, 401);
    assert.match(none.body.error, /missing token/);
    const wrong = await post(node.url, { sql: "SELECT 1" }, { authorization: "Bearer nope" });
    assert.equal(wrong.status, 401);
    const bearer = await post(node.url, { sql: "SELECT 1" }, { authorization: "Bearer s3cret" });
    assert.equal(bearer.status, 200);
    const bare = await post(node.url, { sql: "SELECT 1" }, { authorization: "s3cret" });
    assert.equal(bare.status, 200);
    const dl = await fetch(node.url + "/download");
    await dl.body?.cancel();
    assert.equal(dl.status, 401);
    assert.equal((await fetch(node.url + "/healthz")).status, 200);
  } finally {
    await node.stop();
  }
});

async function sqlite3(file: string, sql: string): Promise<string> {
  const r = await new Deno.Command("sqlite3", { args: [file, sql], stdout: "piped" }).output();
  return new TextDecoder().decode(r.stdout).trim();
}

Deno.test(
  "file databases: glob, URI parameters, WAL, download, load into memory",
  opts,
  async (t) => {
    const dir = await Deno.makeTempDir({ prefix: "ha-files-" });
    await sqlite3(`${dir}/a.db`, "CREATE TABLE t(x); INSERT INTO t VALUES ('from a');");
    await sqlite3(`${dir}/b.db`, "CREATE TABLE t(x); INSERT INTO t VALUES ('from b');");
    let node: HaProcess | null = null;
    try {
      await t.step("a glob opens every match, addressed by id", async () => {
        node = await startHa({
          cwd: dir,
          args: ["-n", "files", "--nats-port", "0", "--pg-port", "0", "*.db"],
        });
        assert.deepEqual(await (await fetch(node.url + "/databases")).json(), {
          databases: ["a.db", "b.db"],
        });
        const a = await post(node.url, { sql: "SELECT x FROM t" });
        assert.deepEqual(a.body.rows, [["from a"]]);
        const b = await post(node.url + "/databases/b.db", { sql: "SELECT x FROM t" });
        assert.deepEqual(b.body.rows, [["from b"]]);
        const bq = await post(node.url + "/databases/b.db/query", [{
          sql: "INSERT INTO t VALUES ('2')",
        }]);
        assert.equal(bq.status, 200);
        const wal = await post(node.url + "/databases/b.db", { sql: "PRAGMA journal_mode" });
        assert.deepEqual(wal.body.rows, [["wal"]]);
        const bt = await post(node.url + "/databases/b.db", { sql: "PRAGMA busy_timeout" });
        assert.deepEqual(bt.body.rows, [[5000]]);
      });

      await t.step(
        "GET /download is a consistent SQLite file with its attachment name",
        async () => {
          const r = await fetch(node!.url + "/databases/b.db/download");
          assert.equal(r.status, 200);
          const cd = r.headers.get("content-disposition")!;
          assert.match(cd, /^attachment; filename="b\.db-\d{8}T\d{6}Z\.db"$/);
          const file = `${dir}/downloaded.sqlite`;
          await Deno.writeFile(file, new Uint8Array(await r.arrayBuffer()));
          assert.equal(await sqlite3(file, "SELECT group_concat(x) FROM t"), "from b,2");
          assert.equal(await sqlite3(file, "PRAGMA integrity_check"), "ok");
          await node!.stop();
          node = null;
        },
      );

      await t.step("curl -O -J saves the download under its attachment name", async () => {
        node = await startHa({
          cwd: dir,
          args: ["-n", "f2", "--nats-port", "0", "--pg-port", "0", "a.db"],
        });
        const out = await Deno.makeTempDir();
        const r = await new Deno.Command("curl", {
          args: ["-s", "-O", "-J", `${node.url}/download`],
          cwd: out,
        }).output();
        assert.equal(r.code, 0);
        const files = [...Deno.readDirSync(out)].map((e) => e.name);
        assert.equal(files.length, 1);
        assert.match(files[0], /^a\.db-\d{8}T\d{6}Z\.db$/);
        assert.equal(await sqlite3(`${out}/${files[0]}`, "SELECT x FROM t"), "from a");
        await node.stop();
        node = null;
      });

      await t.step("a file: URI with the README's parameters", async () => {
        node = await startHa({
          cwd: dir,
          args: [
            "-n",
            "uri",
            "--nats-port",
            "0",
            "--pg-port",
            "0",
            "file:c.db?_journal=WAL&_busy_timeout=500",
          ],
        });
        const r = await post(node.url, [{ sql: "PRAGMA journal_mode" }, {
          sql: "PRAGMA busy_timeout",
        }]);
        assert.deepEqual(r.body.results.map((x: { rows: unknown[][] }) => x.rows[0][0]), [
          "wal",
          500,
        ]);
        assert.deepEqual(await (await fetch(node.url + "/databases")).json(), {
          databases: ["c.db"],
        });
        await node.stop();
        node = null;
      });

      await t.step(
        "-m FILE loads an existing file into memory and leaves it untouched",
        async () => {
          node = await startHa({
            cwd: dir,
            args: ["-n", "mem", "-m", "--nats-port", "0", "--pg-port", "0", "a.db"],
          });
          const r = await post(node.url, { sql: "SELECT x FROM t" });
          assert.deepEqual(r.body.rows, [["from a"]]);
          await post(node.url, { sql: "INSERT INTO t VALUES ('memory only')" });
          await node.stop();
          node = null;
          assert.equal(await sqlite3(`${dir}/a.db`, "SELECT count(*) FROM t"), "1");
        },
      );
    } finally {
      await (node as HaProcess | null)?.stop();
    }
  },
);

Deno.test("reads are not blocked by a long write", opts, async () => {
  const dir = await Deno.makeTempDir({ prefix: "ha-long-" });
  const node = await startHa({
    cwd: dir,
    args: ["-n", "long", "--nats-port", "0", "--pg-port", "0", "long.db"],
  });
  try {
    await post(node.url, { sql: "CREATE TABLE big(x); INSERT INTO big VALUES (1)" });
    const order: string[] = [];
    const write = post(node.url, {
      sql:
        "INSERT INTO big WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM c LIMIT 3000000) SELECT i FROM c",
    }).then((r) => {
      order.push("write");
      return r;
    });
    await new Promise((r) => setTimeout(r, 150));
    const read = await post(node.url, { sql: "SELECT count(*) FROM big" });
    order.push("read");
    assert.deepEqual(read.body.rows, [[1]], "the read sees the last committed state");
    const w = await write;
    assert.equal(w.status, 200, w.text);
    assert.deepEqual(order, ["read", "write"]);
  } finally {
    await node.stop();
  }
});

Deno.test("--concurrent-queries bounds statements running at once", opts, async () => {
  const dir = await Deno.makeTempDir({ prefix: "ha-conc-" });
  const node = await startHa({
    cwd: dir,
    args: ["-n", "conc", "--nats-port", "0", "--pg-port", "0", "--concurrent-queries", "1", "c.db"],
  });
  try {
    await post(node.url, { sql: "CREATE TABLE big(x); INSERT INTO big VALUES (1)" });
    await post(node.url, { sql: "SELECT count(*) FROM big" }); // learn that this is a read
    const order: string[] = [];
    const walSize = () => Deno.statSync(`${dir}/c.db-wal`).size;
    const base = walSize();
    const write = post(node.url, {
      sql:
        "INSERT INTO big WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM c LIMIT 2000000) SELECT i FROM c",
    }).then(() => order.push("write"));
    // The write holds the permit once it runs: its pages spill into the WAL before it commits.
    await waitFor("the write running", () => order.length > 0 || walSize() > base + 1_000_000);
    const read = await post(node.url, { sql: "SELECT count(*) FROM big" });
    order.push("read");
    await write;
    assert.deepEqual(order, ["write", "read"], "the read waited for the only permit");
    assert.deepEqual(read.body.rows, [[2000001]]);
  } finally {
    await node.stop();
  }
});
