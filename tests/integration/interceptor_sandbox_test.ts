/**
 * The sandbox as part of a serving process: a hook that spins, crashes or floods does not stall
 * the host's event loop; several hosts in one process (several nodes) are independent; loads
 * may run concurrently.
 */
import assert from "node:assert/strict";
import { HaError } from "../../src/errors/mod.ts";
import { LOG_BURST } from "../../src/interceptor/host.ts";
import { sampleChangeSet, testInterceptor } from "../../src/interceptor/testing.ts";
import { waitFor } from "./helpers/cluster.ts";

const cs = sampleChangeSet(1);

Deno.test("the host keeps serving HTTP while a hook spins until its timeout", async () => {
  const server = Deno.serve(
    { port: 0, hostname: "127.0.0.1", onListen() {} },
    () => new Response("ok"),
  );
  // The hook spins until the host is stopped (no timeout within the test): every request is
  // answered while it spins, whatever the machine's speed.
  await using t = await testInterceptor(
    `export function beforeApply(cs, ctx) {
  if (cs.node === "spin") { ctx.log("spinning"); while (true) {} }
  return { skip: true };
}`,
    { timeoutMs: 600_000 },
  );
  try {
    let settled = false;
    const hook = t.host.beforeApply({ ...cs, node: "spin" }, "ha.db").finally(() => {
      settled = true;
    });
    await waitFor("the hook spinning", () => t.logs.some((l) => l.msg === "spinning"));
    for (let i = 0; i < 20; i++) {
      const res = await fetch(`http://127.0.0.1:${server.addr.port}/`);
      assert.equal(await res.text(), "ok");
    }
    assert.equal(settled, false, "the hook still spins");
    const outcome = hook.then(() => null, (e: unknown) => e); // handled before stop() rejects it
    await t.host.stop();
    const e = await outcome;
    assert.ok(e instanceof HaError && e.code === "cancelled", String(e));
  } finally {
    await server.shutdown();
  }
});

Deno.test("two hosts in one process are independent", async () => {
  const code =
    `export function beforeApply(cs) { if (cs.node === "die") self.close(); if (cs.node === "spin") while (true) {} return { skip: true }; }`;
  await using a = await testInterceptor(code, { timeoutMs: 300, node: "a" });
  // b never hangs: a long limit, so that its calls succeed while a spins on a busy machine.
  await using b = await testInterceptor(code, { timeoutMs: 60_000, node: "b" });
  const spinning = a.host.beforeApply({ ...cs, node: "spin" }, "ha.db");
  for (let i = 0; i < 10; i++) {
    assert.deepEqual(await b.host.beforeApply(cs, "ha.db"), { skip: true });
  }
  assert.equal((await spinning).skip, false);
  a.options.timeoutMs = 60_000;
  assert.equal((await b.host.beforeApply({ ...cs, node: "die" }, "ha.db")).skip, false);
  assert.deepEqual(await a.host.beforeApply(cs, "ha.db"), { skip: true });
  assert.deepEqual(await b.host.beforeApply(cs, "ha.db"), { skip: true });
  assert.equal(a.host.stats().restarts, 1);
  assert.equal(b.host.stats().restarts, 1);
});

Deno.test("concurrent loads share the bundler safely", async () => {
  const hosts = await Promise.all(
    Array.from(
      { length: 6 },
      (_, i) =>
        testInterceptor(
          `export const beforeApply = () => (${i % 2 ? "{ skip: true }" : "undefined"});`,
        ),
    ),
  );
  try {
    const outs = await Promise.all(hosts.map((t) => t.host.beforeApply(cs, "d")));
    outs.forEach((o, i) => assert.equal(o.skip, i % 2 === 1));
  } finally {
    for (const t of hosts) await t[Symbol.asyncDispose]();
  }
});

Deno.test("a hook flooding the log does not block the host; lines over the budget are counted", async () => {
  await using t = await testInterceptor(
    `export function beforeApply(cs, ctx) { for (let i = 0; i < 5000; i++) ctx.log("line " + i); return { skip: true }; }`,
  );
  assert.deepEqual(await t.host.beforeApply(cs, "d"), { skip: true });
  const passed = () => t.logs.filter((l) => String(l.msg).startsWith("line ")).length;
  const dropped = () =>
    t.logs.filter((l) => l.msg === "interceptor log lines dropped over the rate limit")
      .reduce((n, l) => n + Number(l.lines), 0);
  await waitFor("every line logged or counted", () => passed() + dropped() === 5000);
  assert.ok(passed() >= LOG_BURST && passed() < 5000, `${passed()} lines passed`);
});
