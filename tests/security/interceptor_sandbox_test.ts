/**
 * Issue 11, finding 8: an interceptor past its limits is stopped. Hooks run in a sandbox process
 * of their own; these tests check with /proc that a stuck hook's process is really gone, that
 * memory is bounded, that nested workers are refused and that a log flood is rate-limited while
 * the process keeps answering HTTP.
 */
import assert from "node:assert/strict";
import { LOG_BURST } from "../../src/interceptor/host.ts";
import { sampleChangeSet, testInterceptor } from "../../src/interceptor/testing.ts";
import { descendants, pidAlive, waitFor } from "../integration/helpers/cluster.ts";

const cs = sampleChangeSet(1);

/** (module (func (export "f") (loop (br 0)))) */
const WASM_LOOP = [
  0x00,
  0x61,
  0x73,
  0x6d,
  0x01,
  0x00,
  0x00,
  0x00,
  0x01,
  0x04,
  0x01,
  0x60,
  0x00,
  0x00,
  0x03,
  0x02,
  0x01,
  0x00,
  0x07,
  0x05,
  0x01,
  0x01,
  0x66,
  0x00,
  0x00,
  0x0a,
  0x09,
  0x01,
  0x07,
  0x00,
  0x03,
  0x40,
  0x0c,
  0x00,
  0x0b,
  0x0b,
];

/** CPU ticks (user + system) a process has used so far. */
function cpuTicks(pid: number): number {
  const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
  const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return Number(f[11]) + Number(f[12]);
}

for (
  const [what, body] of [
    ["a JavaScript loop", `for (;;) {}`],
    [
      "a WebAssembly loop",
      `const m = new WebAssembly.Module(new Uint8Array(${JSON.stringify(WASM_LOOP)}));
       new WebAssembly.Instance(m).exports.f();`,
    ],
  ]
) {
  Deno.test(`a hook stuck in ${what} is killed: its process is gone`, async () => {
    await using t = await testInterceptor(
      `export function beforeApply(cs) { if (cs.node === "spin") { ${body} } return { skip: true }; }`,
      { timeoutMs: 500 },
    );
    const pid = t.host.pid!;
    assert.ok(pidAlive(pid));
    const spinning = t.host.beforeApply({ ...cs, node: "spin" }, "ha.db");
    await waitFor("the hook burns CPU", () => cpuTicks(pid) > 5, 10_000);
    assert.equal((await spinning).skip, false); // the default: applied unchanged
    await waitFor(`sandbox ${pid} gone`, () => !pidAlive(pid), 10_000);
    await waitFor(`sandbox ${pid} reaped`, () => !descendants(Deno.pid).includes(pid), 10_000);
    // a fresh sandbox answers
    assert.deepEqual(await t.host.beforeApply(cs, "ha.db"), { skip: true });
    assert.notEqual(t.host.pid, pid);
    assert.equal(t.host.stats().byKind.timeout, 1);
  });
}

Deno.test("a hook spinning outside any call is ended by the watchdog", async () => {
  await using t = await testInterceptor(
    `export function beforeApply(cs) { if (cs.node === "later") setTimeout(() => { for (;;) {} }, 0); return { skip: true }; }`,
    { timeoutMs: 300 },
  );
  const pid = t.host.pid!;
  assert.deepEqual(await t.host.beforeApply({ ...cs, node: "later" }, "ha.db"), { skip: true });
  await waitFor(`sandbox ${pid} gone`, () => !pidAlive(pid), 10_000);
  await waitFor(
    "replacement logged",
    () =>
      t.logs.some((l) =>
        l.msg === "interceptor worker replaced" && /busy outside/.test(String(l.reason))
      ),
  );
  assert.deepEqual(await t.host.beforeApply(cs, "ha.db"), { skip: true });
});

Deno.test("a JavaScript heap bomb hits the heap limit and only its sandbox dies", async () => {
  await using t = await testInterceptor(
    `export function beforeApply(cs) {
       if (cs.node === "bomb") { const a = []; for (;;) a.push(new Array(1e5).fill(1.5)); }
       return { skip: true };
     }`,
    { timeoutMs: 20_000, memoryMb: 64 },
  );
  const pid = t.host.pid!;
  const out = await t.host.beforeApply({ ...cs, node: "bomb" }, "ha.db");
  assert.equal(out.skip, false);
  assert.ok(!pidAlive(pid));
  const failed = t.logs.find((l) =>
    l.msg === "interceptor beforeApply failed (crash): changeset applied unchanged"
  );
  assert.match(String(failed?.reason), /memory limit reached/);
  assert.equal(t.host.stats().byKind.timeout, 0); // stopped by the limit, not by the deadline
  assert.deepEqual(await t.host.beforeApply(cs, "ha.db"), { skip: true });
});

Deno.test("allocations outside the heap (ArrayBuffer, WebAssembly memory) are bounded", async () => {
  const memoryMb = 64;
  await using t = await testInterceptor(
    `export function beforeApply(cs, ctx) {
       const kept = []; let mb = 0;
       try { for (;;) { kept.push(new Uint8Array(16 << 20).fill(1)); mb += 16; } }
       catch (e) { ctx.log("buffers", { mb, error: String(e) }); }
       kept.length = 0;
       const mem = new WebAssembly.Memory({ initial: 1, maximum: 65536 });
       let pages = 1;
       try { for (;;) { mem.grow(256); pages += 256; } }
       catch (e) { ctx.log("wasm", { mb: pages / 16, error: String(e) }); }
       return { skip: true };
     }`,
    { timeoutMs: 20_000, memoryMb },
  );
  assert.deepEqual(await t.host.beforeApply(cs, "ha.db"), { skip: true });
  const buffers = t.logs.find((l) => l.msg === "buffers")!;
  const wasm = t.logs.find((l) => l.msg === "wasm")!;
  // The allowance is twice the heap limit beyond what V8 had reserved at start.
  assert.ok(Number(buffers.mb) <= 2 * memoryMb, `ArrayBuffers: ${buffers.mb} MB`);
  assert.match(String(buffers.error), /RangeError/);
  assert.ok(Number(wasm.mb) <= 2 * memoryMb + 64, `WebAssembly memory: ${wasm.mb} MB`);
});

Deno.test("a hook cannot start a nested worker", async () => {
  await using t = await testInterceptor(
    `export function beforeApply(cs, ctx) {
       try { new Worker("data:text/javascript,for(;;){}", { type: "module" }); ctx.log("started"); }
       catch (e) { ctx.log("refused", { error: e.message }); }
       try { globalThis.Worker = class {}; } catch (e) { ctx.log("locked", { error: e.constructor.name }); }
       return { skip: true };
     }`,
  );
  assert.deepEqual(await t.host.beforeApply(cs, "ha.db"), { skip: true });
  assert.equal(t.logs.find((l) => l.msg === "refused")?.error, "interceptors cannot start workers");
  assert.ok(!t.logs.some((l) => l.msg === "started"));
  assert.equal(t.logs.find((l) => l.msg === "locked")?.error, "TypeError");
  assert.deepEqual(descendants(t.host.pid!), []); // no process either
});

Deno.test("the sandbox process gets none of ha's environment", async () => {
  Deno.env.set("HA_SECRET_FOR_TEST", "s3cret");
  try {
    await using t = await testInterceptor(`export const beforeApply = () => ({ skip: true });`);
    const environ = Deno.readTextFileSync(`/proc/${t.host.pid}/environ`);
    assert.ok(!environ.includes("s3cret"));
    assert.ok(environ.includes("DENO_V8_FLAGS=--max-old-space-size=256"));
  } finally {
    Deno.env.delete("HA_SECRET_FOR_TEST");
  }
});

Deno.test("a flood of 200k console.log lines is rate-limited; the process keeps serving", async () => {
  const server = Deno.serve(
    { port: 0, hostname: "127.0.0.1", onListen() {} },
    () => new Response("ok"),
  );
  await using t = await testInterceptor(
    `export function beforeApply() { for (let i = 0; i < 200_000; i++) console.log("flood " + i); }`,
    { timeoutMs: 30_000 },
  );
  try {
    const hook = t.host.beforeApplyBatch([cs], "ha.db");
    let answered = 0;
    let done = false;
    void hook.then(() => done = true);
    while (!done) {
      const res = await fetch(`http://127.0.0.1:${server.addr.port}/healthz`);
      if ((await res.text()) === "ok") answered++;
    }
    assert.equal((await hook)[0].skip, false);
    assert.ok(answered > 0);
    const dropped = () =>
      t.logs.filter((l) => l.msg === "interceptor log lines dropped over the rate limit")
        .reduce((sum, l) => sum + Number(l.lines), 0);
    const passed = () => t.logs.filter((l) => String(l.msg).startsWith("flood ")).length;
    await waitFor("every line logged or counted", () => passed() + dropped() === 200_000);
    assert.ok(passed() >= LOG_BURST && passed() < 200_000 / 10, `${passed()} lines passed`);
  } finally {
    await server.shutdown();
  }
});
