/**
 * Issue 11 finding 7: runaway statements can be stopped. Real ha processes: a statement past
 * `--statement-timeout` (or PG `SET statement_timeout`) ends with HTTP 504 / SQLSTATE 57014 and its
 * writes roll back without publishing anything; a PG CancelRequest, an HTTP client that goes
 * away and SIGTERM stop a running statement and free its worker. No assertion depends on elapsed
 * time: the nodes that test cancellation have no statement timeout, so only a cancel can end
 * their runaway statements.
 */
import assert from "node:assert/strict";
import { DatabaseSync } from "node:sqlite";
import { jetstreamManager } from "@nats-io/jetstream";
import nodePg from "pg";
import { decodeChangeSet } from "../../src/cdc/mod.ts";
import { findInterruptExtension } from "../../src/engine/mod.ts";
import { createLogger } from "../../src/log/mod.ts";
import { connectNats } from "../../src/nats/mod.ts";
import { freePort, type HaProcess, post, startHa } from "../integration/helpers/ha.ts";
import { dataRow, errorFields, i32, msg, RawClient } from "../integration/pgwire_helpers.ts";
import { waitFor } from "./helpers.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };
const RUNAWAY =
  "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c";
const RUNAWAY_ROWS = RUNAWAY.replace("SELECT count(*) FROM c", "SELECT x FROM c");

/** What a simple Query answered. */
interface Answer {
  rows: (string | null)[][];
  /** SQLSTATE and message of the error, if any. */
  error: { code: string; message: string } | null;
  notices: string[];
  /** Transaction status of ReadyForQuery: I, T or E. */
  status: string;
}

function sendQuery(c: RawClient, sql: string): Promise<void> {
  return c.send(msg("Q", sql));
}

async function answer(c: RawClient): Promise<Answer> {
  const a: Answer = { rows: [], error: null, notices: [], status: "" };
  for (const m of await c.until("Z")) {
    if (m.type === "D") a.rows.push(dataRow(m));
    if (m.type === "E") a.error = { code: errorFields(m).C, message: errorFields(m).M };
    if (m.type === "N") a.notices.push(errorFields(m).C);
    if (m.type === "Z") a.status = String.fromCharCode(m.body[0]);
  }
  return a;
}

async function query(c: RawClient, sql: string): Promise<Answer> {
  await sendQuery(c, sql);
  return await answer(c);
}

/** Sends CancelRequests for `c` until its running query answers (a cancel can arrive early). */
async function cancelUntilAnswered(pg: number, c: RawClient): Promise<Answer> {
  const answered = answer(c);
  let done = false;
  answered.then(() => done = true, () => done = true);
  await waitFor("the cancelled query to answer", async () => {
    if (done) return true;
    const k = await Deno.connect({ hostname: "127.0.0.1", port: pg });
    await k.write(msg("", i32(80877102), i32(c.keys.pid), i32(c.keys.secret)));
    k.close();
    return done;
  }, 60_000);
  return await answered;
}

/** Whether ha holds the write lock of `path` (a write transaction is running). */
function writeLocked(path: string): boolean {
  const db = new DatabaseSync(path, { timeout: 0 });
  try {
    db.exec("BEGIN IMMEDIATE");
    db.exec("ROLLBACK");
    return false;
  } catch (e) {
    if (/locked|busy/i.test((e as Error).message)) return true;
    throw e;
  } finally {
    db.close();
  }
}

async function start(name: string, extra: string[]): Promise<{ ha: HaProcess; pg: number }> {
  const pg = freePort();
  const ha = await startHa({ args: ["-n", name, "--pg-port", String(pg), ...extra] });
  // PG listens just after HTTP answers /healthz.
  await waitFor("the PG port", async () => {
    (await Deno.connect({ hostname: "127.0.0.1", port: pg })).close();
    return true;
  });
  return { ha, pg };
}

Deno.test(
  "statement timeout: HTTP 504 and PG 57014, interrupted writes roll back and publish nothing",
  opts,
  async () => {
    const dir = await Deno.makeTempDir({ prefix: "ha-sec-timeout-" });
    const natsPort = freePort();
    const { ha, pg } = await start("sec-timeout", [
      "-m",
      "--statement-timeout",
      "300ms",
      "--nats-port",
      String(natsPort),
      "--nats-store-dir",
      `${dir}/nats`,
    ]);
    let c: RawClient | null = null;
    try {
      const runaway = await post(ha.url, { sql: RUNAWAY });
      assert.equal(runaway.status, 504, runaway.text);
      assert.match(runaway.body.error, /^canceling statement due to statement timeout \(300 ms/);
      assert.equal((await post(ha.url, { sql: "SELECT 1" })).status, 200);

      assert.equal(
        (await post(ha.url, { sql: "CREATE TABLE t(id INTEGER PRIMARY KEY, v)" })).status,
        200,
      );
      const batch = await post(ha.url, [
        { sql: "INSERT INTO t VALUES (1, 'batch')" },
        { sql: `INSERT INTO t(v) ${RUNAWAY_ROWS}` },
      ]);
      assert.equal(batch.status, 504, batch.text);
      assert.match(batch.body.error, /^statement 2: canceling statement due to statement timeout/);

      // The extension is loaded into every connection; SQL still cannot load one.
      const ext = await findInterruptExtension();
      const load = await post(ha.url, { sql: `SELECT load_extension('${ext}')` });
      assert.equal(load.status, 400, load.text);
      assert.match(load.body.error, /load_extension\(\) is not allowed/);

      c = await RawClient.connect(pg);
      assert.deepEqual((await query(c, "SHOW statement_timeout")).rows, [["300ms"]]);
      for (const [set, shown] of [["'5s'", "5s"], ["5000", "5s"], ["100", "100ms"]]) {
        assert.equal((await query(c, `SET statement_timeout = ${set}`)).error, null, set);
        assert.deepEqual((await query(c, "SHOW statement_timeout")).rows, [[shown]], set);
      }
      const bad = await query(c, "SET statement_timeout = '5m'");
      assert.equal(bad.error?.code, "22023");
      assert.equal((await query(c, "RESET statement_timeout")).error, null);
      assert.deepEqual((await query(c, "SHOW statement_timeout")).rows, [["300ms"]]);

      // An interrupted write inside a transaction: the block fails, as in PostgreSQL, and
      // SQLite has rolled it back; ROLLBACK ends it without a warning.
      assert.equal((await query(c, "BEGIN")).status, "T");
      assert.equal((await query(c, "INSERT INTO t VALUES (1, 'tx')")).error, null);
      const inTx = await query(c, `INSERT INTO t(v) ${RUNAWAY_ROWS}`);
      assert.equal(inTx.error?.code, "57014");
      assert.match(inTx.error!.message, /canceling statement due to statement timeout/);
      assert.equal(inTx.status, "E");
      assert.equal((await query(c, "SELECT 1")).error?.code, "25P02");
      const rollback = await query(c, "ROLLBACK");
      assert.deepEqual([rollback.error, rollback.notices, rollback.status], [null, [], "I"]);
      assert.deepEqual((await query(c, "SELECT count(*) FROM t")).rows, [["0"]]);

      assert.equal((await query(c, "INSERT INTO t VALUES (2, 'kept')")).error, null);
      assert.equal((await query(c, "SELECT 1")).status, "I");

      // Only the table and row 2 were published: nothing of the interrupted writes.
      const nats = await connectNats({
        servers: [`nats://127.0.0.1:${natsPort}`],
        name: "test",
        logger: createLogger("error"),
      });
      try {
        const jsm = await jetstreamManager(nats.nc);
        const inserts: unknown[] = [];
        await waitFor("row 2 published", async () => {
          inserts.length = 0;
          const last = (await jsm.streams.info("ha_replication")).state.last_seq;
          for (let seq = 1; seq <= last; seq++) {
            const m = await jsm.streams.getMessage("ha_replication", { seq });
            for (const ch of decodeChangeSet(m!.data).changes) {
              if (ch.operation !== "SQL") inserts.push([ch.operation, ch.new_values]);
            }
          }
          return inserts.length > 0;
        }, 60_000);
        assert.deepEqual(inserts, [["INSERT", [2, "kept"]]]);
      } finally {
        await nats.close();
      }
    } finally {
      c?.close();
      await ha.stop();
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  },
);

Deno.test(
  "PG SET statement_timeout and cancel, HTTP disconnect: running statements stop",
  opts,
  async () => {
    const { ha, pg } = await start("sec-cancel", [
      "--nats-port",
      "0",
      "--statement-timeout",
      "0",
      "app.db",
    ]);
    const clients: RawClient[] = [];
    const connect = async () => {
      const c = await RawClient.connect(pg);
      clients.push(c);
      return c;
    };
    try {
      const a = await connect();
      assert.deepEqual((await query(a, "SHOW statement_timeout")).rows, [["0"]]);
      await query(a, "SET statement_timeout = '200ms'");
      const timedOut = await query(a, RUNAWAY);
      assert.equal(timedOut.error?.code, "57014");
      assert.match(timedOut.error!.message, /statement timeout/);
      await query(a, "RESET statement_timeout");

      // node-postgres sends its statement_timeout option as a start-up parameter.
      const driver = new nodePg.Client({
        host: "127.0.0.1",
        port: pg,
        user: "ha",
        password: "ha",
        statement_timeout: 200,
      });
      await driver.connect();
      try {
        assert.deepEqual((await driver.query("SHOW statement_timeout")).rows, [
          { statement_timeout: "200ms" },
        ]);
        await assert.rejects(
          driver.query(RUNAWAY),
          (e: { code?: string; message?: string }) =>
            e.code === "57014" && /statement timeout/.test(e.message ?? ""),
        );
        assert.deepEqual((await driver.query("SELECT 1 AS one")).rows, [{ one: "1" }]);
      } finally {
        await driver.end();
      }

      // A cancel stops the statement and the connection goes on.
      await sendQuery(a, RUNAWAY);
      const cancelled = await cancelUntilAnswered(pg, a);
      assert.deepEqual(cancelled.error, {
        code: "57014",
        message: "canceling statement due to user request",
      });
      assert.deepEqual((await query(a, "SELECT 1")).rows, [["1"]]);

      // Two runaway reads hold both readers; once cancelled, another client's query runs.
      const b = await connect();
      const other = await connect();
      await sendQuery(a, RUNAWAY);
      await sendQuery(b, RUNAWAY);
      const selectOne = query(other, "SELECT 1");
      const [ca, cb] = await Promise.all([cancelUntilAnswered(pg, a), cancelUntilAnswered(pg, b)]);
      assert.deepEqual([ca.error?.code, cb.error?.code], ["57014", "57014"]);
      assert.deepEqual((await selectOne).rows, [["1"]]);

      // An HTTP client that goes away during a runaway write: it stops and rolls back.
      assert.equal((await post(ha.url, { sql: "CREATE TABLE big(x)" })).status, 200);
      const file = `${ha.cwd}/app.db`;
      const gone = new AbortController();
      const request = fetch(`${ha.url}/query`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ sql: `INSERT INTO big ${RUNAWAY_ROWS}` }),
        signal: gone.signal,
      }).catch(() => null);
      await waitFor("the runaway write to hold the write lock", () => writeLocked(file), 60_000);
      gone.abort();
      await request;
      await waitFor("the write lock to be released", () => !writeLocked(file), 60_000);
      await waitFor(
        "the stop to be logged",
        () => /"statement stopped".*"reason":"cancel"/.test(ha.output()),
      );
      const count = await post(ha.url, { sql: "SELECT count(*) FROM big" });
      assert.deepEqual(count.body.rows, [[0]]);
      assert.equal((await post(ha.url, { sql: "INSERT INTO big VALUES (1)" })).status, 200);
    } finally {
      for (const c of clients) c.close();
      await ha.stop();
    }
  },
);

Deno.test("SIGTERM during runaway statements stops the node", opts, async () => {
  const { ha, pg } = await start("sec-sigterm", [
    "--nats-port",
    "0",
    "--statement-timeout",
    "0",
    "app.db",
  ]);
  const c = await RawClient.connect(pg);
  try {
    assert.equal((await post(ha.url, { sql: "CREATE TABLE big(x)" })).status, 200);
    await sendQuery(c, RUNAWAY);
    const write = post(ha.url, { sql: `INSERT INTO big ${RUNAWAY_ROWS}` }).catch(() => null);
    await waitFor("the runaway write to run", () => writeLocked(`${ha.cwd}/app.db`), 60_000);
    // Without stopping the statements the stop would wait for them: SIGKILL after a minute.
    assert.equal(await ha.stop(60_000), 0, ha.output());
    await write;
    assert.match(ha.output(), /"node stopped"/);
  } finally {
    c.close();
    await ha.kill();
  }
});
