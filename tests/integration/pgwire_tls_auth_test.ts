/** TLS (SSLRequest upgrade) and password methods: SCRAM-SHA-256, md5, cleartext. */
import assert from "node:assert/strict";
import pg from "pg";
import { psql, python, selfSignedCert, startPg } from "./pgwire_helpers.ts";

const opts = { sanitizeResources: false, sanitizeOps: false };

Deno.test("pg TLS: sslmode=require with --pg-cert/--pg-key", opts, async (t) => {
  const tls = await selfSignedCert();
  const server = await startPg({ cert: tls.cert, key: tls.key });
  try {
    await t.step("psql sslmode=require", async () => {
      const r = await psql(server.port, [
        "-d",
        "sslmode=require",
        "-tA",
        "-c",
        "SHOW ssl",
        "-c",
        "SELECT 'over tls'",
      ]);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout.trim(), "on\nover tls");
    });
    await t.step("plain connections still work (sslmode=disable)", async () => {
      const r = await psql(server.port, ["-d", "sslmode=disable", "-tA", "-c", "SHOW ssl"]);
      assert.equal(r.stdout.trim(), "off");
    });
    await t.step("node pg and psycopg over TLS", async () => {
      const c = new pg.Client({
        host: "127.0.0.1",
        port: server.port,
        user: "ha",
        password: "ha",
        ssl: { rejectUnauthorized: false },
      });
      await c.connect();
      assert.deepEqual((await c.query("SELECT $1 AS v", ["x"])).rows, [{ v: "x" }]);
      assert.equal((await c.query("SHOW ssl")).rows[0].ssl, "on");
      await c.end();
      const r = await python(`
import psycopg
with psycopg.connect("host=127.0.0.1 port=${server.port} user=ha password=ha sslmode=require") as c:
    print(c.execute("SHOW ssl").fetchone()[0], c.pgconn.ssl_in_use)
`);
      assert.equal(r.stdout.trim(), "on True", r.stderr);
    });
    await t.step("wrong password over TLS → 28P01", async () => {
      const r = await psql(server.port, ["-d", "sslmode=require", "-c", "SELECT 1"], {
        env: { PGPASSWORD: "nope" },
      });
      assert.notEqual(r.code, 0);
      assert.match(r.stderr, /password authentication failed for user "ha"/);
    });
  } finally {
    await server.stop();
    await Deno.remove(tls.dir, { recursive: true });
  }
});

Deno.test("pg TLS: without a certificate sslmode=require is refused", opts, async () => {
  const server = await startPg();
  try {
    const r = await psql(server.port, ["-d", "sslmode=require", "-c", "SELECT 1"]);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /server does not support SSL/);
    const ok = await psql(server.port, ["-d", "sslmode=prefer", "-tA", "-c", "SELECT 'plain'"]);
    assert.equal(ok.stdout.trim(), "plain");
  } finally {
    await server.stop();
  }
});

Deno.test("pg auth: SCRAM by default, md5 and cleartext on request", opts, async () => {
  for (const method of ["scram-sha-256", "md5", "password"] as const) {
    const server = await startPg({ authMethod: method });
    try {
      const connect = async (password: string) => {
        const c = new pg.Client({ host: "127.0.0.1", port: server.port, user: "ha", password });
        await c.connect();
        const r = await c.query("SELECT 1 AS one");
        await c.end();
        return r.rows[0].one;
      };
      assert.equal(await connect("ha"), "1", method);
      await assert.rejects(connect("bad"), { code: "28P01" }, method);
      const r = await psql(server.port, ["-tA", "-c", "SELECT 'psql'"]);
      assert.equal(r.stdout.trim(), "psql", `${method}: ${r.stderr}`);
      const bad = await psql(server.port, ["-c", "SELECT 1"], { env: { PGPASSWORD: "x" } });
      assert.match(bad.stderr, /password authentication failed/, method);
    } finally {
      await server.stop();
    }
  }
});
