/**
 * Loading interceptors: bundling, and every start-up error as HaError("config") naming
 * file:line:column, so the node exits 2 before it serves.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { loadInterceptor } from "../../src/interceptor/mod.ts";
import { HaError } from "../../src/errors/mod.ts";
import {
  captureLogger,
  type LogLine,
  sampleChangeSet,
  testInterceptor,
  writeFiles,
} from "../../src/interceptor/testing.ts";

const API = new URL("../../interceptors/mod.ts", import.meta.url).pathname;

/**
 * Loads `files[entry]` and expects a config error matching every pattern. The start-up limit is
 * generous (a sandbox child starts slowly on a busy machine) except where a test is about it.
 */
async function loadFails(
  files: Record<string, string>,
  patterns: RegExp[],
  entry = "i.ts",
  startTimeoutMs = 120_000,
) {
  const dir = await writeFiles(files);
  const logs: LogLine[] = [];
  try {
    await assert.rejects(
      loadInterceptor(join(dir, entry), {
        timeoutMs: 500,
        startTimeoutMs,
        logger: captureLogger(logs),
        query: () => Promise.reject(new Error("no")),
      }),
      (e: Error) => {
        assert.ok(e instanceof HaError, `not an HaError: ${e}`);
        assert.equal(e.code, "config");
        for (const re of patterns) assert.match(e.message, re);
        return true;
      },
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("load: bundles relative imports; type-only API imports vanish", async () => {
  await using t = await testInterceptor(
    `import type { BeforeApply, ChangeSet } from ${JSON.stringify(API)};
import type { Nothing } from "npm:does-not-exist";
import { rename } from "./lib/rename.ts";
export const beforeApply: BeforeApply = (cs: ChangeSet) =>
  ({ changeset: { ...cs, changes: cs.changes.map(rename) } });`,
    {
      files: {
        "lib/rename.ts": `import { SUFFIX } from "../const.ts";
export const rename = <T extends { table: string }>(c: T): T => ({ ...c, table: c.table + SUFFIX });`,
        "const.ts": `export const SUFFIX: string = "_copy";`,
      },
    },
  );
  const out = await t.host.beforeApply(sampleChangeSet(1), "ha.db");
  assert.equal(out.skip, false);
  if (!out.skip) assert.equal(out.changeset.changes[0].table, "t_copy");
  assert.deepEqual(t.host.hooks, ["beforeApply"]);
  assert.ok(t.logs.some((l) => l.msg === "interceptor loaded"));
});

Deno.test("load: default export object and JavaScript modules work", async () => {
  await using t = await testInterceptor(
    `export default { afterApply(cs, err) { return err ? { error: null } : undefined; } };`,
    { name: "i.js" },
  );
  assert.ok(t.host.has("afterApply"));
  assert.ok(!t.host.has("beforeApply"));
  assert.equal(await t.host.afterApply(sampleChangeSet(1), { message: "x" }, "ha.db"), null);
});

Deno.test("load: missing file", async () => {
  await loadFails({}, [/--interceptor .*nope\.ts: file not found/], "nope.ts");
});

Deno.test("load: syntax error names file:line:column", async () => {
  await loadFails(
    { "i.ts": `export function beforeApply(cs) {\n  return {;\n}\n` },
    [/i\.ts:2:11: /],
  );
});

Deno.test("load: error in an imported file names that file", async () => {
  await loadFails(
    {
      "i.ts": `import { x } from "./lib.ts";\nexport const beforeApply = x;`,
      "lib.ts": `export const x = ;`,
    },
    [/lib\.ts:1:18: /],
  );
});

Deno.test("load: missing relative import is reported where it is imported", async () => {
  await loadFails(
    { "i.ts": `import { x } from "./gone.ts";\nexport const beforeApply = x;` },
    [/i\.ts:1:19: Could not resolve "\.\/gone\.ts"/],
  );
});

Deno.test("load: package, URL and node: imports are rejected", async () => {
  for (
    const spec of ["npm:left-pad", "jsr:@std/path", "https://example.com/x.ts", "node:fs", "lodash"]
  ) {
    await loadFails(
      { "i.ts": `import x from "${spec}";\nexport const beforeApply = () => x;` },
      [new RegExp(`i\\.ts:1:15: cannot import "${spec.replace(/[.:/@]/g, "\\$&")}"`)],
    );
  }
});

Deno.test("load: module with no hook", async () => {
  await loadFails(
    { "i.ts": `export const helper = 1;` },
    [/i\.ts: exports none of the hooks beforeApply, afterApply, resolveConflict/],
  );
});

Deno.test("load: hook export that is not a function", async () => {
  await loadFails(
    {
      "i.ts": `// c\nexport const afterApply = { error: null };\nexport function beforeApply() {}`,
    },
    [/i\.ts:2:14: export "afterApply" must be a function, got object/],
  );
});

Deno.test("load: misspelt hook names and the Go names get a hint", async () => {
  await loadFails(
    { "i.ts": `export function Before() {}\nexport const resolveconflict = () => undefined;` },
    [
      /i\.ts:1:17: export "Before" is not a hook; did you mean "beforeApply"\?/,
      /i\.ts:2:14: export "resolveconflict" is not a hook; did you mean "resolveConflict"\?/,
    ],
  );
});

Deno.test("load: default export that is not a hook object", async () => {
  await loadFails(
    { "i.ts": `export default function beforeApply() {}` },
    [/i\.ts:1:1: the default export must be an object .* got a function/],
  );
});

Deno.test("load: a module that throws at top level names the throwing line", async () => {
  await loadFails(
    {
      "i.ts":
        `type T = { a: number };\nconst t: T = { a: 1 };\nif (t.a) {\n  throw new Error("no config");\n}\nexport const beforeApply = () => undefined;`,
    },
    [/i\.ts:4:9: the module failed to load: Error: no config/],
  );
});

Deno.test("load: a module whose top level is denied access names the line", async () => {
  await loadFails(
    {
      "i.ts":
        `const cfg = Deno.readTextFileSync("/etc/hosts");\nexport const beforeApply = () => cfg;`,
    },
    [/i\.ts:1:\d+: the module failed to load: NotCapable: Requires read access/],
  );
});

Deno.test("load: a module that blocks at top level times out", async () => {
  await loadFails(
    { "i.ts": `while (true) { /* spin */ }\nexport const beforeApply = () => undefined;` },
    [/did not finish loading within 1000 ms/],
    "i.ts",
    1000,
  );
});

Deno.test("load: timeout must be positive", async () => {
  await assert.rejects(
    loadInterceptor("x.ts", {
      timeoutMs: 0,
      logger: captureLogger([]),
      query: () => Promise.reject(new Error("no")),
    }),
    HaError,
  );
});
