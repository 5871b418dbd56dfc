import assert from "node:assert/strict";
import { Semaphore } from "../../src/engine/sync.ts";

Deno.test("tryAcquire takes a free permit at once and none when all are taken", async () => {
  const s = new Semaphore(2);
  const a = s.tryAcquire();
  const b = await s.acquire();
  assert.ok(a);
  assert.equal(s.tryAcquire(), null);
  const order: string[] = [];
  const waiting = s.acquire().then((release) => {
    order.push("waiter");
    return release;
  });
  a();
  a(); // a second call gives nothing back
  const c = await waiting;
  assert.deepEqual(order, ["waiter"]);
  assert.equal(s.tryAcquire(), null, "the released permit went to the waiter");
  b();
  const d = s.tryAcquire();
  assert.ok(d);
  assert.equal(s.tryAcquire(), null);
  c();
  d();
  assert.ok(s.tryAcquire());
  assert.ok(s.tryAcquire());
  assert.equal(s.tryAcquire(), null);
});
