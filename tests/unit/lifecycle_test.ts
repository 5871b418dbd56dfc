/**
 * Node parts: start in order, stop in reverse, front ends stopped together; the Late holder; the
 * start-up garbage collection.
 */
import assert from "node:assert/strict";
import { HaError } from "../../src/errors/mod.ts";
import { runInNewContext } from "node:vm";
import { Late, type Part, Parts, releaseStartGarbage, together } from "../../src/lifecycle/mod.ts";
import { createLogger } from "../../src/log/mod.ts";

const logger = createLogger("error");

/** A part that records its start and stop in `log`; `fail` makes that step throw. */
function recorder(name: string, log: string[], fail?: "start" | "stop"): Part {
  return {
    start() {
      if (fail === "start") return Promise.reject(new Error(`${name} cannot start`));
      log.push(`start ${name}`);
      return Promise.resolve();
    },
    stop() {
      log.push(`stop ${name}`);
      return fail === "stop" ? Promise.reject(new Error(`${name} cannot stop`)) : Promise.resolve();
    },
  };
}

Deno.test("parts start in order and stop in reverse, once, past a failing stop", async () => {
  const log: string[] = [];
  const parts = new Parts(logger);
  for (const [n, fail] of [["a"], ["b", "stop"], ["c"]] as const) {
    await parts.start(n, recorder(n, log, fail));
  }
  await parts.start("d", { stop: () => Promise.resolve(void log.push("stop d")) });
  await Promise.all([parts.stop(), parts.stop()]);
  assert.deepEqual(log, ["start a", "start b", "start c", "stop d", "stop c", "stop b", "stop a"]);
  await assert.rejects(parts.start("late", recorder("late", log)), /stopping/);
});

Deno.test("a part whose start fails is not stopped; the started ones are", async () => {
  const log: string[] = [];
  const parts = new Parts(logger);
  await parts.start("a", recorder("a", log));
  await assert.rejects(parts.start("b", recorder("b", log, "start")), /b cannot start/);
  await parts.stop();
  assert.deepEqual(log, ["start a", "stop a"]);
});

Deno.test("together: started in order, stopped at once; a failed start stops the others", async () => {
  const stopping: string[] = [];
  const release = Promise.withResolvers<void>();
  const slow = (name: string): Part => ({
    start: () => Promise.resolve(),
    stop: async () => {
      stopping.push(name);
      await release.promise;
    },
  });
  const both = together([slow("http"), slow("pg")]);
  await both.start!();
  const stopped = both.stop();
  // Both stop (stop accepting) before either finished draining.
  await Promise.resolve();
  assert.deepEqual(stopping, ["http", "pg"]);
  release.resolve();
  await stopped;

  const log: string[] = [];
  const broken = together([recorder("http", log), recorder("pg", log, "start")]);
  await assert.rejects(broken.start!(), /pg cannot start/);
  assert.deepEqual(log, ["start http", "stop http"]);
});

Deno.test("Late: unavailable until set, then the value; set once", async () => {
  const late = new Late<{ n: number }>("NATS not reached yet");
  assert.equal(late.current(), null);
  assert.throws(() => late.get(), (e) => e instanceof HaError && e.code === "unavailable");
  const ready = late.whenReady();
  const v = { n: 1 };
  late.set(v);
  late.set(v);
  assert.equal(late.get(), v);
  assert.equal(await ready, v);
  assert.throws(() => late.set({ n: 2 }), /already set/);
});

Deno.test("releaseStartGarbage: collects the isolate and leaves no gc exposed", async () => {
  let garbage: unknown[] | null = Array.from({ length: 10_000 }, (_, i) => ({ i }));
  assert.equal(garbage.length, 10_000);
  garbage = null;
  const r = await releaseStartGarbage();
  assert.ok(r.before > 0 && r.after > 0 && r.ms >= 0);
  assert.equal(typeof (globalThis as { gc?: unknown }).gc, "undefined");
  assert.equal(runInNewContext("typeof gc"), "undefined"); // --expose-gc is unset again
});
