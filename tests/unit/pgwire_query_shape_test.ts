import assert from "node:assert/strict";
import { splitStatements } from "../../src/engine/mod.ts";
import { type Classified, classify } from "../../src/pgwire/catalog.ts";
import { cachedPlan, clearPlans, learnPlan, scanShape } from "../../src/pgwire/query_shape.ts";
import { statementOf } from "../../src/pgwire/simple_query.ts";
import { isBlank } from "../../src/pgwire/sql.ts";

/** What simpleQuery's full path makes of a text: its statements, or the lone one's plan. */
function full(sql: string, learn: boolean): unknown {
  const parts = splitStatements(sql).filter((s) => !isBlank(s));
  if (parts.length !== 1) return { parts };
  let c: Classified;
  try {
    c = classify(parts[0]);
  } catch (e) {
    return { error: String(e) };
  }
  const [stmt, params] = statementOf(sql, parts, c, learn);
  return { stmt: stmt.kind === "local" ? "local" : stmt, params };
}

/** The cached plan of a text, in the full path's form; null on a miss. */
function cached(sql: string): unknown {
  const p = cachedPlan(sql);
  return p && { stmt: p.stmt, params: p.params };
}

const INTS = ["0", "1", "7", "42", "00012", "4711", "9223372036854775807", "9223372036854775808"];
const STRS = [
  "''",
  "'x'",
  "'it''s'",
  "'5'",
  "'a;b'",
  "'--'",
  "'/*'",
  "'\"1\"'",
  "'$$'",
  "'ü\n'",
  "'a\0'",
];

/** `sql` with its k-th slot (by scanShape) replaced by `values[k]`. */
function fill(sql: string, values: string[]): string {
  const s = scanShape(sql)!;
  let out = "";
  let at = 0;
  for (let k = 0; k < s.kinds.length; k++) {
    out += sql.slice(at, s.bounds[2 * k]) + values[k];
    at = s.bounds[2 * k + 1];
  }
  return out + sql.slice(at);
}

/** Learns `sql`, then checks every variant of its slots against the full path; returns hits. */
function checkShape(sql: string, rnd: () => number, variants = 12): number {
  clearPlans();
  full(sql, true);
  const s = scanShape(sql);
  if (!s) return 0;
  let hits = 0;
  for (let v = 0; v < variants; v++) {
    const values = [...s.kinds].map((k) => {
      const pool = k === "n" ? INTS : STRS;
      return pool[Math.floor(rnd() * pool.length)];
    });
    const text = fill(sql, values);
    const got = cached(text);
    if (got === null) continue;
    hits++;
    assert.deepEqual(got, full(text, false), `${JSON.stringify(sql)} as ${JSON.stringify(text)}`);
  }
  return hits;
}

function prng(seed: number): () => number {
  let x = seed >>> 0;
  return () => {
    x = (x * 1664525 + 1013904223) >>> 0;
    return x / 2 ** 32;
  };
}

Deno.test("query shape: pgbench's point select hits with each new key and binds it", () => {
  clearPlans();
  full("SELECT abalance FROM accounts WHERE aid = 4711;", true);
  const p = cachedPlan("SELECT abalance FROM accounts WHERE aid = 815;");
  assert.deepEqual(p, {
    stmt: { kind: "sql", sql: "SELECT abalance FROM accounts WHERE aid = ?", shape: "query" },
    params: [815n],
  });
  // Another shape (no `;`, other spacing) is not this one.
  assert.equal(cachedPlan("SELECT abalance FROM accounts WHERE aid = 815"), null);
  assert.equal(cachedPlan("SELECT abalance FROM accounts WHERE aid  = 815;"), null);
});

Deno.test("query shape: per-value checks fall back to the full path", () => {
  clearPlans();
  full("SELECT a FROM t WHERE b = 1 AND c = 'x'", true);
  assert.ok(cachedPlan("SELECT a FROM t WHERE b = 9223372036854775807 AND c = 'y'"));
  // Past 64 bits the full path keeps the literal: no plan.
  assert.equal(cachedPlan("SELECT a FROM t WHERE b = 9223372036854775808 AND c = 'y'"), null);
  // NUL is the key's marker and the engine refuses it: never looked up.
  assert.equal(cachedPlan("SELECT a FROM t WHERE b = 1 AND c = 'x\0'"), null);
  assert.deepEqual(cachedPlan("SELECT a FROM t WHERE b = 1 AND c = 'it''s'")?.params, [1n, "it's"]);
});

Deno.test("query shape: shapes the full path binds hit; others never get a plan", () => {
  const rnd = prng(13);
  const hitting = [
    "SELECT abalance FROM accounts WHERE aid = 1;",
    "  select a, t.b, * from main.t where a = -5 and b <> 'it''s' OR c >= +7 AND d != '5'  ",
    "SELECT a FROM t WHERE b = 1 -- a comment with 5 and 'x'\n",
    "/* 12 'x' */ SELECT a FROM t WHERE b = 1",
    "SELECT a FROM t WHERE b = 1; ;",
    ";SELECT a FROM t WHERE b = 1",
    'SELECT "a1" FROM "t2" WHERE "c3" = 3',
    "SELECT a FROM [t 1] WHERE `b2` = '2'",
    "SELECT a FROM t WHERE b==1 and c<=2 and d<>3 and e!=4",
    "SELECT a FROM t WHERE b = 1 -- trailing comment",
  ];
  for (const sql of hitting) assert.ok(checkShape(sql, rnd) > 0, sql);
  const missing = [
    "SELECT a FROM t WHERE b = 1 LIMIT 2", // LIMIT's literal stays
    "SELECT 1 FROM t WHERE a = 1",
    "SELECT a FROM t WHERE b = E'x'",
    "SELECT a FROM t WHERE b = x'01'",
    "SELECT a FROM t WHERE b = 1.5",
    "SELECT a FROM t WHERE b = 1e+5",
    "SELECT a FROM t WHERE b = $$1$$",
    "SELECT a FROM t WHERE b = $1 AND c = 2",
    "SELECT a FROM t WHERE b = ?5 AND c = 2",
    "SELECT a FROM t WHERE b = 1; SELECT a FROM t WHERE b = 2",
    "SELECT a FROM t WHERE b = 1; COMMIT",
    "BEGIN; SELECT a FROM t WHERE b = 1",
    "SELECT a FROM t WHERE b = '1",
    "SELECT a FROM t WHERE b = 1 /* open",
    "SELECT a FROM t WHERE b = 'x\0'",
    "SELECT current_setting('x')",
    "SELECT set_config('a', '1', false)",
    "SET statement_timeout = 5",
    "SHOW statement_timeout",
    "INSERT INTO t VALUES (1, 'x')",
    "INSERT INTO t VALUES (DEFAULT, 1)",
    "UPDATE t SET a = 1 WHERE b = 2",
    "DELETE FROM t WHERE b = 2",
    "SELECT relname FROM pg_class WHERE oid = 5",
    "SELECT a FROM t WHERE b IN (1, 2)",
    "SELECT a FROM t WHERE b = 1 + 2",
    "WITH x AS (SELECT 1) SELECT a FROM t WHERE b = 1",
  ];
  for (const sql of missing) assert.equal(checkShape(sql, rnd), 0, sql);
});

Deno.test("query shape: random texts, every hit is what the full path makes", () => {
  const rnd = prng(7);
  const pick = <T>(xs: T[]) => xs[Math.floor(rnd() * xs.length)];
  const noise = [
    "",
    " ",
    "  ",
    "\n",
    "-- 1 'x'\n",
    "/* 2 'y' */",
    "/*3*/",
    ";",
    "'4'",
    "5",
    "E'6'",
    '"7"',
    "$$8$$",
    "-",
    "+",
    "LIMIT 9",
    "\t",
    "'\0'",
    "x'0a'",
    "1.5",
    ".5",
    "a1",
    "(",
    ")",
  ];
  const names = ["a", "b1", '"c 2"', "[d3]", "`e4`", "t.f", "g_5"];
  const ops = ["=", "==", "<", ">", "<=", ">=", "<>", "!=", "= -", "= +", "LIKE", "IS"];
  let hits = 0;
  for (let n = 0; n < 1500; n++) {
    const parts: string[] = ["SELECT", pick(names), "FROM", pick(["t", "main.t", '"T1"'])];
    parts.push("WHERE");
    const conds = 1 + Math.floor(rnd() * 3);
    for (let k = 0; k < conds; k++) {
      if (k > 0) parts.push(pick(["AND", "OR", "and"]));
      parts.push(pick(names), pick(ops), pick([...INTS, ...STRS]));
    }
    if (rnd() < 0.3) parts.push(";");
    // Noise between random tokens: comments, literals, quotes, semicolons, glued or spaced.
    const noisy = rnd() < 0.6;
    let sql = "";
    for (const p of parts) {
      sql += p + (rnd() < 0.8 ? " " : "");
      if (noisy && rnd() < 0.15) sql += pick(noise) + " ";
    }
    hits += checkShape(sql, rnd, 4);
  }
  assert.ok(hits > 500, `only ${hits} hits`);
});

Deno.test("query shape: a plan is learnt only when the bound literals are the slots", () => {
  const sql = "SELECT a FROM t WHERE b = 1 AND c = 2";
  const stmt = {
    kind: "sql" as const,
    sql: "SELECT a FROM t WHERE b = ? AND c = ?",
    shape: "query" as const,
  };
  const learns = (params: bigint[], indices: number[]) => {
    clearPlans();
    learnPlan(sql, sql, stmt, { sql: stmt.sql, params, indices });
    return cachedPlan("SELECT a FROM t WHERE b = 3 AND c = 4") !== null;
  };
  assert.equal(learns([1n, 2n], [7, 11]), true);
  assert.equal(learns([1n], [7]), false); // a slot not bound (as LIMIT's would be)
  assert.equal(learns([1n, 2n], [7, 10]), false); // another token than the slot
  assert.equal(learns([2n, 1n], [7, 11]), false); // other values
  // Digits in a comment are no slot: the one literal is, and the plan holds.
  clearPlans();
  const commented = "SELECT a FROM t WHERE b = 1 -- 5\n";
  learnPlan(commented, commented.trim(), { ...stmt, sql: "SELECT a FROM t WHERE b = ? -- 5" }, {
    sql: "",
    params: [1n],
    indices: [7],
  });
  assert.equal(scanShape(commented)!.kinds, "n");
  assert.ok(cachedPlan("SELECT a FROM t WHERE b = 2 -- 5\n"));
});
