/**
 * The sandbox: no permissions (file, net, env, run, ffi all denied), and a hook that hangs or
 * kills its worker gets the default outcome, a logged error and a fresh worker.
 */
import assert from "node:assert/strict";
import { HaError } from "../../src/errors/mod.ts";
import {
  sampleChangeSet,
  sampleConflicts,
  type TestInterceptor,
  testInterceptor,
} from "../../src/interceptor/testing.ts";

const cs = sampleChangeSet(1);
const unchanged = (node: string) => ({
  skip: false,
  changeset: { ...cs, node },
  rewritten: false,
});

/** A beforeApply that runs `body` for `cs.node === name` and otherwise skips. */
function module(cases: Record<string, string>): string {
  const branches = Object.entries(cases).map(([name, body]) =>
    `  if (cs.node === ${JSON.stringify(name)}) { ${body} }`
  ).join("\n");
  return `export async function beforeApply(cs, ctx) {\n${branches}\n  return { skip: true };\n}\n`;
}

async function expectDefault(t: TestInterceptor, node: string, reason: RegExp): Promise<void> {
  const before = t.logs.length;
  assert.deepEqual(await t.host.beforeApply({ ...cs, node }, "ha.db"), unchanged(node), node);
  const err = t.logs.slice(before).find((l) => l.level === "error" && l.hook);
  assert.ok(err, `no error logged for ${node}`);
  assert.equal(err.hook, "beforeApply");
  assert.equal(err.fallback, "changeset applied unchanged");
  assert.match(String(err.reason), reason, `${node}: ${err.reason}`);
}

Deno.test("sandbox denies file, network, env, subprocess and FFI access", async () => {
  // A real listener: a request from the sandbox would reach it if the network were allowed.
  let hits = 0;
  const server = Deno.serve({ port: 0, hostname: "127.0.0.1", onListen() {} }, () => {
    hits++;
    return new Response("pwned");
  });
  const port = server.addr.port;
  await using t = await testInterceptor(module({
    read: `await Deno.readTextFile("/etc/hostname");`,
    readSync: `Deno.readFileSync("/etc/passwd");`,
    write: `await Deno.writeTextFile("/tmp/ha-interceptor-pwned", "x");`,
    fetch: `await fetch("http://127.0.0.1:${port}/");`,
    connect: `await Deno.connect({ hostname: "127.0.0.1", port: ${port} });`,
    env: `Deno.env.get("HOME");`,
    envAll: `Deno.env.toObject();`,
    run: `await new Deno.Command("true").output();`,
    dlopen: `Deno.dlopen("libc.so.6", {});`,
    sysinfo: `Deno.hostname();`,
    importFile: `await import(["file:///etc", "hostname"].join("/"));`,
    importNet: `await import(["https://example.com", "x.js"].join("/"));`,
  }));
  const denied = /NotCapable|Requires .* access|PermissionDenied/;
  for (
    const node of [
      "read",
      "readSync",
      "write",
      "fetch",
      "connect",
      "env",
      "envAll",
      "run",
      "dlopen",
      "sysinfo",
      "importFile",
      "importNet",
    ]
  ) {
    await expectDefault(t, node, node.startsWith("import") ? /./ : denied);
  }
  await assert.rejects(Deno.stat("/tmp/ha-interceptor-pwned"), Deno.errors.NotFound);
  assert.equal(hits, 0);
  await server.shutdown();
  // Each failed hook replaced its worker; the fresh one serves.
  assert.deepEqual(await t.host.beforeApply(cs, "ha.db"), { skip: true });
  assert.equal(t.host.stats().restarts, 12);
  assert.equal(t.host.stats().byKind.threw, 12);
});

Deno.test("an infinite loop times out, the worker is replaced, later calls work", async () => {
  await using t = await testInterceptor(module({ loop: `while (true) { /* spin */ }` }), {
    timeoutMs: 200,
  });
  const t0 = performance.now();
  await expectDefault(t, "loop", /no answer within 200 ms/);
  const took = performance.now() - t0;
  assert.ok(took >= 190, `gave up after ${took} ms`); // a busy machine only makes it later
  assert.ok(t.logs.some((l) => l.msg === "interceptor worker replaced"));
  t.options.timeoutMs = 60_000; // calls that must succeed get all the time a busy machine needs
  assert.deepEqual(await t.host.beforeApply(cs, "ha.db"), { skip: true });
  const s = t.host.stats();
  assert.equal(s.byKind.timeout, 1);
  assert.equal(s.restarts, 1);
  // Module state starts over in the new worker; a second hang is handled the same way.
  t.options.timeoutMs = 200;
  await expectDefault(t, "loop", /no answer within 200 ms/);
  assert.equal(t.host.stats().restarts, 2);
});

Deno.test("a hang in one call fails the calls that share its worker, not later ones", async () => {
  await using t = await testInterceptor(
    module({ loop: `while (true) {}`, slow: `await new Promise((r) => setTimeout(r, 50));` }),
    { timeoutMs: 300 },
  );
  const slow = t.host.beforeApply({ ...cs, node: "slow" }, "ha.db");
  const loop = t.host.beforeApply({ ...cs, node: "loop" }, "ha.db");
  assert.deepEqual(await loop, unchanged("loop"));
  assert.deepEqual(await slow, unchanged("slow"));
  t.options.timeoutMs = 60_000;
  assert.deepEqual(await t.host.beforeApply(cs, "ha.db"), { skip: true });
});

Deno.test("self.close(), close() and Deno.exit() replace the worker promptly", async () => {
  await using t = await testInterceptor(
    module({
      selfClose: `self.close();`,
      globalClose: `globalThis.close();`,
      exit: `Deno.exit(3);`,
    }),
    // Promptly = on the exit event, not the call's timeout (the reason says which one it was).
    { timeoutMs: 60_000 },
  );
  for (const node of ["selfClose", "globalClose", "exit"]) {
    await expectDefault(t, node, /worker replaced: WorkerExit/);
    assert.deepEqual(await t.host.beforeApply(cs, "ha.db"), { skip: true });
  }
  assert.equal(t.host.stats().restarts, 3);
  assert.equal(t.host.stats().byKind.crash, 3);
});

Deno.test("an uncaught async error or unhandled rejection crashes only the worker", async () => {
  await using t = await testInterceptor(
    module({
      asyncThrow: `setTimeout(() => { throw new Error("late boom"); }, 0);
      await new Promise((r) => setTimeout(r, 1000));`,
      unhandled: `Promise.reject(new Error("nobody catches me"));
      await new Promise((r) => setTimeout(r, 1000));`,
    }),
    { timeoutMs: 5000 },
  );
  await expectDefault(t, "asyncThrow", /worker replaced: Error: late boom/);
  await expectDefault(t, "unhandled", /worker replaced: Error: nobody catches me/);
  assert.deepEqual(await t.host.beforeApply(cs, "ha.db"), { skip: true });
  assert.equal(t.host.stats().restarts, 2);
});

Deno.test("resolveConflicts batch falls back as a whole on a hang", async () => {
  await using t = await testInterceptor(
    `export function resolveConflict(c) { if (c.change_index === 2) while (true) {} return "local"; }`,
    { timeoutMs: 200 },
  );
  const conflicts = sampleConflicts(sampleChangeSet(3));
  assert.deepEqual(await t.host.resolveConflicts(conflicts, "ha.db"), [
    undefined,
    undefined,
    undefined,
  ]);
  assert.equal(t.host.failures, 3);
  assert.deepEqual(await t.host.resolveConflicts(conflicts.slice(0, 2), "ha.db"), [
    "local",
    "local",
  ]);
});

Deno.test("a worker that cannot restart yields defaults; restarts are retried later", async () => {
  let clock = 0; // the backoff's clock, driven by this test
  // The module loads only until `deadline` (a sandbox has no other state that survives it). A
  // window too short for a busy machine is tried again with a longer one.
  for (const windowMs of [3_000, 15_000, 60_000]) {
    const deadline = Date.now() + windowMs;
    const t = await testInterceptor(
      `if (Date.now() > ${deadline}) throw new Error("too late to start");
export function beforeApply(cs) { if (cs.node === "exit") self.close(); return { skip: true }; }`,
      { now: () => clock, timeoutMs: 60_000, startTimeoutMs: 120_000 },
    ).catch(() => null);
    if (t === null) continue; // the first start missed the window
    try {
      await new Promise((r) => setTimeout(r, Math.max(0, deadline - Date.now()) + 50));
      await expectDefault(t, "exit", /worker replaced/);
      // The replacement fails to load: calls get the default without waiting.
      await expectDefault(t, "ok", /worker restart failed/);
      const failures = () => t.logs.filter((l) => l.msg === "interceptor worker failed to restart");
      assert.equal(failures().length, 1);
      assert.match(String(failures()[0].reason), /too late to start[\s\S]*interceptor\.ts:1:\d+/);
      assert.equal(failures()[0].retry_in_ms, 1000);
      // The clock stands still: no new attempt during the backoff.
      await expectDefault(t, "ok", /next attempt in 1000 ms/);
      assert.equal(failures().length, 1);
      // Once the backoff has passed, the next call tries again (and fails again).
      clock += 1000;
      await expectDefault(t, "ok", /worker restart failed/);
      assert.equal(failures().length, 2);
      assert.equal(failures()[1].retry_in_ms, 2000);
      assert.ok(t.host.stats().byKind.unavailable >= 3);
      return;
    } finally {
      await t[Symbol.asyncDispose]();
    }
  }
  assert.fail("the module never loaded within 60 s");
});

Deno.test("stop() terminates the worker; later calls are cancelled", async () => {
  const t = await testInterceptor(module({ slow: `await new Promise(() => {});` }), {
    timeoutMs: 5000,
  });
  const pending = t.host.beforeApply({ ...cs, node: "slow" }, "ha.db").catch((e) => e);
  await new Promise((r) => setTimeout(r, 20)); // the call is in the worker
  await t[Symbol.asyncDispose]();
  const e = await pending;
  assert.ok(e instanceof HaError && e.code === "cancelled", String(e));
  await assert.rejects(
    t.host.beforeApply(cs, "ha.db"),
    (e: Error) => e instanceof HaError && e.code === "cancelled",
  );
  await t.host.stop(); // idempotent
});
