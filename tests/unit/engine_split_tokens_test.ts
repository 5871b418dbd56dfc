/**
 * `splitStatements` hands its one statement the tokens it just lexed (the simple query protocol's
 * lone statement is not lexed twice): they must be exactly what lexing the statement gives.
 */
import assert from "node:assert/strict";
import { lexUncached, tokenize } from "../../src/engine/lexer.ts";
import { splitStatements } from "../../src/engine/split.ts";

const TEXTS = [
  "SELECT abalance FROM accounts WHERE aid = 123;",
  "  SELECT 1 ;  ",
  "\n\t SELECT 'a;b', \"x;y\" FROM t -- c;\n;",
  "; ; SELECT $1, ?2, :name, @v FROM t WHERE a = 1e+5;",
  "/* SELECT 1 */; SELECT 1",
  "SELECT 1 /* trailing */ ;",
  "SELECT 1 -- tail",
  "\u00a0SELECT 1;",
  "SELECT 1\u00a0;",
  "\vSELECT 1;",
  "\ufeffSELECT x FROM t;",
  "CREATE TRIGGER tr AFTER INSERT ON t BEGIN SELECT 1; SELECT 2; END;",
  "  CREATE TRIGGER tr AFTER INSERT ON t BEGIN SELECT 1; END  ;",
  "SELECT x::int, $ FROM t WHERE y = .5;",
  "SELECT [a;b] FROM `c;d`;",
  "SELECT 1; SELECT 2;",
  ";;;",
  "   ",
];

Deno.test("the lone statement's tokens are those of lexing it afresh", () => {
  for (const text of TEXTS) {
    const parts = splitStatements(text);
    for (const part of parts) {
      assert.deepEqual(tokenize(part), lexUncached(part), JSON.stringify({ text, part }));
    }
  }
});

Deno.test("offsets are the statement's own after leading whitespace", () => {
  const [part] = splitStatements("\n  SELECT a FROM t WHERE b = 'x';");
  assert.equal(part, "SELECT a FROM t WHERE b = 'x'");
  const ts = tokenize(part);
  assert.equal(part.slice(ts[0].start, ts[0].end), "SELECT");
  assert.equal(part.slice(ts[ts.length - 1].start, ts[ts.length - 1].end), "'x'");
});

Deno.test("a pgbench point select is lexed once: its statement shares the text's tokens", () => {
  const text = "SELECT abalance FROM accounts WHERE aid = 98765;";
  const [part] = splitStatements(text);
  assert.equal(part, "SELECT abalance FROM accounts WHERE aid = 98765");
  assert.equal(tokenize(part)[0], tokenize(text)[0], "the same token objects, not lexed again");
  assert.equal(tokenize(part).length, tokenize(text).length - 1);
});
