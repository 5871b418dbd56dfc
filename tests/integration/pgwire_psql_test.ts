/** psql and pgbench (real binaries) against `ha --pg-port`. */
import assert from "node:assert/strict";
import { type PgTarget, psql, run, startPg } from "./pgwire_helpers.ts";

const opts = { sanitizeResources: false, sanitizeOps: false };

Deno.test("psql: the README flow and friends", opts, async (t) => {
  const pg: PgTarget = await startPg();
  try {
    await t.step("README: create, INSERT …; SELECT * FROM users;", async () => {
      let r = await psql(pg.port, [
        "-v",
        "ON_ERROR_STOP=1",
        "-c",
        "CREATE TABLE users(id INTEGER PRIMARY KEY, name TEXT)",
      ]);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout.trim(), "CREATE TABLE");
      // psql reading statements from stdin, like an interactive session
      r = await psql(pg.port, ["-v", "ON_ERROR_STOP=1"], {
        stdin: "INSERT INTO users(name) VALUES('HA user from PostgreSQL Wire Protocol');\n" +
          "SELECT * FROM users;\n",
      });
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /INSERT 0 1/);
      assert.match(r.stdout, /id \|\s+name/);
      assert.match(r.stdout, /1 \| HA user from PostgreSQL Wire Protocol/);
      assert.match(r.stdout, /\(1 row\)/);
    });

    await t.step("-c with several statements: each result, one implicit transaction", async () => {
      let r = await psql(pg.port, [
        "-c",
        "INSERT INTO users(name) VALUES ('a'); INSERT INTO users(name) VALUES ('b'); SELECT count(*) FROM users",
      ]);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /INSERT 0 1\nINSERT 0 1\n/);
      assert.match(r.stdout, /\b3\b/);
      // an error rolls the whole string back (PostgreSQL semantics)
      r = await psql(pg.port, [
        "-c",
        "INSERT INTO users(name) VALUES ('c'); INSERT INTO users(id) VALUES (1); SELECT 1",
      ]);
      assert.notEqual(r.code, 0);
      assert.match(r.stderr, /UNIQUE constraint failed/);
      r = await psql(pg.port, ["-tA", "-c", "SELECT count(*) FROM users WHERE name = 'c'"]);
      assert.equal(r.stdout.trim(), "0");
    });

    await t.step("-f script with variables, transactions and SQLSTATEs", async () => {
      const dir = await Deno.makeTempDir({ prefix: "ha-psql-" });
      const file = `${dir}/script.sql`;
      await Deno.writeTextFile(
        file,
        `\\set name 'from a file'
CREATE TABLE items(id INTEGER PRIMARY KEY, name TEXT NOT NULL, price REAL, ok BOOLEAN, data BLOB);
BEGIN;
INSERT INTO items(name, price, ok, data) VALUES (:'name', 2.5, 1, x'00ff');
INSERT INTO items(name) VALUES (NULL);
SELECT 1;
COMMIT;
SELECT count(*) AS n FROM items;
BEGIN;
INSERT INTO items(name, price, ok) VALUES (:'name', 1e300, 0);
COMMIT;
SELECT name, price, ok, data, typeof(data) FROM items ORDER BY id;
`,
      );
      const r = await psql(pg.port, ["-v", "VERBOSITY=verbose", "-f", file]);
      await Deno.remove(dir, { recursive: true });
      assert.match(r.stderr, /ERROR:\s+23502: NOT NULL constraint failed: items.name/);
      assert.match(r.stderr, /ERROR:\s+25P02: current transaction is aborted/);
      assert.match(r.stdout, /ROLLBACK/); // COMMIT of a failed transaction
      assert.match(r.stdout, / n \n---\n 0\n/);
      assert.match(r.stdout, /from a file \| 1e\+300 \| f\s+\|\s+\| null/);
    });

    await t.step("errors carry SQLSTATEs and the session stays usable", async () => {
      const r = await psql(pg.port, ["-v", "VERBOSITY=verbose"], {
        stdin: "selec 1;\nSELECT * FROM nope;\nSELECT nope FROM users;\n" +
          "INSERT INTO users(id, name) VALUES (1, 'dup');\nSELECT 'alive' AS still;\n",
      });
      assert.match(r.stderr, /42601: near "selec": syntax error/);
      assert.match(r.stderr, /42P01: no such table: nope/);
      assert.match(r.stderr, /42703: no such column: nope/);
      assert.match(r.stderr, /23505: UNIQUE constraint failed: users.id/);
      assert.match(r.stdout, /alive/);
    });

    await t.step("start-up chatter and catalog probes", async () => {
      let r = await psql(pg.port, [
        "-tA",
        "-c",
        "SELECT version(), current_database(), current_schema(), current_setting('server_version_num')",
        "-c",
        "SHOW standard_conforming_strings",
        "-c",
        "SET application_name = 'tests'",
        "-c",
        "SHOW DATABASES",
      ]);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /^PostgreSQL 15\.0 \(ha\).*\|ha\.db\|public\|150000$/m);
      assert.match(r.stdout, /^on$/m);
      assert.match(r.stdout, /^SET$/m);
      assert.match(r.stdout, /^ha\.db\|1$/m);
      // \d reads pg_catalog; an unsupported catalog relation fails with an ErrorResponse and
      // the connection lives on
      r = await psql(pg.port, [], {
        stdin: "\\d\nSELECT * FROM pg_catalog.pg_stat_replication;\nSELECT 'after' AS x;\n",
      });
      assert.match(r.stdout, /List of relations/);
      assert.match(
        r.stderr,
        /ERROR: {2}catalog relation pg_catalog\.pg_stat_replication is not supported/,
      );
      assert.match(r.stdout, /after/);
    });

    await t.step("unknown database → 3D000", async () => {
      const r = await psql(pg.port, ["-d", "nope", "-c", "SELECT 1"]);
      assert.notEqual(r.code, 0);
      assert.match(r.stderr, /database "nope" does not exist/);
      const ok = await psql(pg.port, ["-d", "ha", "-tA", "-c", "SELECT current_database()"]);
      assert.equal(ok.stdout.trim(), "ha.db");
    });

    await t.step("cancel a long query (psql sends CancelRequest on SIGINT)", async () => {
      const child = new Deno.Command("/usr/bin/psql", {
        args: [
          "-X",
          "-h",
          "127.0.0.1",
          "-p",
          String(pg.port),
          "-U",
          "ha",
          "-v",
          "VERBOSITY=verbose",
        ],
        env: { PGPASSWORD: "ha" },
        stdin: "piped",
        stdout: "piped",
        stderr: "piped",
      }).spawn();
      const w = child.stdin.getWriter();
      await w.write(
        new TextEncoder().encode(
          "SELECT 'marker';\nWITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c " +
            "WHERE x < 30000000) SELECT count(*) FROM c;\n",
        ),
      );
      await w.close();
      // once the first result is printed, the long statement is on its way
      const reader = child.stdout.getReader();
      let seen = "";
      while (!seen.includes("marker")) {
        const { value, done } = await reader.read();
        if (done) break;
        seen += new TextDecoder().decode(value);
      }
      reader.releaseLock();
      const stderrText = new Response(child.stderr).text();
      const status = child.status;
      let exited = false;
      status.then(() => exited = true);
      // repeat: a cancel that arrives before the query starts is (rightly) ignored
      for (let i = 0; i < 20 && !exited; i++) {
        await new Promise((r) => setTimeout(r, 300));
        if (!exited) child.kill("SIGINT");
      }
      await child.stdout.cancel().catch(() => {});
      await status;
      assert.match(await stderrText, /57014: canceling statement due to user request/);
      const r = await psql(pg.port, ["-tA", "-c", "SELECT 'usable'"]);
      assert.equal(r.stdout.trim(), "usable");
    });
  } finally {
    await pg.stop();
  }
});

Deno.test("pgbench: custom scripts in simple, extended and prepared mode", opts, async () => {
  const pg = await startPg();
  try {
    const setup = await psql(pg.port, ["-v", "ON_ERROR_STOP=1"], {
      stdin: "CREATE TABLE accounts(aid INTEGER PRIMARY KEY, abalance INTEGER, filler TEXT);\n" +
        "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 1000) " +
        "INSERT INTO accounts SELECT x, 0, 'filler' FROM c;\n" +
        "CREATE TABLE history(id INTEGER PRIMARY KEY, aid INTEGER, delta INTEGER);\n",
    });
    assert.equal(setup.code, 0, setup.stderr);
    const dir = await Deno.makeTempDir({ prefix: "ha-pgbench-" });
    const script = `${dir}/tx.sql`;
    await Deno.writeTextFile(
      script,
      `\\set aid random(1, 1000)
\\set delta random(-100, 100)
SELECT abalance FROM accounts WHERE aid = :aid;
UPDATE accounts SET abalance = abalance + :delta WHERE aid = :aid;
INSERT INTO history(aid, delta) VALUES (:aid, :delta);
`,
    );
    try {
      for (const mode of ["simple", "extended", "prepared"]) {
        const r = await run("/usr/bin/pgbench", [
          "-h",
          "127.0.0.1",
          "-p",
          String(pg.port),
          "-U",
          "ha",
          "-n",
          "-M",
          mode,
          "-c",
          "2",
          "-t",
          "20",
          "-f",
          script,
          "ha",
        ]);
        assert.equal(r.code, 0, `${mode}: ${r.stderr}\n${r.stdout}`);
        // A fixed count, not a rate: the machine's speed must not decide the outcome.
        assert.match(r.stdout, /number of transactions actually processed: 40\/40/, r.stdout);
        assert.match(r.stdout, /number of failed transactions: 0 /);
      }
      const r = await psql(pg.port, [
        "-tA",
        "-c",
        "SELECT (SELECT count(*) FROM history), (SELECT sum(abalance) FROM accounts) = (SELECT sum(delta) FROM history)",
      ]);
      assert.equal(r.stdout.trim(), "120|1"); // 3 modes × 40 transactions
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  } finally {
    await pg.stop();
  }
});
