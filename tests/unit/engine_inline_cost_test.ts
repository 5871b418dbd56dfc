/**
 * The main thread's moving average of a known read's time: a run descheduled for tens of ms does
 * not send a point select to the workers; a read slow every time still goes there.
 */
import assert from "node:assert/strict";
import { nextAverage, tooSlow } from "../../src/engine/inline_reader.ts";

function after(runs: number[], from = 0): number {
  return runs.reduce((avg, ms) => nextAverage(avg, ms), from);
}

Deno.test("one descheduled run of a point select keeps it on the main thread", () => {
  const warm = after(Array(50).fill(0.03));
  for (const spike of [20, 47, 200]) {
    assert.equal(tooSlow(after([spike], warm)), false, `${spike} ms once`);
    assert.equal(tooSlow(after([spike, 0.03, spike], warm)), false, `${spike} ms twice`);
  }
});

Deno.test("a read slow on every run goes to the workers within a few runs", () => {
  const warm = after(Array(50).fill(0.03));
  for (const ms of [3, 5, 9]) {
    const runs: number[] = [];
    while (!tooSlow(after(runs, warm))) runs.push(ms);
    assert.ok(runs.length <= 12, `${ms} ms: ${runs.length} runs`);
  }
  assert.equal(tooSlow(after(Array(100).fill(1.5), warm)), false, "1.5 ms stays");
});
