/**
 * Memory databases (`-m`) in WAL mode: an open write transaction (psql style, over the
 * PostgreSQL wire) never makes HTTP reads wait; the RAM-backed file is gone after a stop.
 */
import assert from "node:assert/strict";
import pg from "pg";
import { freePort, startHa } from "./helpers/ha.ts";

const opts = { sanitizeResources: false, sanitizeOps: false };

async function post(url: string, sql: string): Promise<{ status: number; body: unknown }> {
  const r = await fetch(url, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ sql }),
  });
  return { status: r.status, body: await r.json() };
}

/** The RAM-backed directories of memory databases of process `pid`. */
function memoryDirs(pid: number): string[] {
  const out: string[] = [];
  for (const base of ["/dev/shm", Deno.env.get("TMPDIR") ?? "/tmp"]) {
    try {
      for (const e of Deno.readDirSync(base)) {
        if (e.name.startsWith(`ha-mem-${pid}-`)) out.push(`${base}/${e.name}`);
      }
    } catch { /* no such base */ }
  }
  return out;
}

Deno.test("memory mode: reads do not wait for an open write transaction", opts, async () => {
  const pgPort = freePort();
  const ha = await startHa({
    args: ["-n", "memwal", "-m", "--nats-port", "0", "--pg-port", String(pgPort)],
  });
  const client = new pg.Client({
    host: "127.0.0.1",
    port: pgPort,
    user: "ha",
    password: "ha",
    database: "ha",
  });
  try {
    assert.equal(
      (await post(ha.url, "CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)")).status,
      200,
    );
    assert.equal((await post(ha.url, "INSERT INTO t(id, v) VALUES (1, 'committed')")).status, 200);

    await client.connect();
    await client.query("BEGIN");
    await client.query("INSERT INTO t(id, v) VALUES (2, 'pending')");

    // With the memdb VFS (no WAL) this read waited for the busy timeout and got 503.
    const read = await post(ha.url, "SELECT id, v FROM t ORDER BY id");
    assert.equal(read.status, 200, JSON.stringify(read.body));
    assert.deepEqual((read.body as { rows: unknown[][] }).rows, [[1, "committed"]]);

    await client.query("COMMIT");
    const dirs = memoryDirs(ha.pid);
    assert.equal(dirs.length, 1, `one memory directory for ha.db, got ${dirs}`);
    const after = await post(ha.url, "SELECT count(*) FROM t");
    assert.deepEqual((after.body as { rows: unknown[][] }).rows, [[2]]);
  } finally {
    await client.end().catch(() => {});
    await ha.stop();
  }
  assert.deepEqual(memoryDirs(ha.pid), [], "the memory database's files are removed at stop");
});
