/**
 * Pure parts of the interceptor host: read-only check, source maps, result validation, wire
 * conversion, export checks. No workers.
 */
import assert from "node:assert/strict";
import {
  checkExports,
  exportPosition,
  InvalidResult,
  toHookChangeSet,
  toWireChangeSet,
} from "../../src/interceptor/mod.ts";
import { SourceMap } from "../../src/interceptor/sourcemap.ts";
import {
  parseAfterResult,
  parseBeforeResult,
  parseResolution,
} from "../../src/interceptor/validate.ts";
import { decodeChangeSet, encodeChangeSet } from "../../src/cdc/mod.ts";
import type { ChangeSet as WireChangeSet } from "../../src/cdc/mod.ts";
import { HaError } from "../../src/errors/mod.ts";
import { sampleChangeSet, sampleConflicts } from "../../src/interceptor/testing.ts";

Deno.test("SourceMap maps positions and rewrites stacks", () => {
  // Generated line 1 col 0 → a.ts 1:0; line 2 col 2 → a.ts 3:2 (mappings "AAAA;EAEE"), 0-based.
  const map = new SourceMap(
    JSON.stringify({ version: 3, sources: ["a.ts"], mappings: "AAAA;EAEE" }),
    (s) => `/src/${s}`,
  );
  assert.deepEqual(map.lookup(1, 1), { file: "/src/a.ts", line: 1, column: 1 });
  assert.deepEqual(map.lookup(2, 9), { file: "/src/a.ts", line: 3, column: 3 });
  assert.equal(map.lookup(3, 1), null);
  assert.equal(
    map.rewrite("Error: x\n    at f (blob:null/1:2:3)\n    at g (other:1:1)", "blob:null/1"),
    "Error: x\n    at f (/src/a.ts:3:3)\n    at g (other:1:1)",
  );
  assert.deepEqual(map.firstPosition("at blob:null/1:1:1", "blob:null/1"), {
    file: "/src/a.ts",
    line: 1,
    column: 1,
  });
});

Deno.test("parseBeforeResult: documented shapes only", () => {
  const cs = sampleChangeSet(2);
  assert.deepEqual(parseBeforeResult(undefined, cs), {
    skip: false,
    changeset: cs,
    rewritten: false,
  });
  assert.deepEqual(parseBeforeResult({ skip: true }, cs), { skip: true });
  const rewritten = parseBeforeResult({ changeset: { changes: [cs.changes[1]] } }, cs);
  assert.equal(rewritten.skip, false);
  if (!rewritten.skip) {
    assert.equal(rewritten.rewritten, true);
    assert.deepEqual(rewritten.changeset.changes, [cs.changes[1]]);
    assert.equal(rewritten.changeset.node, cs.node); // only `changes` is taken
  }
  const sql = { operation: "SQL", command: "ALTER TABLE t ADD COLUMN c", table: "" };
  assert.equal(parseBeforeResult({ changeset: { changes: [sql] } }, cs).skip, false);

  const bad: [unknown, RegExp][] = [
    [null, /expected undefined/],
    [true, /expected undefined/],
    [{ skip: false }, /skip must be true/],
    [{ skip: 1 }, /skip must be true/],
    [{ skip: true, extra: 1 }, /unexpected keys \[extra\]/],
    [{ changeset: null }, /changeset must be an object/],
    [{ changeset: { changes: "x" } }, /changes must be an array/],
    [{ changeset: { changes: [{ ...cs.changes[0], operation: "UPSERT" }] } }, /operation/],
    [{ changeset: { changes: [{ ...cs.changes[0], new_values: [1n] }] } }, /1 values for 4/],
    [
      { changeset: { changes: [{ ...cs.changes[0], new_values: [1n, "a", 1, true] }] } },
      /new_values\[3\] is boolean/,
    ],
    [
      { changeset: { changes: [{ ...cs.changes[0], new_rowid: 5 }] } },
      /new_rowid must be a bigint/,
    ],
    [{ changeset: { changes: [{ ...cs.changes[0], pk_columns: ["nope"] }] } }, /not a column/],
    [{ changeset: { changes: [{ ...cs.changes[0], old_values: [1n, 2n, 3n, 4n] }] } }, /null/],
    [{ changeset: { changes: [{ operation: "SQL", command: " " }] } }, /command/],
    [{ changeset: { changes: [{ ...cs.changes[0], operation: "DELETE" }] } }, /old_values/],
  ];
  for (const [r, re] of bad) {
    assert.throws(() => parseBeforeResult(r, cs), (e: Error) => {
      assert.ok(e instanceof InvalidResult, String(e));
      assert.match(e.message, re);
      return true;
    });
  }
});

Deno.test("parseAfterResult: keep, swallow, replace; garbage rejected", () => {
  const err = { message: "boom" };
  assert.equal(parseAfterResult(undefined, err), err);
  assert.equal(parseAfterResult(undefined, null), null);
  assert.equal(parseAfterResult({ error: null }, err), null);
  assert.deepEqual(parseAfterResult({ error: "other" }, err), { message: "other" });
  for (const r of [null, false, "x", {}, { error: "" }, { error: 5 }, { error: null, x: 1 }]) {
    assert.throws(() => parseAfterResult(r, err), InvalidResult, JSON.stringify(r));
  }
});

Deno.test("parseResolution: local, remote, merged values, default", () => {
  const [c] = sampleConflicts(sampleChangeSet(1));
  assert.equal(parseResolution(undefined, c), undefined);
  assert.equal(parseResolution("local", c), "local");
  assert.equal(parseResolution("remote", c), "remote");
  const values = [1n, "m", 1.5, null];
  assert.deepEqual(parseResolution({ values }, c), { values });
  for (
    const r of [null, "LOCAL", 1, [], { values: [1n] }, { values: [1n, 2n, 3n, {}] }, {
      values,
      x: 1,
    }]
  ) {
    assert.throws(() => parseResolution(r, c), InvalidResult);
  }
});

Deno.test("wire ↔ hook conversion keeps exact values", () => {
  const wire: WireChangeSet = decodeChangeSet(encodeChangeSet({
    id: "ha.db:n2:5",
    node: "n2",
    incarnation: "inc",
    db: "ha.db",
    hlc: 5,
    timestamp_ns: 7,
    changes: [{
      database: "main",
      table: "t",
      columns: ["a", "b", "c", "d", "e"],
      pk_columns: ["a"],
      operation: "UPDATE",
      old_rowid: 1,
      new_rowid: { int: "9223372036854775807" },
      old_values: [1, "x", { real: "1.0" }, { blob: "AQI=" }, null],
      new_values: [{ int: "-9223372036854775808" }, "ü", 2.5, { blob: "" }, null],
      hlc: 5,
    }, {
      database: "main",
      table: "",
      columns: [],
      pk_columns: [],
      operation: "SQL",
      command: "X",
      hlc: 5,
    }],
  }));
  const hook = toHookChangeSet(wire, { stream_seq: 3, subject: "s.ha_db" });
  assert.equal(hook.database, "ha.db");
  assert.equal(hook.stream_seq, 3);
  assert.equal(hook.subject, "s.ha_db");
  const c = hook.changes[0];
  assert.equal(c.old_rowid, 1n);
  assert.equal(c.new_rowid, 2n ** 63n - 1n);
  assert.deepEqual(c.old_values, [1n, "x", 1, new Uint8Array([1, 2]), null]);
  assert.deepEqual(c.new_values, [-(2n ** 63n), "ü", 2.5, new Uint8Array(), null]);
  assert.equal(hook.changes[1].command, "X");
  const back = toWireChangeSet(hook, wire);
  assert.deepEqual(back, wire);
});

Deno.test("exportPosition finds declarations", () => {
  const src = [
    "import x from './x.ts';",
    "export const afterApply = 5;",
    "function f() {}",
    "export { f as beforeApply };",
    "export default { resolveConflict: 1 };",
    "export async function Before() {}",
  ].join("\n");
  assert.deepEqual(exportPosition(src, "afterApply"), { line: 2, column: 14 });
  assert.deepEqual(exportPosition(src, "beforeApply"), { line: 4, column: 15 });
  assert.deepEqual(exportPosition(src, "default"), { line: 5, column: 1 });
  assert.deepEqual(exportPosition(src, "Before"), { line: 6, column: 23 });
  assert.deepEqual(exportPosition(src, "missing"), { line: 1, column: 1 });
});

Deno.test("checkExports reports every problem with file:line:column", () => {
  const ok = checkExports(
    { named: { beforeApply: "function" }, defaultType: "undefined", defaultHooks: {}, exports: [] },
    "",
    "f.ts",
  );
  assert.deepEqual([...ok], ["beforeApply"]);
  const viaDefault = checkExports(
    {
      named: {},
      defaultType: "object",
      defaultHooks: { afterApply: "function", resolveConflict: "function" },
      exports: [],
    },
    "",
    "f.ts",
  );
  assert.deepEqual([...viaDefault].sort(), ["afterApply", "resolveConflict"]);
  const fails = (info: Parameters<typeof checkExports>[0], src: string, re: RegExp) =>
    assert.throws(() => checkExports(info, src, "f.ts"), (e: Error) => {
      assert.ok(e instanceof HaError && e.code === "config");
      assert.match(e.message, re);
      return true;
    });
  fails(
    { named: {}, defaultType: "undefined", defaultHooks: {}, exports: ["helper"] },
    "",
    /^f\.ts: exports none of the hooks beforeApply, afterApply, resolveConflict$/,
  );
  fails(
    { named: { afterApply: "number" }, defaultType: "undefined", defaultHooks: {}, exports: [] },
    "\nexport const afterApply = 1;",
    /^f\.ts:2:14: export "afterApply" must be a function, got number$/,
  );
  fails(
    { named: {}, defaultType: "function", defaultHooks: {}, exports: [] },
    "export default function () {}",
    /^f\.ts:1:1: the default export must be an object/,
  );
  fails(
    { named: {}, defaultType: "object", defaultHooks: { beforeApply: "string" }, exports: [] },
    "export default { beforeApply: 'x' }",
    /default export's "beforeApply" must be a function, got string/,
  );
  fails(
    {
      named: { beforeApply: "function" },
      defaultType: "object",
      defaultHooks: { afterApply: "function" },
      exports: [],
    },
    "",
    /both by name and in the default export/,
  );
  fails(
    { named: {}, defaultType: "undefined", defaultHooks: {}, exports: ["Before", "after_apply"] },
    "export function Before() {}\nexport const after_apply = 1;",
    /f\.ts:1:17: export "Before" is not a hook; did you mean "beforeApply"\?\nf\.ts:2:14: export "after_apply" is not a hook; did you mean "afterApply"\?/,
  );
});
