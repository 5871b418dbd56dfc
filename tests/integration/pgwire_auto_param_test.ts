/**
 * Auto-parameterized simple queries answer exactly as with their literals inline: the same
 * RowDescription (names, types) and rows. The oracle is the same query with the column in
 * parentheses, `(i) = 5`: SQLite's parser drops the parentheses (same expression, same affinity)
 * while the auto-parameterization leaves that text alone.
 */
import assert from "node:assert/strict";
import { cachedPlan, clearPlans } from "../../src/pgwire/query_shape.ts";
import { dataRow, fe, type Msg, RawClient, startPg } from "./pgwire_helpers.ts";

const opts = { sanitizeResources: false, sanitizeOps: false };

async function simple(c: RawClient, sql: string): Promise<Msg[]> {
  await c.send(fe.query(sql));
  return await c.until();
}

function oracle(sql: string): string {
  return sql.replace(/\b([a-z]) (=|==|<>|!=|<=|>=|<|>) /g, "($1) $2 ");
}

Deno.test(
  "pg simple protocol: auto-parameterized selects answer as with literals",
  opts,
  async () => {
    const pg = await startPg();
    const c = await RawClient.connect(pg.port);
    try {
      for (
        const sql of [
          "CREATE TABLE v(i INTEGER, t TEXT, r REAL, b BLOB, n NUMERIC, x)",
          "INSERT INTO v VALUES (5, '5', 5.0, x'05', 5, 5), (7, 'it''s', 7.5, x'07', '7', '7')," +
          " (-3, '-3', -3, NULL, -3, -3), (9223372036854775807, 'big', 1e300, x'', 1, 'x')",
          "CREATE INDEX v_partial ON v(t) WHERE i = 5",
        ]
      ) {
        assert.equal((await simple(c, sql)).some((m) => m.type === "E"), false, sql);
      }
      const cases: [string, (string | null)[][]][] = [
        ["SELECT i, t FROM v WHERE i = 5", [["5", "5"]]],
        ["SELECT * FROM v WHERE i = 5", [["5", "5", "5", "\\x05", "5", "5"]]],
        ["SELECT i FROM v WHERE t = 5", [["5"]]], // integer vs TEXT affinity: '5'
        ["SELECT i FROM v WHERE i = '5'", [["5"]]], // text vs INTEGER affinity: 5
        ["SELECT i FROM v WHERE x = '5'", []], // no affinity: integer 5 is not text '5'
        ["SELECT i FROM v WHERE x = 7", []], // nor text '7' integer 7
        ["SELECT i FROM v WHERE x = '7'", [["7"]]],
        ["SELECT i FROM v WHERE b = '5'", []],
        ["SELECT i FROM v WHERE r = 5", [["5"]]],
        ["SELECT i FROM v WHERE r > -4 AND r < 7", [["5"], ["-3"]]],
        ["SELECT i FROM v WHERE n = '7'", [["7"]]],
        ["SELECT i FROM v WHERE t = 'it''s'", [["7"]]],
        ["SELECT i FROM v WHERE i = -3 and t <> 'x' or i >= 9223372036854775807", [["-3"], [
          "9223372036854775807",
        ]]],
        ["SELECT t FROM v WHERE i = 5 AND t = '5'", [["5"]]], // the partial index's own term
        ['SELECT i AS k, t AS "T" FROM v WHERE i != 5 AND i == 7', [["7", "it's"]]],
        ["SELECT nope FROM v WHERE i = 5", []], // an error, alike
      ];
      for (const [sql, rows] of cases) {
        const got = await simple(c, sql);
        const want = await simple(c, oracle(sql));
        assert.notEqual(oracle(sql), sql);
        assert.deepEqual(got, want, sql);
        if (!got.some((m) => m.type === "E")) {
          assert.deepEqual(got.filter((m) => m.type === "D").map(dataRow), rows, sql);
        } else assert.equal(sql, "SELECT nope FROM v WHERE i = 5");
      }
    } finally {
      c.close();
      await pg.stop();
    }
  },
);

Deno.test(
  "pg simple protocol: texts of a shape seen before answer as the full path, in any transaction state",
  opts,
  async () => {
    clearPlans();
    const pg = await startPg({ inProcess: true });
    // The texts on one connection, their oracles (never cached) on another.
    const c = await RawClient.connect(pg.port);
    const o = await RawClient.connect(pg.port);
    try {
      for (
        const sql of [
          "CREATE TABLE w(i INTEGER, t TEXT)",
          "INSERT INTO w VALUES (1, 'a'), (2, 'it''s'), (3, 'c'), (9223372036854775807, 'big')",
        ]
      ) {
        assert.equal((await simple(c, sql)).some((m) => m.type === "E"), false, sql);
      }
      // [text, whether the shape cache answers it]
      const texts: [string, boolean][] = [
        ["SELECT t FROM w WHERE i = 1;", false],
        ["SELECT t FROM w WHERE i = 2;", true],
        ["SELECT t FROM w WHERE i = 9223372036854775807;", true],
        ["SELECT t FROM w WHERE i = 9223372036854775808;", false], // past 64 bits
        ["SELECT t FROM w WHERE i = 00003;", true],
        ["SELECT i FROM w WHERE t = 'it''s' OR i = -1", false],
        ["SELECT i FROM w WHERE t = 'c' OR i = -2", true],
        ["SELECT i FROM w WHERE t = '' OR i = -3", true],
        ["/* 1 */ SELECT i FROM w WHERE i > 1 -- 2\n;", false],
        ["/* 1 */ SELECT i FROM w WHERE i > 2 -- 2\n;", true],
        ["SELECT i FROM w WHERE i = 1 LIMIT 1", false], // LIMIT's literal stays: never learnt
        ["SELECT i FROM w WHERE i = 2 LIMIT 1", false],
        ["SELECT nope FROM w WHERE i = 1", false], // an error, learnt all the same
        ["SELECT nope FROM w WHERE i = 2", true],
        ["BEGIN", false],
        ["SELECT t FROM w WHERE i = 3;", true],
        ["SELECT nope FROM w WHERE i = 3", true], // fails the transaction
        ["SELECT t FROM w WHERE i = 1;", true], // refused: the transaction is aborted
        ["ROLLBACK", false],
        ["SELECT t FROM w WHERE i = 2;", true],
      ];
      const got: Msg[][] = [];
      for (const [sql, hit] of texts) {
        assert.equal(cachedPlan(sql) !== null, hit, sql);
        got.push(await simple(c, sql));
      }
      // A transaction takes the writer: the oracles run after the texts' transaction ended.
      for (const [k, [sql]] of texts.entries()) {
        const want = await simple(o, /^[A-Z]+$/.test(sql) ? sql : oracle(sql));
        assert.deepEqual(got[k], want, sql);
      }
      assert.ok((await simple(c, "SELECT 1")).some((m) => m.type === "D"));
    } finally {
      c.close();
      o.close();
      await pg.stop();
    }
  },
);
