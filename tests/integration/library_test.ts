/**
 * The library (`mod.ts`) in this process, with Deno's test sanitizers ON: two embedded nodes (one
 * running a real nats-server child) replicate to each other, values stay exact, transactions
 * commit or roll back, followers refuse writes, and `close()` leaves no worker, timer, socket or
 * child process behind.
 */
import assert from "node:assert/strict";
import { HaError, openDatabase } from "../../mod.ts";
import { descendants, freePort, waitFor } from "./helpers/cluster.ts";

/** Inodes of the TCP sockets this process holds (Linux `/proc`). */
function tcpSockets(): Set<string> {
  const inodes = new Set<string>();
  for (const f of ["tcp", "tcp6"]) {
    for (const line of Deno.readTextFileSync(`/proc/net/${f}`).split("\n").slice(1)) {
      const inode = line.trim().split(/\s+/)[9];
      if (inode) inodes.add(inode);
    }
  }
  const mine = new Set<string>();
  for (const fd of Deno.readDirSync("/proc/self/fd")) {
    try {
      const m = /^socket:\[(\d+)\]$/.exec(Deno.readLinkSync(`/proc/self/fd/${fd.name}`));
      if (m && inodes.has(m[1])) mine.add(m[1]);
    } catch { /* closed meanwhile */ }
  }
  return mine;
}

/**
 * What the sanitizers cannot see (engine worker threads, a nats-server child, sockets of
 * node-compat streams): waits until none is left since `before` (a terminated worker's thread
 * ends shortly after `terminate()`).
 */
async function assertNothingLeft(before: Set<string>): Promise<void> {
  let left: unknown[] = [];
  await waitFor("nothing left", () => {
    const threads = [...Deno.readDirSync("/proc/self/task")].map((t) =>
      Deno.readTextFileSync(`/proc/self/task/${t.name}/comm`).trim()
    );
    left = [
      ...threads.filter((n) => n.startsWith("worker-")),
      ...descendants(Deno.pid).map((pid) => `child ${pid}`),
      ...[...tcpSockets()].filter((s) => !before.has(s)).map((s) => `socket ${s}`),
    ];
    return left.length === 0;
  }).catch((e) => {
    throw new Error(`${e.message}: ${left.join(", ")}`);
  });
}

Deno.test("library: two in-process nodes replicate exact values; close leaks nothing", async () => {
  const before = tcpSockets();
  const dir = await Deno.makeTempDir({ prefix: "ha-lib-" });
  const natsPort = freePort();
  const a = await openDatabase({
    path: ":memory:",
    name: "lib-a",
    nats: { port: natsPort, storeDir: `${dir}/nats` },
    interceptor: "interceptors/keep_highest_version.ts", // its sandbox process must end too
    logLevel: "error",
  });
  const b = await openDatabase({
    path: `${dir}/ha.db`,
    name: "lib-b",
    replicationUrl: `nats://127.0.0.1:${natsPort}`,
    asyncReplication: { storeDir: `${dir}/outbox` },
    logLevel: "error",
  });
  try {
    assert.equal(a.database, "ha.db");
    assert.equal(b.database, "ha.db");
    await a.query("CREATE TABLE t(id INTEGER PRIMARY KEY, big INTEGER, r REAL, s TEXT, data BLOB)");
    const big = 2n ** 62n + 1n;
    const ins = await a.query("INSERT INTO t(id, big, r, s, data) VALUES (?, ?, ?, ?, ?)", [
      1,
      big,
      1.5,
      "héllo",
      new Uint8Array([0, 1, 255]),
    ]);
    assert.equal(ins.rowsAffected, 1);
    assert.equal(ins.lastInsertId, 1);
    // Named parameters in the HTTP API's forms: with or without prefix, { base64 } for a BLOB.
    await a.query("INSERT INTO t(id, big, s, data) VALUES (:id, @big, $s, :data)", {
      id: 2,
      "@big": -(2n ** 63n),
      s: "two",
      ":data": { base64: "AAE=" },
    });

    const want = [
      [1, big, 1.5, "héllo", new Uint8Array([0, 1, 255])],
      [2, -(2n ** 63n), null, "two", new Uint8Array([0, 1])],
    ];
    const sql = "SELECT id, big, r, s, data FROM t ORDER BY id";
    assert.deepEqual((await a.query(sql)).rows, want);
    await waitFor("b has a's rows", async () => (await b.query(sql)).rows.length === 2);
    const got = await b.query(sql);
    assert.deepEqual(got.columns, ["id", "big", "r", "s", "data"]);
    assert.deepEqual(got.rows, want);

    // A transaction on b: committed as one, replicated to a.
    const id = await b.transaction(async (tx) => {
      const r = await tx.query("INSERT INTO t(id, s) VALUES (3, 'tx') RETURNING id");
      await tx.query("UPDATE t SET s = s || '!' WHERE id = ?", [r.rows[0][0]]);
      assert.deepEqual((await tx.query("SELECT s FROM t WHERE id = 3")).rows, [["tx!"]]);
      return r.rows[0][0];
    });
    assert.equal(id, 3);
    await waitFor(
      "a has b's transaction",
      async () => (await a.query("SELECT s FROM t WHERE id = 3")).rows[0]?.[0] === "tx!",
    );

    // A callback that throws rolls everything back; the error comes out as it was.
    await assert.rejects(
      b.transaction(async (tx) => {
        await tx.query("INSERT INTO t(id, s) VALUES (4, 'gone')");
        throw new Error("changed my mind");
      }),
      /changed my mind/,
    );
    assert.deepEqual((await b.query("SELECT count(*) FROM t WHERE id = 4")).rows, [[0]]);
    await assert.rejects(
      b.transaction((tx) => tx.query("COMMIT")),
      (e) => e instanceof HaError && /COMMIT is not allowed here/.test(e.message),
    );

    // Errors are HaErrors with a code.
    await assert.rejects(
      a.query("INSERT INTO t(id) VALUES (1)"),
      (e) => e instanceof HaError && e.code === "constraint",
    );
    await assert.rejects(
      a.query("SELECT ?", [{ nope: 1 } as unknown as string]),
      (e) => e instanceof HaError && e.code === "bad_request" && /parameter 1/.test(e.message),
    );
  } finally {
    await b.close();
    await a.close();
    await Deno.remove(dir, { recursive: true });
  }
  await assert.rejects(
    a.query("SELECT 1"),
    (e) => e instanceof HaError && /closed/.test(e.message),
  );
  await assertNothingLeft(before);
});

Deno.test("library: bigints option, read-only follower, invalid options", async () => {
  const before = tcpSockets();
  const dir = await Deno.makeTempDir({ prefix: "ha-lib-" });
  const path = `${dir}/app.db`;
  {
    await using db = await openDatabase({ path, name: "lib-w", bigints: true, logLevel: "error" });
    await db.query("CREATE TABLE t(a INTEGER)");
    const r = await db.query("INSERT INTO t VALUES (5) RETURNING a");
    assert.deepEqual(r.rows, [[5n]], "bigints: every INTEGER as bigint");
    assert.equal(r.lastInsertId, 1n);
  }
  {
    await using follower = await openDatabase({
      path,
      name: "lib-f",
      readOnly: true,
      logLevel: "error",
    });
    assert.equal(follower.readOnly, true);
    assert.deepEqual((await follower.query("SELECT a FROM t")).rows, [[5]]);
    await assert.rejects(
      follower.query("INSERT INTO t VALUES (6)"),
      (e) => e instanceof HaError && /^read-only node: INSERT refused/.test(e.message),
    );
    // Reads in a transaction are fine, a write in it is refused.
    await follower.transaction(async (tx) => {
      assert.deepEqual((await tx.query("SELECT count(*) FROM t")).rows, [[1]]);
      await assert.rejects(tx.query("DELETE FROM t"), /read-only node: DELETE refused/);
    });
  }
  await assert.rejects(
    openDatabase({ path: ":memory:", rowIdentify: "bogus" as "pk" }),
    (e) => e instanceof HaError && e.code === "config" && /--row-identify/.test(e.message),
  );
  await assert.rejects(
    openDatabase({ path: "" }),
    (e) => e instanceof HaError && e.code === "config" && /"path"/.test(e.message),
  );
  await Deno.remove(dir, { recursive: true });
  await assertNothingLeft(before);
});
