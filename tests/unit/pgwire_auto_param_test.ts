import assert from "node:assert/strict";
import { autoParameterize } from "../../src/pgwire/auto_param.ts";

Deno.test("auto-parameterization: pgbench's point select binds the key as an integer", () => {
  assert.deepEqual(autoParameterize("SELECT abalance FROM accounts WHERE aid = 4711"), {
    sql: "SELECT abalance FROM accounts WHERE aid = ?",
    params: [4711n],
    indices: [7],
  });
});

Deno.test("auto-parameterization: value types, signs, operators, AND/OR", () => {
  const ap = autoParameterize(
    "select a, t.b, * from main.t where a = -5 and b <> 'it''s' OR c >= +7 AND d != '5' " +
      "and e==0 and f<=9223372036854775807 and g<1 and h>2",
  );
  assert.deepEqual(ap, {
    sql: "select a, t.b, * from main.t where a = -? and b <> ? OR c >= +? AND d != ? " +
      "and e==? and f<=? and g<? and h>?",
    params: [5n, "it's", 7n, "5", 0n, 9223372036854775807n, 1n, 2n],
    indices: [16, 21, 27, 32, 37, 42, 46, 50],
  });
  // A string stays text, an integer stays an integer: '5' is not 5.
  assert.equal(typeof autoParameterize("SELECT a FROM t WHERE b = '5'")!.params[0], "string");
  assert.equal(typeof autoParameterize("SELECT a FROM t WHERE b = 5")!.params[0], "bigint");
  assert.ok(autoParameterize('SELECT a FROM "My ""T""" WHERE b = 1'));
  assert.ok(autoParameterize('SELECT a FROM [x y] WHERE "b" = 1'));
});

Deno.test("auto-parameterization: everything outside the one shape keeps its literals", () => {
  for (
    const sql of [
      "SELECT 1 FROM t WHERE a = 1", // select list: result names come from the text
      "SELECT a, 'x' FROM t WHERE a = 1",
      "SELECT count(*) FROM t WHERE a = 1",
      "SELECT a FROM t WHERE a = 1 ORDER BY 1",
      "SELECT a FROM t WHERE a = 1 GROUP BY a",
      "SELECT a FROM t WHERE a = 1 LIMIT 1",
      "SELECT a FROM t WHERE a LIKE 'x%'",
      "SELECT a FROM t WHERE a GLOB 'x*'",
      "SELECT a FROM t WHERE a = 'x' COLLATE nocase",
      "SELECT a FROM t WHERE a = 1.5", // reals: text-to-double conversions may differ
      "SELECT a FROM t WHERE a = 5.0",
      "SELECT a FROM t WHERE a = 1e3",
      "SELECT a FROM t WHERE a = 0x10",
      "SELECT a FROM t WHERE a = 9223372036854775808", // SQLite reads it as a real
      "SELECT a FROM t WHERE a = x'00'",
      "SELECT a FROM t WHERE a = E'x'",
      "SELECT a FROM t WHERE a = NULL",
      "SELECT a FROM t WHERE a IS 1",
      "SELECT a FROM t WHERE a = b",
      "SELECT a FROM t WHERE a = 1 + 1",
      "SELECT a FROM t WHERE (a) = 1",
      "SELECT a FROM t WHERE a = ?",
      "SELECT a FROM t WHERE a = $1",
      "SELECT a FROM t WHERE 1 = a",
      "SELECT a FROM t WHERE a IN (1, 2)",
      "SELECT a FROM t WHERE a BETWEEN 1 AND 2",
      "SELECT a FROM t WHERE NOT a = 1",
      "SELECT a FROM t x WHERE a = 1",
      "SELECT a FROM t, u WHERE a = 1",
      "SELECT a FROM t JOIN u ON u.a = t.a WHERE t.a = 1",
      "SELECT a FROM t INDEXED BY i WHERE a = 1",
      "SELECT a FROM generate_series(1, 3) WHERE a = 1",
      "SELECT a FROM t WHERE a = (SELECT 1)",
      "SELECT a FROM t WHERE a = 1 UNION SELECT a FROM u WHERE a = 2",
      "SELECT a FROM t WHERE a = 'unterminated",
      "SELECT a FROM t WHERE a = 'nul\0'",
      "SELECT a FROM t WHERE a < = 1",
      "SELECT a FROM t WHERE a ! = 1",
      "SELECT a FROM t",
      "SELECT a FROM t WHERE",
      "DELETE FROM t WHERE a = 1",
      "UPDATE t SET b = 2 WHERE a = 1",
      "PRAGMA table_info('t')",
      "EXPLAIN SELECT a FROM t WHERE a = 1",
      "WITH x AS (SELECT 1) SELECT a FROM t WHERE a = 1",
    ]
  ) {
    assert.equal(autoParameterize(sql), null, sql);
  }
});
