/** PostgreSQL's statement_timeout setting: values read and shown as PostgreSQL does. */
import assert from "node:assert/strict";
import {
  effectiveTimeoutMs,
  formatTimeout,
  parseTimeout,
} from "../../src/pgwire/statement_timeout.ts";
import { PgError } from "../../src/pgwire/errors.ts";

Deno.test("statement_timeout values read and shown as PostgreSQL does", () => {
  const cases: [string, number, string][] = [
    ["5000", 5000, "5s"],
    ["5s", 5000, "5s"],
    ["200ms", 200, "200ms"],
    [" 1.5 min ", 90_000, "90s"],
    ["2min", 120_000, "2min"],
    ["1h", 3_600_000, "1h"],
    ["1d", 86_400_000, "1d"],
    ["1500us", 2, "2ms"],
    ["0", 0, "0"],
  ];
  for (const [text, ms, shown] of cases) {
    assert.equal(parseTimeout(text), ms, text);
    assert.equal(formatTimeout(ms), shown, text);
  }
  for (const bad of ["5m", "-1", "soon", "", "1e3", "3000000000"]) {
    assert.throws(() => parseTimeout(bad), (e) => e instanceof PgError && e.code === "22023", bad);
  }
});

Deno.test("a session's statement_timeout lowers the node's, never raises it (catalog queries)", () => {
  assert.equal(effectiveTimeoutMs(500, 0), 500);
  assert.equal(effectiveTimeoutMs(500, 300), 300);
  assert.equal(effectiveTimeoutMs(500, 3_600_000), 500);
  assert.equal(effectiveTimeoutMs(0, 300), 300);
  assert.equal(effectiveTimeoutMs(0, 0), 0);
});
