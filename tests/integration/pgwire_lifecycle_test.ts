/**
 * Connection lifecycle with an in-process PgServer (the engine is at hand to
 * check effects): abrupt disconnects roll back and release the writer,
 * Terminate, the message size limit, the start-up timeout, and stop().
 */
import assert from "node:assert/strict";
import { openEngine } from "../../src/engine/mod.ts";
import { createLogger } from "../../src/log/mod.ts";
import { PgServer } from "../../src/pgwire/mod.ts";
import { errorFields, fe, RawClient } from "./pgwire_helpers.ts";

const opts = { sanitizeResources: false, sanitizeOps: false };

async function setup(extra: Partial<ConstructorParameters<typeof PgServer>[0]> = {}) {
  const logger = createLogger("error");
  const engine = await openEngine({ dsns: [], memory: true, concurrentQueries: 16, logger });
  await engine.defaultDb.execute([{ sql: "CREATE TABLE t(a INTEGER PRIMARY KEY)" }]);
  const server = new PgServer({
    engine,
    port: 0,
    hostname: "127.0.0.1",
    user: "ha",
    password: "ha",
    logger,
    ...extra,
  });
  await server.start();
  const count = async () =>
    (await engine.defaultDb.execute([{ sql: "SELECT count(*) FROM t" }]))[0].rows[0][0];
  return { engine, server, count };
}

async function query(c: RawClient, sql: string) {
  await c.send(fe.query(sql));
  return await c.until();
}

Deno.test("pg lifecycle: a dropped connection rolls back and frees the writer", opts, async () => {
  const { engine, server, count } = await setup();
  try {
    const a = await RawClient.connect(server.port);
    await query(a, "BEGIN");
    await query(a, "INSERT INTO t VALUES (1)");
    a.close(); // no Terminate, no ROLLBACK
    const b = await RawClient.connect(server.port);
    const r = await query(b, "INSERT INTO t VALUES (2)");
    assert.equal(r[0].type, "C", JSON.stringify(r.map((m) => m.type)));
    assert.equal(await count(), 1n);
    // Terminate: the server closes the connection
    await b.send(fe.terminate());
    assert.equal((await b.read()).type, "");
    b.close();
  } finally {
    await server.stop();
    await engine.close();
  }
});

Deno.test("pg lifecycle: message size limit and start-up timeout", opts, async () => {
  const { engine, server } = await setup({ maxMessageBytes: 1024, authTimeoutMs: 300 });
  try {
    const big = await RawClient.connect(server.port);
    await big.send(fe.query("SELECT '" + "x".repeat(2000) + "'"));
    const m = await big.read();
    assert.equal(errorFields(m).C, "54000");
    assert.equal(errorFields(m).S, "FATAL");
    assert.equal((await big.read()).type, "");
    big.close();
    // within the limit is fine
    const ok = await RawClient.connect(server.port);
    const r = await query(ok, "SELECT '" + "x".repeat(900) + "'");
    assert.equal(r[r.length - 1].type, "Z");
    ok.close();
    // a client that never finishes start-up is dropped
    const idle = await RawClient.open(server.port);
    await idle.send(new Uint8Array([0, 0]));
    assert.equal((await idle.read()).type, ""); // the server closed it
    idle.close();
  } finally {
    await server.stop();
    await engine.close();
  }
});

Deno.test("pg lifecycle: stop() ends sessions (rolling back) and is idempotent", opts, async () => {
  const { engine, server, count } = await setup();
  try {
    const idle = await RawClient.connect(server.port);
    const inTx = await RawClient.connect(server.port);
    await query(inTx, "BEGIN");
    await query(inTx, "INSERT INTO t VALUES (10)");
    // The clients stay connected and idle: stop() returning means it ended their sessions.
    await Promise.all([server.stop(), server.stop()]);
    await server.stop();
    const bye = await idle.read();
    assert.equal(errorFields(bye).C, "57P01");
    idle.close();
    inTx.close();
    assert.equal(await count(), 0n);
    await assert.rejects(RawClient.connect(server.port));
  } finally {
    await server.stop();
    await engine.close();
  }
});
