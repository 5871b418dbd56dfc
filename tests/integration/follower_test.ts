/**
 * Read-only followers (`--read-only`, here through `HA_READ_ONLY`) as real processes: a follower
 * with a file database applies node1's changes while separate plain-SQLite readers (Python's
 * sqlite3, the sqlite3 command line — the README's snippets) read the file; writes to it are
 * refused over HTTP (400, "read-only") and psql (SQLSTATE 25006); it publishes nothing.
 */
import assert from "node:assert/strict";
import { Cluster, HttpError, waitFor } from "./helpers/cluster.ts";
import { freePort } from "./helpers/ha.ts";
import { psql, run } from "./pgwire_helpers.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };
const README = Deno.readTextFileSync(new URL("../../README.md", import.meta.url));

/** The README's fenced block of `lang` in the section titled `section` containing `needle`. */
function readmeBlock(section: string, lang: string, needle: string): string {
  const start = README.indexOf(`## ${section}`);
  const body = README.slice(start, README.indexOf("\n## ", start + 3));
  const re = new RegExp("```" + lang + "\\n([\\s\\S]*?)```", "g");
  const found = [...body.matchAll(re)].map((m) => m[1]).find((b) => b.includes(needle));
  assert.ok(found, `README section ${section}: no ${lang} block with ${needle}`);
  return found;
}

Deno.test(
  "read-only follower: applies changes under plain SQLite readers, refuses writes",
  opts,
  async () => {
    const cluster = new Cluster();
    try {
      const n1Pg = freePort();
      const n1 = await cluster.start("node1", {
        embeddedNats: true,
        args: ["--pg-port", String(n1Pg)],
      });
      await n1.sql("CREATE TABLE users(id INTEGER PRIMARY KEY, name TEXT)");
      await n1.sql("INSERT INTO users(name) VALUES (?)", ["first"]);

      const dir = `${cluster.root}/reader1`;
      Deno.mkdirSync(`${dir}/replica`, { recursive: true });
      const file = `${dir}/replica/ha.db`;
      const pgPort = freePort();
      const f = await cluster.start("reader1", {
        natsUrl: n1.natsUrl!,
        memory: false,
        dsns: [file],
        args: ["--pg-port", String(pgPort)],
        env: { HA_READ_ONLY: "true" },
      });
      await waitFor("the follower is ready", async () => (await f.get("/readyz")).status === 200);
      await waitFor(
        "the follower has node1's row",
        async () => (await f.sql("SELECT count(*) FROM users")).rows[0][0] === 1,
      );

      // The README's snippets, on this follower's file.
      const py = readmeBlock("Read-only followers", "python", "sqlite3").replaceAll(
        "replica/ha.db",
        file,
      );
      const pyOut = await run("/usr/bin/python3", ["-c", py]);
      assert.equal(pyOut.code, 0, pyOut.stderr);
      assert.equal(pyOut.stdout.trim(), "1");
      const cli = readmeBlock("Read-only followers", "sh", "sqlite3 -readonly").trim();
      const cliOut = await run("bash", ["-c", cli.replaceAll("replica/ha.db", file)]);
      assert.equal(cliOut.code, 0, cliOut.stderr);
      assert.equal(cliOut.stdout.trim(), "1");

      // A Python reader polls the file while node1 writes 40 more rows one by one: it reads
      // without errors (no "database is locked") and ends with all of them.
      const reader = new Deno.Command("/usr/bin/python3", {
        args: [
          "-c",
          `
import sqlite3, sys, time
db = sqlite3.connect("file:${file}?mode=ro", uri=True)
seen = []
end = time.time() + 60
while time.time() < end:
    n = db.execute("SELECT count(*) FROM users").fetchone()[0]
    if not seen or seen[-1] != n:
        seen.append(n)
    if n == 41:
        break
    time.sleep(0.005)
print(",".join(map(str, seen)))
`,
        ],
        stdout: "piped",
        stderr: "piped",
      }).spawn();
      for (let i = 2; i <= 41; i++) await n1.sql("INSERT INTO users(name) VALUES (?)", [`u${i}`]);
      const out = await reader.output();
      const seen = new TextDecoder().decode(out.stdout).trim().split(",").map(Number);
      assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
      assert.equal(seen.at(-1), 41, `counts seen: ${seen}`);
      assert.deepEqual(seen, [...seen].sort((a, b) => a - b), "counts only grow");

      // Writes are refused over HTTP: 400 with a message that says read-only, nothing written.
      for (const sql of ["INSERT INTO users(name) VALUES ('no')", "DROP TABLE users"]) {
        await assert.rejects(
          f.sql(sql),
          (e) => e instanceof HttpError && e.status === 400 && /read-only node/.test(e.message),
        );
      }
      await assert.rejects(
        f.batch([{ sql: "SELECT 1" }, { sql: "DELETE FROM users" }]),
        (e) =>
          e instanceof HttpError && e.status === 400 && /read-only node: DELETE/.test(e.message),
      );
      const snap = await fetch(`${f.url}/snapshot`, { method: "POST" });
      assert.equal(snap.status, 400);
      assert.match((await snap.json()).error, /read-only node/);

      // …and over psql: SQLSTATE 25006; reads in a (read-only) transaction work.
      const refused = await psql(pgPort, ["-v", "VERBOSITY=verbose", "-v", "ON_ERROR_STOP=1"], {
        stdin: "INSERT INTO users(name) VALUES ('no');\n",
      });
      assert.notEqual(refused.code, 0);
      assert.match(refused.stderr, /ERROR:\s+25006: read-only node: INSERT refused/);
      const inTx = await psql(pgPort, ["-v", "VERBOSITY=verbose", "-At"], {
        stdin: "BEGIN READ ONLY;\nSELECT count(*) FROM users;\nUPDATE users SET name = 'x';\n" +
          "ROLLBACK;\nBEGIN;\nSELECT max(name) FROM users;\nCOMMIT;\n",
      });
      assert.match(inTx.stdout, /^BEGIN\n41\n/);
      assert.match(inTx.stderr, /25006: read-only node: UPDATE refused/);
      assert.match(inTx.stdout, /ROLLBACK\nBEGIN\nu9\nCOMMIT/);

      // It reports itself as a hot standby would: libpq's target_session_attrs=read-write skips it.
      const show = await psql(pgPort, ["-At", "-c", "SHOW transaction_read_only"]);
      assert.equal(show.stdout.trim(), "on", show.stderr);
      const pick = async (attrs: string) => {
        const r = await run("/usr/bin/psql", [
          "-X",
          "-At",
          "-c",
          "SHOW transaction_read_only",
          `host=127.0.0.1,127.0.0.1 port=${pgPort},${n1Pg} user=ha target_session_attrs=${attrs}`,
        ]);
        assert.equal(r.code, 0, r.stderr);
        return r.stdout.trim();
      };
      assert.equal(await pick("read-write"), "off", "node1 chosen for writes");
      assert.equal(await pick("standby"), "on", "the follower chosen as standby");

      // It published nothing, and node1 still has exactly its own 41 rows.
      const { status } = (await f.get("/replications")).body as {
        status: { database: string; publisher: { published: number; pending: number } }[];
      };
      assert.deepEqual(
        status.map((s) => [s.database, s.publisher.published, s.publisher.pending]),
        [
          ["ha.db", 0, 0],
        ],
      );
      assert.deepEqual((await n1.sql("SELECT count(*), max(name) FROM users")).rows, [[41, "u9"]]);
    } finally {
      await cluster.stop();
    }
  },
);
