/**
 * Reads on the main thread (src/engine/inline_reader.ts): they answer exactly what a reader
 * worker answers; one that outlasts the main thread's budget still returns its whole result (a
 * worker runs it again); statement timeouts and cancels stop them as they stop worker reads.
 * Needs vendor/ha_interrupt.so (`deno task test` builds it). No assertion depends on speed.
 */
import assert from "node:assert/strict";
import { type Engine, findInterruptExtension, openEngine } from "../../src/engine/mod.ts";
import { HaError } from "../../src/errors/mod.ts";
import { createLogger } from "../../src/log/mod.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };
const RUNAWAY =
  "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c";
/** Far longer than the main thread's budget (10 ms), short enough for a test. */
const LONG = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 2000000) " +
  "SELECT count(*) AS n, sum(x) AS s FROM c";

/** An engine; `inline`: with the extension (reads run on the main thread), else without. */
async function engine(inline: boolean): Promise<Engine> {
  const path = await findInterruptExtension();
  assert.ok(path, "vendor/ha_interrupt.so is missing: bash scripts/build-extension.sh");
  return await openEngine({
    dsns: [],
    memory: true,
    concurrentQueries: 16,
    logger: createLogger("error"),
    interrupt: inline ? path : null,
  });
}

Deno.test("$N placeholders bind the same on both read paths and in writes", opts, async () => {
  for (const inline of [true, false]) {
    const e = await engine(inline);
    try {
      const db = e.defaultDb;
      await db.execute([
        { sql: "CREATE TABLE t(id INTEGER PRIMARY KEY, s TEXT)" },
        { sql: "INSERT INTO t VALUES ($1, $2), ($3, $4)", params: [1, "one", 2, "two"] },
      ]);
      const rows = async (sql: string, params: unknown[]) => {
        const answers = [];
        // Twice: the first run learns the statement's kind, the second is a known read.
        for (let k = 0; k < 2; k++) {
          answers.push((await db.execute([{ sql, params: params as never }]))[0].rows);
        }
        assert.deepEqual(answers[0], answers[1]);
        return answers[0];
      };
      assert.deepEqual(await rows("SELECT id, s, $2 AS k FROM t WHERE id = $1", [2, "k"]), [
        [2n, "two", "k"],
      ]);
      // Out of order and repeated: bound by name, as before.
      assert.deepEqual(await rows("SELECT $2 AS a, $1 AS b, $2 AS c", ["x", "y"]), [
        ["y", "x", "y"],
      ]);
      await assert.rejects(
        db.execute([{ sql: "SELECT s FROM t WHERE id = $1", params: [1, 2] }]),
        /unknown parameter \$2/,
      );
      await assert.rejects(
        db.execute([{ sql: "SELECT s FROM t WHERE id = $1 AND s = $2", params: [1] }]),
        /missing parameter \$2/,
      );
    } finally {
      await e.close();
    }
  }
});

function stoppedBy(code: string) {
  return (e: unknown) => e instanceof HaError && e.code === code;
}

Deno.test("a read answers the same on the main thread as on a reader worker", opts, async () => {
  const engines = [await engine(true), await engine(false)];
  try {
    const answers = [];
    for (const e of engines) {
      const db = e.defaultDb;
      await db.execute([
        {
          sql:
            "CREATE TABLE t(id INTEGER PRIMARY KEY, i INTEGER, b BIGINT, r REAL, s TEXT, x BLOB, n)",
        },
        {
          sql: "INSERT INTO t VALUES (1, 42, ?, 1.5, 'héllo', x'00ff10', NULL), " +
            "(2, -7, -1, -0.25, '', x'', 3)",
          params: [2n ** 62n],
        },
      ]);
      const sql = "SELECT i, b, r, s, x, n, i * 2 AS twice FROM t WHERE id = ?";
      // Twice each: the first execution learns the statement's kind, the second is a known read.
      for (let k = 0; k < 2; k++) {
        for (const id of [1, 2]) answers.push((await db.execute([{ sql, params: [id] }]))[0]);
      }
      await db.execute([{ sql: "UPDATE t SET i = 43 WHERE id = 1" }]);
      answers.push((await db.execute([{ sql, params: [1] }]))[0]);
    }
    const half = answers.length / 2;
    assert.deepEqual(answers.slice(0, half), answers.slice(half));
    assert.deepEqual(answers[0].rows, [[
      42n,
      2n ** 62n,
      1.5,
      "héllo",
      new Uint8Array([0, 255, 16]),
      null,
      84n,
    ]]);
    assert.equal(answers[half - 1].rows[0][0], 43n, "a read sees the write acknowledged before it");
  } finally {
    for (const e of engines) await e.close();
  }
});

Deno.test("a read past the main thread's budget returns its whole result", opts, async () => {
  const e = await engine(true);
  try {
    const db = e.defaultDb;
    const want = [[2000000n, 2000001000000n]];
    for (const timeoutMs of [0, 60_000, 0]) {
      const [r] = await db.execute([{ sql: LONG }], { timeoutMs });
      assert.deepEqual(r.rows, want);
    }
    assert.deepEqual((await db.execute([{ sql: "SELECT 1 AS one" }]))[0].rows, [[1n]]);
  } finally {
    await e.close();
  }
});

Deno.test(
  "executeNow answers known reads at once and hands the rest to execute",
  opts,
  async () => {
    const e = await engine(true);
    try {
      const db = e.defaultDb;
      const point = { sql: "SELECT $1 * 2 AS twice", params: [21] };
      assert.equal(db.executeNow(point), 0, "an unknown statement does not run here");
      assert.deepEqual((await db.execute([point]))[0].rows, [[42n]]);
      const now = db.executeNow(point);
      assert.ok(typeof now !== "number");
      assert.deepEqual(now.rows, [[42n]]);
      assert.equal(db.executeNow({ sql: "CREATE TABLE t(a)" }), 0);
      // A known read past the budget: stopped here, then finished by `execute` in the time left.
      const upTo = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < ?) " +
        "SELECT count(*) AS n FROM c";
      assert.deepEqual((await db.execute([{ sql: upTo, params: [10] }]))[0].rows, [[10n]]);
      const long = { sql: upTo, params: [3_000_000] };
      const spentMs = db.executeNow(long, { timeoutMs: 60_000 });
      assert.equal(typeof spentMs, "number");
      assert.ok((spentMs as number) > 0, `ran here before its budget stopped it: ${spentMs}`);
      const [r] = await db.execute([long], { timeoutMs: 60_000, spentMs: spentMs as number });
      assert.deepEqual(r.rows, [[3_000_000n]]);
      await assert.rejects(
        db.execute([long], { timeoutMs: 60_000, spentMs: 59_999 }),
        (err: unknown) => err instanceof HaError && err.code === "timeout",
      );
    } finally {
      await e.close();
    }
  },
);

Deno.test(
  "statement timeouts and cancels stop reads that start on the main thread",
  opts,
  async () => {
    const e = await engine(true);
    try {
      const db = e.defaultDb;
      // Known reads (run once, quickly) start on the main thread; a huge bound makes them run away.
      const upTo = (alias: string) =>
        `WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < ?) SELECT count(*) AS ${alias} FROM c`;
      for (const alias of ["a", "b", "c"]) {
        assert.deepEqual((await db.execute([{ sql: upTo(alias), params: [10] }]))[0].rows, [[10n]]);
      }
      const huge = [1e15];
      // Within the budget (stopped on the main thread) and past it (on the worker that re-runs it).
      for (const [alias, timeoutMs] of [["a", 5], ["b", 200], ["b", 200]] as const) {
        await assert.rejects(
          db.execute([{ sql: upTo(alias), params: huge }], { timeoutMs }),
          (e) => stoppedBy("timeout")(e) && (e as Error).message.includes(`(${timeoutMs} ms;`),
        );
      }
      const early = new AbortController();
      early.abort();
      await assert.rejects(
        db.execute([{ sql: upTo("c"), params: huge }], { signal: early.signal }),
        stoppedBy("cancelled"),
      );
      // The abort fires once the main thread is free again: after the budget, on the worker.
      for (const delay of [0, 50, 0]) {
        const ac = new AbortController();
        const running = db.execute([{ sql: upTo("c"), params: huge }], { signal: ac.signal });
        setTimeout(() => ac.abort(), delay);
        await assert.rejects(running, stoppedBy("cancelled"));
      }
      await assert.rejects(
        db.execute([{ sql: RUNAWAY }], { timeoutMs: 100 }),
        stoppedBy("timeout"),
      );
      assert.deepEqual((await db.execute([{ sql: "SELECT 2 AS two" }]))[0].rows, [[2n]]);
    } finally {
      await e.close();
    }
  },
);

Deno.test("reads on the main thread after DDL report the new columns", opts, async () => {
  const e = await engine(true);
  try {
    const db = e.defaultDb;
    const columns = async () => (await db.execute([{ sql: "SELECT * FROM c" }]))[0].columns;
    await db.execute([{ sql: "CREATE TABLE c(a INTEGER)" }, { sql: "INSERT INTO c VALUES (1)" }]);
    for (let k = 0; k < 3; k++) {
      assert.deepEqual(await columns(), [{ name: "a", declType: "INTEGER" }]);
    }
    await db.execute([{ sql: "ALTER TABLE c RENAME COLUMN a TO b" }]);
    assert.deepEqual(await columns(), [{ name: "b", declType: "INTEGER" }]);
    await db.execute([{ sql: "ALTER TABLE c ADD COLUMN z TEXT" }]);
    const [both] = await Promise.all([columns(), columns()]);
    assert.deepEqual(both, [{ name: "b", declType: "INTEGER" }, { name: "z", declType: "TEXT" }]);
  } finally {
    await e.close();
  }
});

Deno.test(
  "a rollback-journal database: reads on the main thread see every write",
  opts,
  async () => {
    const dir = await Deno.makeTempDir({ prefix: "ha-inline-" });
    const e = await openEngine({
      dsns: [`file:${dir}/j.db?_journal=DELETE`],
      memory: false,
      concurrentQueries: 16,
      logger: createLogger("error"),
      interrupt: await findInterruptExtension(),
    });
    try {
      const db = e.defaultDb;
      await db.execute([{ sql: "CREATE TABLE j(id INTEGER PRIMARY KEY, v)" }]);
      const read = () => db.execute([{ sql: "SELECT count(*) FROM j" }]).then((r) => r[0].rows);
      for (let i = 1; i <= 20; i++) {
        const [, , counted] = await Promise.all([
          read(),
          db.execute([{ sql: "INSERT INTO j(v) VALUES (?)", params: [i] }]),
          read(),
        ]);
        assert.ok(counted[0][0] === BigInt(i - 1) || counted[0][0] === BigInt(i));
        assert.deepEqual(await read(), [[BigInt(i)]]);
      }
    } finally {
      await e.close();
      await Deno.remove(dir, { recursive: true });
    }
  },
);
