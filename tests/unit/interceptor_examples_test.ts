/**
 * The shipped example interceptors, each loaded from `interceptors/` and run through the real
 * host (esbuild bundle + sandbox worker).
 */
import assert from "node:assert/strict";
import { type InterceptorHost, loadInterceptor } from "../../src/interceptor/mod.ts";
import { captureLogger, type LogLine } from "../../src/interceptor/testing.ts";
import type { ChangeSet, Conflict, Resolution, SqlValue } from "../../interceptors/mod.ts";

const dir = new URL("../../interceptors/", import.meta.url);

async function load(name: string, logs: LogLine[] = []): Promise<InterceptorHost> {
  return await loadInterceptor(new URL(name, dir).pathname, {
    timeoutMs: 60_000, // the hooks are fast; a busy machine must not fail them
    logger: captureLogger(logs),
    query: () => Promise.reject(new Error("not used")),
    node: "node1",
  });
}

function changeSet(commands: string[]): ChangeSet {
  return {
    node: "node2",
    timestamp_ns: 0,
    hlc: 1,
    database: "ha.db",
    changes: commands.map((command) => ({
      database: "main",
      table: "",
      columns: [],
      pk_columns: [],
      operation: "SQL" as const,
      old_rowid: null,
      new_rowid: null,
      old_values: null,
      new_values: null,
      command,
    })),
  };
}

Deno.test("ignore_alter_table_errors: swallows errors of ALTER TABLE changesets only", async () => {
  const logs: LogLine[] = [];
  const host = await load("ignore_alter_table_errors.ts", logs);
  try {
    assert.deepEqual(host.hooks, ["afterApply"]);
    const err = { message: "duplicate column name: c" };
    // The original's test: Command "ALTER TABLE test", error "test" → nil.
    assert.equal(
      await host.afterApply(changeSet(["ALTER TABLE test"]), { message: "test" }, "d"),
      null,
    );
    assert.equal(
      await host.afterApply(changeSet(["CREATE TABLE x(a)", "  alter table t add c"]), err, "d"),
      null,
    );
    assert.equal(await host.afterApply(changeSet(["CREATE TABLE t(a)"]), err, "d"), err);
    assert.equal(await host.afterApply(changeSet(["ALTER TABLE t ADD c"]), null, "d"), null);
    const line = logs.findLast((l) => l.msg === "ignoring error of a replicated ALTER TABLE");
    assert.ok(line);
    assert.equal(line.error, "duplicate column name: c");
    assert.equal(host.failures, 0);
  } finally {
    await host.stop();
  }
});

/** A conflict on `t(id, name, version)` or any columns. */
function conflict(
  columns: string[],
  local: SqlValue[] | null,
  remote: SqlValue[] | null,
  opts: {
    op?: "INSERT" | "UPDATE" | "DELETE";
    old?: SqlValue[] | null;
    localVersion?: [number, string] | null;
    remoteVersion?: [number, string];
  } = {},
): Conflict {
  const op = opts.op ?? (remote === null ? "DELETE" : "UPDATE");
  const [lh, ln] = opts.localVersion === null ? [null, null] : opts.localVersion ?? [1, "node1"];
  const [rh, rn] = opts.remoteVersion ?? [2, "node2"];
  const cs: ChangeSet = { node: rn, timestamp_ns: 0, hlc: rh, changes: [] };
  return {
    table: "t",
    columns,
    pk_columns: ["id"],
    local: { values: local, hlc: lh, node: ln },
    remote: {
      operation: op,
      values: remote,
      old_values: op === "INSERT" ? null : opts.old ?? local,
      hlc: rh,
      node: rn,
    },
    change_index: 0,
    changeset: cs,
  };
}

Deno.test("keep_highest_version: larger version wins, ties and deletes default", async () => {
  const host = await load("keep_highest_version.ts");
  try {
    const cols = ["id", "name", "version"];
    const cases: [Conflict, Resolution][] = [
      [conflict(cols, [1n, "a", 5n], [1n, "b", 3n]), "local"],
      [conflict(cols, [1n, "a", 3n], [1n, "b", 5n]), "remote"],
      [conflict(cols, [1n, "a", 4n], [1n, "b", 4n]), undefined],
      [conflict(cols, [1n, "a", 2.5], [1n, "b", 2n]), "local"],
      [conflict(cols, [1n, "a", 2n ** 63n - 1n], [1n, "b", 2n ** 63n - 2n]), "local"],
      [conflict(cols, [1n, "a", null], [1n, "b", 1n]), undefined],
      [conflict(cols, [1n, "a", 9n], null), undefined],
      [conflict(cols, null, [1n, "b", 1n]), undefined],
      [conflict(["id", "name"], [1n, "a"], [1n, "b"]), undefined],
    ];
    const got = await host.resolveConflicts(cases.map(([c]) => c), "ha.db");
    assert.deepEqual(got, cases.map(([, r]) => r));
    assert.equal(host.stats().calls, 1);
    // Both sides of one conflict keep the same row.
    const [onA] = await host.resolveConflicts(
      [conflict(cols, [1n, "a", 7n], [1n, "b", 6n])],
      "d",
    );
    const [onB] = await host.resolveConflicts(
      [conflict(cols, [1n, "b", 6n], [1n, "a", 7n])],
      "d",
    );
    assert.deepEqual([onA, onB], ["local", "remote"]);
    assert.equal(host.failures, 0);
  } finally {
    await host.stop();
  }
});

/** Applies one resolution the way the applier would (LWW for `undefined`). */
function outcome(c: Conflict, r: Resolution): SqlValue[] | null {
  if (r === "local") return c.local.values;
  if (r === "remote") return c.remote.values;
  if (r !== undefined) return r.values;
  const remoteNewer = c.local.hlc === null ||
    c.remote.hlc > c.local.hlc ||
    (c.remote.hlc === c.local.hlc && c.remote.node > (c.local.node ?? ""));
  return remoteNewer ? c.remote.values : c.local.values;
}

Deno.test("merge_counters: concurrent increments add up and nodes converge", async () => {
  const host = await load("merge_counters.ts");
  try {
    const cols = ["id", "label", "count"];
    // Start: [1, "x", 10] everywhere. A (hlc 100): label "a", count 11. B (hlc 200): "b", 12.
    const base: SqlValue[] = [1n, "x", 10n];
    const a: SqlValue[] = [1n, "a", 11n];
    const b: SqlValue[] = [1n, "b", 12n];
    const onA = conflict(cols, a, b, {
      old: base,
      localVersion: [100, "nodeA"],
      remoteVersion: [200, "nodeB"],
    });
    const onB = conflict(cols, b, a, {
      old: base,
      localVersion: [200, "nodeB"],
      remoteVersion: [100, "nodeA"],
    });
    const [ra, rb] = await host.resolveConflicts([onA, onB], "ha.db");
    assert.deepEqual(outcome(onA, ra), [1n, "b", 13n]); // label: newer write (B); count: 10+1+2
    assert.deepEqual(outcome(onB, rb), [1n, "b", 13n]);

    // Node C sees A's change first (no conflict: local = old), then B's (conflict).
    const onC = conflict(cols, a, b, {
      old: base,
      localVersion: [100, "nodeA"],
      remoteVersion: [200, "nodeB"],
    });
    const [rc] = await host.resolveConflicts([onC], "ha.db");
    assert.deepEqual(outcome(onC, rc), [1n, "b", 13n]);

    // Concurrent inserts of the same key: the counts add up.
    const ins = conflict(cols, [2n, "p", 1n], [2n, "q", 1n], {
      op: "INSERT",
      localVersion: [300, "nodeA"],
      remoteVersion: [299, "nodeB"],
    });
    const [ri] = await host.resolveConflicts([ins], "d");
    assert.deepEqual(outcome(ins, ri), [2n, "p", 2n]);

    // Defaults: remote delete, local delete, no counter column, non-INTEGER counter.
    const defaults = await host.resolveConflicts([
      conflict(cols, a, null, { old: base }),
      conflict(cols, null, b, { old: base }),
      conflict(["id", "label"], [1n, "a"], [1n, "b"], { old: [1n, "x"] }),
      conflict(cols, [1n, "a", 1.5], [1n, "b", 2n], { old: [1n, "x", 1n] }),
    ], "d");
    assert.deepEqual(defaults, [undefined, undefined, undefined, undefined]);

    // Several counter columns (case-insensitive), huge values stay exact.
    const multi = conflict(["id", "Count", "counter"], [1n, 2n ** 62n, 5n], [
      1n,
      2n ** 62n + 3n,
      4n,
    ], {
      old: [1n, 2n ** 62n, 5n],
      localVersion: [1, "nodeA"],
      remoteVersion: [2, "nodeB"],
    });
    // Deltas +3 and −1 are added to the local values, exactly (no float rounding).
    const [rm] = await host.resolveConflicts([multi], "d");
    assert.deepEqual(rm, { values: [1n, 2n ** 62n + 3n, 4n] });
    assert.equal(host.failures, 0);
  } finally {
    await host.stop();
  }
});
