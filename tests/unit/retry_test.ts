/** The shared backoff: doubling delays up to the cap, peek without consuming, reset. */
import assert from "node:assert/strict";
import { Backoff } from "../../src/retry/mod.ts";

Deno.test("Backoff doubles from initialMs up to maxMs and starts over after reset", () => {
  const b = new Backoff({ initialMs: 250, maxMs: 5_000 });
  assert.equal(b.peek(), 250);
  const delays = Array.from({ length: 7 }, () => b.next());
  assert.deepEqual(delays, [250, 500, 1000, 2000, 4000, 5000, 5000]);
  assert.equal(b.peek(), 5000, "peek does not consume");
  b.reset();
  assert.deepEqual([b.next(), b.next()], [250, 500]);
});

Deno.test("Backoff with initialMs = maxMs is a fixed delay", () => {
  const b = new Backoff({ initialMs: 500, maxMs: 500 });
  assert.deepEqual([b.next(), b.next(), b.next()], [500, 500, 500]);
});
