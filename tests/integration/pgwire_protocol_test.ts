/** Protocol v3 at the byte level: start-up negotiation, extended query details, cancel, limits. */
import assert from "node:assert/strict";
import {
  dataRow,
  errorFields,
  fe,
  i32,
  msg,
  type PgTarget,
  RawClient,
  startPg,
} from "./pgwire_helpers.ts";

const opts = { sanitizeResources: false, sanitizeOps: false };
const types = (ms: { type: string }[]) => ms.map((m) => m.type).join("");

async function simple(c: RawClient, sql: string) {
  await c.send(fe.query(sql));
  return await c.until();
}

function rfqStatus(ms: { type: string; body: Uint8Array }[]): string {
  const z = ms[ms.length - 1];
  assert.equal(z.type, "Z");
  return String.fromCharCode(z.body[0]);
}

Deno.test("pg protocol: start-up negotiation", opts, async (t) => {
  const pg: PgTarget = await startPg();
  try {
    await t.step(
      "SSLRequest without a certificate and GSSENCRequest are declined with 'N'",
      async () => {
        const c = await RawClient.open(pg.port);
        await c.send(msg("", i32(80877103)));
        assert.equal(new TextDecoder().decode(await c.readBytes(1)), "N");
        await c.send(msg("", i32(80877104)));
        assert.equal(new TextDecoder().decode(await c.readBytes(1)), "N");
        // the same connection proceeds in plain text
        c.close();
        const ok = await RawClient.connect(pg.port);
        const r = await simple(ok, "SELECT 1");
        assert.deepEqual(dataRow(r.find((m) => m.type === "D")!), ["1"]);
        ok.close();
      },
    );

    await t.step("wrong protocol version → FATAL 0A000, then close", async () => {
      const c = await RawClient.open(pg.port);
      await c.send(msg("", i32(2 << 16), "user", "ha", ""));
      const m = await c.read();
      assert.equal(m.type, "E");
      assert.equal(errorFields(m).C, "0A000");
      assert.equal(errorFields(m).S, "FATAL");
      assert.equal((await c.read()).type, ""); // closed
      c.close();
    });

    await t.step("protocol 3.2 and _pq_ options → NegotiateProtocolVersion", async () => {
      const c = await RawClient.open(pg.port);
      await c.send(msg("", i32((3 << 16) | 2), "user", "ha", "_pq_.x", "1", ""));
      const m = await c.read();
      assert.equal(m.type, "v");
      c.close();
    });

    await t.step("garbage and absurd lengths → error, close", async () => {
      const c = await RawClient.open(pg.port);
      await c.send(new TextEncoder().encode("GET / HTTP/1.1\r\nHost: x\r\n\r\n"));
      const m = await c.read();
      assert.equal(m.type, "E");
      assert.equal(errorFields(m).C, "08P01");
      c.close();
    });

    await t.step("missing user, wrong password, unknown database", async () => {
      const c = await RawClient.open(pg.port);
      await c.send(msg("", i32(196608), "database", "x", ""));
      assert.equal(errorFields(await c.read()).C, "28000");
      c.close();
      await assert.rejects(
        RawClient.connect(pg.port, {}, "wrong"),
        /password authentication failed/,
      );
      await assert.rejects(RawClient.connect(pg.port, { user: "bob" }), /failed for user "bob"/);
      await assert.rejects(RawClient.connect(pg.port, { database: "zzz" }), /"zzz" does not exist/);
    });

    await t.step("start-up parameters are reported", async () => {
      const c = await RawClient.open(pg.port);
      await c.send(msg("", i32(196608), "user", "ha", "application_name", "raw", ""));
      c.close();
      const d = await RawClient.connect(pg.port, { application_name: "rawtest" });
      const r = await simple(d, "SHOW application_name");
      assert.deepEqual(dataRow(r.find((m) => m.type === "D")!), ["rawtest"]);
      d.close();
    });
  } finally {
    await pg.stop();
  }
});

Deno.test("pg protocol: extended query", opts, async (t) => {
  const pg = await startPg();
  const c = await RawClient.connect(pg.port);
  try {
    await simple(c, "CREATE TABLE n(x INTEGER PRIMARY KEY, s TEXT)");

    await t.step("statements run at Execute, never at Parse", async () => {
      await c.send(fe.parse("ins", "INSERT INTO n VALUES ($1, $2)"), fe.sync());
      assert.equal(types(await c.until()), "1Z");
      let r = await simple(c, "SELECT count(*) FROM n");
      assert.deepEqual(dataRow(r.find((m) => m.type === "D")!), ["0"]);
      await c.send(
        fe.bind("", "ins", ["1", "one"]),
        fe.execute(""),
        fe.bind("", "ins", ["2", "two"]),
        fe.execute(""),
        fe.sync(),
      );
      r = await c.until();
      assert.equal(types(r), "2C2CZ");
      assert.equal(new TextDecoder().decode(r[1].body), "INSERT 0 1\0");
    });

    await t.step("Describe statement: parameters and columns", async () => {
      await c.send(
        fe.parse("q", "SELECT x, s, x * 2 AS d FROM n WHERE x >= $1 AND s <> $2", [20]),
        fe.describe("S", "q"),
        fe.sync(),
      );
      const r = await c.until();
      assert.equal(types(r), "1tTZ");
      const t = new DataView(r[1].body.buffer, r[1].body.byteOffset);
      assert.equal(t.getInt16(0), 2);
      assert.equal(t.getInt32(2), 20); // the client's OID
      assert.equal(t.getInt32(6), 25); // unknown → text
    });

    await t.step("row limit → PortalSuspended, then resume", async () => {
      for (let i = 3; i <= 7; i++) await simple(c, `INSERT INTO n VALUES (${i}, 'v${i}')`);
      await c.send(
        fe.parse("", "SELECT x FROM n ORDER BY x"),
        fe.bind("cur", ""),
        fe.describe("P", "cur"),
        fe.execute("cur", 3),
        fe.flush(),
      );
      let r = await c.until("s");
      assert.equal(types(r), "12TDDDs");
      await c.send(fe.execute("cur", 3), fe.flush());
      r = await c.until("s");
      assert.equal(types(r), "DDDs");
      await c.send(fe.execute("cur", 3), fe.sync());
      r = await c.until();
      assert.equal(types(r), "DCZ");
      assert.deepEqual(dataRow(r[0]), ["7"]);
      assert.equal(new TextDecoder().decode(r[1].body), "SELECT 1\0");
    });

    await t.step("an error skips to Sync; the connection stays usable", async () => {
      await c.send(
        fe.parse("", "SELECT * FROM nope"),
        fe.bind("", ""),
        fe.execute(""),
        fe.parse("", "INSERT INTO n VALUES (100, 'skipped')"),
        fe.bind("", ""),
        fe.execute(""),
        fe.sync(),
      );
      const r = await c.until();
      // (PostgreSQL reports this at Parse; ha at Execute: Parse never touches the engine)
      assert.equal(types(r), "12EZ");
      assert.equal(errorFields(r[2]).C, "42P01");
      const after = await simple(c, "SELECT count(*) FROM n WHERE x = 100");
      assert.deepEqual(dataRow(after.find((m) => m.type === "D")!), ["0"]);
    });

    await t.step("binary parameters and results", async () => {
      const big = new Uint8Array(8);
      new DataView(big.buffer).setBigInt64(0, 2n ** 53n + 1n);
      await c.send(
        fe.parse("", "SELECT $1 + 1 AS v", [20]),
        fe.bind("", "", [big], [1], [1]),
        fe.describe("P", ""),
        fe.execute(""),
        fe.sync(),
      );
      const r = await c.until();
      assert.equal(types(r), "12TDCZ");
      const d = r[3].body;
      const v = new DataView(d.buffer, d.byteOffset).getBigInt64(6);
      assert.equal(v, 2n ** 53n + 2n);
    });

    await t.step("named statement errors, Close, multi-statement Parse", async () => {
      await c.send(fe.parse("dup", "SELECT 1"), fe.parse("dup", "SELECT 2"), fe.sync());
      let r = await c.until();
      assert.equal(errorFields(r[1]).C, "42P05");
      await c.send(fe.close("S", "dup"), fe.bind("", "dup"), fe.sync());
      r = await c.until();
      assert.equal(types(r), "3EZ");
      assert.equal(errorFields(r[1]).C, "26000");
      await c.send(fe.execute("nope"), fe.sync());
      assert.equal(errorFields((await c.until())[0]).C, "34000");
      await c.send(fe.parse("", "SELECT 1; SELECT 2"), fe.sync());
      assert.equal(errorFields((await c.until())[0]).C, "42601");
      await c.send(fe.parse("", "  -- nothing  "), fe.bind("", ""), fe.execute(""), fe.sync());
      assert.equal(types(await c.until()), "12IZ");
    });

    await t.step("transaction status I, T, E", async () => {
      assert.equal(rfqStatus(await simple(c, "BEGIN")), "T");
      assert.equal(rfqStatus(await simple(c, "INSERT INTO n VALUES (50, 'tx')")), "T");
      const e = await simple(c, "INSERT INTO n VALUES (50, 'dup')");
      assert.equal(errorFields(e[0]).C, "23505");
      assert.equal(rfqStatus(e), "E");
      const aborted = await simple(c, "SELECT 1");
      assert.equal(errorFields(aborted[0]).C, "25P02");
      assert.equal(rfqStatus(aborted), "E");
      const rb = await simple(c, "ROLLBACK");
      assert.equal(new TextDecoder().decode(rb[0].body), "ROLLBACK\0");
      assert.equal(rfqStatus(rb), "I");
      const warn = await simple(c, "COMMIT");
      assert.equal(types(warn), "NCZ"); // WARNING: there is no transaction in progress
    });

    await t.step("empty query and unknown message type", async () => {
      assert.equal(types(await simple(c, ";")), "IZ");
      const d = await RawClient.connect(pg.port);
      await d.send(msg("!", "x"));
      const m = await d.read();
      assert.equal(m.type, "E");
      assert.equal(errorFields(m).C, "08P01");
      assert.equal((await d.read()).type, "");
      d.close();
    });

    await t.step("CancelRequest on a new connection cancels the running query", async () => {
      const v = await RawClient.connect(pg.port);
      const keys = v.keys;
      await v.send(
        fe.query(
          "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 30000000) SELECT count(*) FROM c",
        ),
      );
      // repeat: a cancel that arrives before the query starts is (rightly) ignored
      const answer = v.until();
      let done = false;
      answer.finally(() => done = true);
      for (let i = 0; i < 30 && !done; i++) {
        await new Promise((r) => setTimeout(r, 200));
        const k = await RawClient.open(pg.port);
        await k.send(msg("", i32(80877102), i32(keys.pid), i32(keys.secret)));
        k.close();
      }
      const r = await answer;
      assert.equal(errorFields(r[0]).C, "57014");
      assert.equal(rfqStatus(r), "I");
      const ok = await simple(v, "SELECT 'after cancel'");
      assert.deepEqual(dataRow(ok.find((m) => m.type === "D")!), ["after cancel"]);
      v.close();
    });

    await t.step("100 concurrent connections", async () => {
      const clients = await Promise.all(
        Array.from({ length: 100 }, () => RawClient.connect(pg.port)),
      );
      const rows = await Promise.all(clients.map(async (cl, i) => {
        const r = await simple(cl, `SELECT ${i} AS i`);
        cl.close();
        return dataRow(r.find((m) => m.type === "D")!)[0];
      }));
      assert.deepEqual(rows, Array.from({ length: 100 }, (_, i) => String(i)));
    });
  } finally {
    c.close();
    await pg.stop();
  }
});
