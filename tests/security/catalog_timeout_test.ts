/**
 * Issue 11/16: a PostgreSQL catalog query runs in a private SQLite database on the node's main
 * thread, so a runaway one (a recursive CTE or a cross join over pg_class) would freeze HTTP, PG
 * and replication. It must stop at the node's `--statement-timeout` or the session's
 * `SET statement_timeout` with SQLSTATE 57014, and SQL must not load an extension through it.
 * The runaway queries below never end on their own: without the fix the test hangs.
 */
import assert from "node:assert/strict";
import nodePg from "pg";
import { findInterruptExtension } from "../../src/engine/mod.ts";
import { freePort, post, startHa } from "../integration/helpers/ha.ts";
import { dataRow, errorFields, msg, RawClient } from "../integration/pgwire_helpers.ts";
import { waitFor } from "./helpers.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };
/** Infinite once pg_class has a row, and a catalog query (it names pg_class). */
const RUNAWAY = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) " +
  "SELECT count(*) FROM c, pg_class";
/** A cross join of catalog tables: 10 tables of 4 columns give at least 20^3 * 40^3 = 5e8 rows. */
const CROSS_JOIN = "SELECT count(*) FROM pg_class a, pg_class b, pg_class c, " +
  "pg_attribute d, pg_attribute e, pg_attribute f";

async function query(
  c: RawClient,
  sql: string,
): Promise<{ rows: (string | null)[][]; error: { code: string; message: string } | null }> {
  await c.send(msg("Q", sql));
  const a = {
    rows: [] as (string | null)[][],
    error: null as { code: string; message: string } | null,
  };
  for (const m of await c.until("Z")) {
    if (m.type === "D") a.rows.push(dataRow(m));
    if (m.type === "E") a.error = { code: errorFields(m).C, message: errorFields(m).M };
  }
  return a;
}

Deno.test(
  "a runaway catalog query stops at the statement timeout (57014); the node keeps answering",
  opts,
  async () => {
    const pg = freePort();
    const ha = await startHa({
      args: ["-n", "sec-catalog", "--nats-port", "0", "--statement-timeout", "500ms"]
        .concat(["--pg-port", String(pg), "-m"]),
    });
    const clients: RawClient[] = [];
    const connect = async () => {
      const c = await RawClient.connect(pg);
      clients.push(c);
      return c;
    };
    try {
      // PG listens just after HTTP answers /healthz.
      await waitFor("the PG port", async () => {
        (await Deno.connect({ hostname: "127.0.0.1", port: pg })).close();
        return true;
      });
      const a = await connect();
      const tables = Array.from(
        { length: 10 },
        (_, i) => `CREATE TABLE t${i} (id INTEGER PRIMARY KEY, a TEXT, b TEXT, c TEXT);`,
      );
      assert.equal((await query(a, tables.join(" "))).error, null);
      // Routed to the catalog: pg_class lists the tables.
      const listed = await query(a, "SELECT count(*) FROM pg_class WHERE relname LIKE 't_'");
      assert.deepEqual(listed, { rows: [["10"]], error: null });

      for (const sql of [RUNAWAY, CROSS_JOIN]) {
        const r = await query(a, sql);
        assert.equal(r.error?.code, "57014", JSON.stringify(r));
        assert.match(r.error!.message, /canceling statement due to statement timeout \(500 ms/);
      }
      // The session's lower timeout applies; a higher one cannot lift the node's.
      assert.equal((await query(a, "SET statement_timeout = 300")).error, null);
      const lower = await query(a, RUNAWAY);
      assert.equal(lower.error?.code, "57014");
      assert.match(lower.error!.message, /\(300 ms/);
      assert.equal((await query(a, "SET statement_timeout = '1h'")).error, null);
      assert.match((await query(a, RUNAWAY)).error!.message, /\(500 ms/);

      // The extended protocol (node-postgres with a parameter) takes the same path.
      const driver = new nodePg.Client({ host: "127.0.0.1", port: pg, user: "ha", password: "ha" });
      await driver.connect();
      try {
        await assert.rejects(
          driver.query(`${RUNAWAY} WHERE x > $1`, [0]),
          (e: { code?: string }) => e.code === "57014",
        );
        assert.equal(String((await driver.query("SELECT 1 AS one")).rows[0].one), "1");
      } finally {
        await driver.end();
      }

      // SQL cannot load an extension through the catalog database (it has ha_interrupt loaded).
      const ext = await findInterruptExtension();
      const load = await query(a, `SELECT load_extension('${ext}') FROM pg_class`);
      assert.equal(load.error?.code, "0A000", JSON.stringify(load));
      assert.match(load.error!.message, /not authorized/);

      // The node still answers: the same session, another one, and HTTP.
      assert.deepEqual(await query(a, "SELECT 1"), { rows: [["1"]], error: null });
      const b = await connect();
      assert.deepEqual(await query(b, "SELECT 1"), { rows: [["1"]], error: null });
      assert.equal(
        await fetch(`${ha.url}/healthz`).then(async (r) => {
          await r.body?.cancel();
          return r.status;
        }),
        200,
      );
      assert.equal((await post(ha.url, { sql: "SELECT 1" })).status, 200);
    } finally {
      for (const c of clients) c.close();
      await ha.stop();
    }
  },
);
