/**
 * Snapshots against a real nats-server (object store) and an in-process engine: take, latest,
 * open, restore, skip when unchanged, corrupt objects refused with the target untouched, atomic
 * replacement of a file database, periodic snapshots, restore at start, and the HTTP routes.
 */
import assert from "node:assert/strict";
import { DatabaseSync } from "node:sqlite";
import { jetstream } from "@nats-io/jetstream";
import { Objm } from "@nats-io/obj";
import { headers } from "@nats-io/transport-node";
import type { Engine } from "../../src/engine/mod.ts";
import { HaError } from "../../src/errors/mod.ts";
import { fileDigest } from "../../src/snapshot/mod.ts";
import { BUCKET, SnapshotFixture, STREAM } from "./helpers/snapshot_fixture.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };
async function fill(engine: Engine, id: string, rows: number, from = 0): Promise<void> {
  const db = engine.get(id);
  await db.execute([{
    sql: "CREATE TABLE IF NOT EXISTS t(id INTEGER PRIMARY KEY, v TEXT, b BLOB)",
  }]);
  await db.execute([{
    sql: `WITH RECURSIVE s(i) AS (SELECT ${from + 1} UNION ALL SELECT i + 1 FROM s WHERE i < ${
      from + rows
    }) INSERT INTO t SELECT i, 'row ' || i, randomblob(64) FROM s`,
  }]);
}

/** Runs the sqlite3 CLI (an independent reader of the file). */
async function sqlite3(path: string, sql: string): Promise<string> {
  const out = await new Deno.Command("sqlite3", { args: [path, sql], stdout: "piped" }).output();
  assert.equal(out.code, 0, `sqlite3 failed on ${path}`);
  return new TextDecoder().decode(out.stdout).trim();
}

async function readAll(s: ReadableStream<Uint8Array>): Promise<Uint8Array> {
  return new Uint8Array(await new Response(s).arrayBuffer());
}

async function listDir(dir: string): Promise<string[]> {
  const names: string[] = [];
  for await (const e of Deno.readDir(dir)) names.push(e.name);
  return names.sort();
}

/** Rewrites an object's metadata message (digest, size...) to simulate a damaged object. */
async function tamperMeta(
  f: SnapshotFixture,
  name: string,
  change: (info: Record<string, unknown>) => void,
): Promise<void> {
  const os = await new Objm(f.client.nc).open(BUCKET);
  const info = await os.info(name);
  assert.ok(info);
  const raw: Record<string, unknown> = {
    name: info.name,
    description: info.description,
    bucket: info.bucket,
    nuid: info.nuid,
    size: info.size,
    chunks: info.chunks,
    digest: info.digest,
    mtime: info.mtime,
    metadata: info.metadata,
    options: info.options,
    headers: { seq: [info.metadata?.seq ?? "0"], node: [info.metadata?.node ?? ""] },
  };
  change(raw);
  const h = headers();
  h.set("Nats-Rollup", "sub");
  const subj = `$O.${BUCKET}.M.${btoa(name).replaceAll("+", "-").replaceAll("/", "_")}`;
  await jetstream(f.client.nc).publish(subj, JSON.stringify(raw), { headers: h });
}

Deno.test(
  "snapshot: take, latest, open, restore round trip; skipped when unchanged",
  opts,
  async () => {
    const f = await SnapshotFixture.start();
    try {
      const path = `${f.dir}/app.db`;
      const engine = await f.engine([path]);
      await fill(engine, "app.db", 2000);
      const snaps = f.snapshotter();

      assert.equal(await snaps.latest("app.db"), null);
      assert.equal(await snaps.open("app.db"), null);
      assert.equal(await snaps.restore("app.db", `${f.dir}/none.db`), null);

      const takenAfter = Date.now();
      const r1 = await snaps.take(engine.get("app.db"));
      assert.equal(r1.database, "app.db");
      assert.equal(r1.skipped, false);
      assert.equal(r1.sequence, 0, "no _ha_progress table and no seqOf: sequence 0");
      assert.ok(r1.size > 100_000);

      const info = await snaps.latest("app.db");
      assert.ok(info);
      assert.equal(info.database, "app.db");
      assert.equal(info.size, r1.size);
      assert.equal(info.node, "node1");
      assert.match(info.digest, /^SHA-256=/);
      const created = Date.parse(info.created);
      assert.ok(created >= takenAfter - 1000 && created <= Date.now() + 1000, info.created);

      // Unchanged: skipped, whether or not the file fingerprint short-cut applies.
      const r2 = await snaps.take(engine.get("app.db"));
      assert.deepEqual(r2, { ...r1, skipped: true, reason: "unchanged" });
      await new Promise((r) => setTimeout(r, 150));
      const r3 = await snaps.take(engine.get("app.db"));
      assert.equal(r3.skipped, true);

      // open: the bytes are a valid SQLite file with the data
      const opened = await snaps.open("app.db");
      assert.ok(opened);
      const bytes = await readAll(opened.stream);
      assert.equal(bytes.length, info.size);
      const copy = `${f.dir}/downloaded.db`;
      await Deno.writeFile(copy, bytes);
      assert.equal(await sqlite3(copy, "SELECT count(*), sum(length(b)) FROM t"), "2000|128000");
      assert.equal(await fileDigest(copy), info.digest.replace(/=+$/, ""));

      // restore into a new file
      const target = `${f.dir}/restored.db`;
      const restored = await snaps.restore("app.db", target);
      assert.deepEqual(restored, info);
      assert.equal(await sqlite3(target, "PRAGMA integrity_check"), "ok");
      assert.equal(await sqlite3(target, "SELECT count(*), max(v) FROM t"), "2000|row 999");
      assert.deepEqual(await listDir(f.dir), [
        "app.db",
        "app.db-shm",
        "app.db-wal",
        "downloaded.db",
        "nats",
        "restored.db",
      ]);

      // a change: a new snapshot
      await fill(engine, "app.db", 10, 2000);
      const r4 = await snaps.take(engine.get("app.db"));
      assert.equal(r4.skipped, false);
      await snaps.restore("app.db", target);
      assert.equal(await sqlite3(target, "SELECT count(*) FROM t"), "2010");
      assert.ok(f.lines.some((l) => JSON.parse(l).msg === "snapshot stored"));
    } finally {
      await f.close();
    }
  },
);

Deno.test(
  "snapshot: the sequence comes from the copy; older ones do not replace newer",
  opts,
  async () => {
    const f = await SnapshotFixture.start();
    try {
      const engine = await f.engine([`${f.dir}/seq.db`], true);
      const db = engine.get("seq.db");
      await fill(engine, "seq.db", 100);
      // What replication keeps inside the database (see replication/writer_plugin.ts).
      await db.execute([
        { sql: "CREATE TABLE _ha_progress(subject TEXT PRIMARY KEY, seq INTEGER NOT NULL)" },
        { sql: "INSERT INTO _ha_progress VALUES ('ha_replication.seq_db', 42)" },
      ]);
      let seqOfCalls = 0;
      let seqOfValue = 7;
      const snaps = f.snapshotter({
        subjectOf: (id) => `${STREAM}.${id.replaceAll(".", "_")}`,
        seqOf: () => {
          seqOfCalls++;
          return seqOfValue;
        },
      });
      const r1 = await snaps.take(db);
      assert.equal(r1.sequence, 42, "the larger of the copy's _ha_progress row and seqOf");
      assert.equal(seqOfCalls, 1);
      assert.equal((await snaps.latest("seq.db"))?.sequence, 42);

      // Another node already stored a later one: ours (older) is not uploaded.
      await db.execute([{ sql: "UPDATE _ha_progress SET seq = 40" }]);
      const r2 = await snaps.take(db);
      assert.deepEqual(r2, { ...r1, skipped: true, reason: "older" });

      await db.execute([{ sql: "UPDATE _ha_progress SET seq = 50" }]);
      const r3 = await snaps.take(db);
      assert.equal(r3.skipped, false);
      assert.equal(r3.sequence, 50);

      // Same content, later sequence (e.g. own changesets acknowledged): metadata only.
      seqOfValue = 55;
      const r4 = await snaps.take(db);
      assert.deepEqual(r4, { ...r3, sequence: 55, skipped: true, reason: "unchanged" });
      const l4 = await snaps.latest("seq.db");
      assert.equal(l4?.sequence, 55);
      assert.equal((await snaps.restore("seq.db", `${f.dir}/r4.db`))?.sequence, 55);
      assert.equal(
        await sqlite3(`${f.dir}/r4.db`, "SELECT subject, seq FROM _ha_progress"),
        "ha_replication.seq_db|55",
        "the restored file records the snapshot's sequence for replication to resume after it",
      );
      seqOfValue = 7;

      // Without the table: seqOf.
      const other = await f.engine([`${f.dir}/plain.db`], true);
      await fill(other, "plain.db", 10);
      assert.equal((await snaps.take(other.get("plain.db"))).sequence, 7);
      // seqOf ahead of the copy's row (own changesets are acknowledged without a row update).
      seqOfValue = 60;
      await fill(engine, "seq.db", 1, 100);
      assert.equal((await snaps.take(db)).sequence, 60);
    } finally {
      await f.close();
    }
  },
);

Deno.test(
  "snapshot: corrupt or truncated objects are refused, the target untouched",
  opts,
  async () => {
    const f = await SnapshotFixture.start();
    try {
      const engine = await f.engine([`${f.dir}/c.db`], true);
      await fill(engine, "c.db", 3000);
      const snaps = f.snapshotter();
      await snaps.take(engine.get("c.db"));

      const target = `${f.dir}/target.db`;
      const t = new DatabaseSync(target);
      t.exec("CREATE TABLE keep(x); INSERT INTO keep VALUES ('original')");
      t.close();
      const before = await Deno.readFile(target);
      const untouched = async () => {
        assert.deepEqual(await Deno.readFile(target), before);
        assert.deepEqual(await listDir(f.dir), ["nats", "target.db"], "no temp file left");
      };

      // 1. digest mismatch
      await tamperMeta(f, "c.db", (i) => i.digest = "SHA-256=" + "A".repeat(43) + "=");
      await assert.rejects(
        snaps.restore("c.db", target),
        (e: unknown) =>
          e instanceof HaError && e.code === "unavailable" && /digest mismatch/.test(e.message),
      );
      await untouched();
      // A download for HTTP is verified before anything is served: refused.
      await assert.rejects(snaps.open("c.db"), /digest mismatch/);

      // 2. size larger than the content (truncated object)
      await snaps.take(engine.get("c.db")).catch(() => {});
      const os = await new Objm(f.client.nc).open(BUCKET);
      const good = await os.info("c.db");
      await tamperMeta(f, "c.db", (i) => {
        i.digest = good!.digest;
        i.size = (i.size as number) + 4096;
      });
      await assert.rejects(snaps.restore("c.db", target), /corrupt: got \d+ bytes/);
      await untouched();

      // 3. consistent object (digest fine) whose content is not a SQLite database
      await os.putBlob({ name: "c.db" }, new TextEncoder().encode("not a database".repeat(100)));
      await assert.rejects(snaps.restore("c.db", target), /not a SQLite database/);
      await untouched();

      // 4. a SQLite file cut short (valid digest of the truncated bytes)
      const tmp = await Deno.makeTempDir();
      await engine.get("c.db").backupTo(`${tmp}/c.db`);
      const bytes = await Deno.readFile(`${tmp}/c.db`);
      await Deno.remove(tmp, { recursive: true });
      await os.putBlob({ name: "c.db" }, bytes.subarray(0, bytes.length - 8192));
      await assert.rejects(snaps.restore("c.db", target), /truncated/);
      await untouched();

      // 5. pages damaged in the middle (header intact): quick_check finds it
      const damaged = bytes.slice();
      damaged.fill(0x5a, 4096 * 3, 4096 * 6);
      await os.putBlob({ name: "c.db" }, damaged);
      await assert.rejects(snaps.restore("c.db", target), /is corrupt: quick_check/);
      await untouched();
    } finally {
      await f.close();
    }
  },
);

Deno.test("snapshot: restore replaces a WAL database atomically", opts, async () => {
  const f = await SnapshotFixture.start();
  try {
    const engine = await f.engine([`${f.dir}/src.db`], true);
    await fill(engine, "src.db", 500);
    const snaps = f.snapshotter({ nodeName: "other" });
    await snaps.take(engine.get("src.db"));

    // The target has committed data still in its WAL, and a stray -journal.
    const target = `${f.dir}/dst/src.db`;
    await Deno.mkdir(`${f.dir}/dst`);
    const keeper = new DatabaseSync(target);
    keeper.exec("PRAGMA journal_mode=WAL; PRAGMA wal_autocheckpoint=0");
    keeper.exec("CREATE TABLE old(x); INSERT INTO old VALUES (1), (2)");
    // Simulate a crash: copy the files while the WAL still holds the data.
    const crashed = `${f.dir}/crashed`;
    await Deno.mkdir(crashed);
    for (const s of ["", "-wal"]) await Deno.copyFile(target + s, `${crashed}/src.db${s}`);
    keeper.close();
    await Deno.remove(`${f.dir}/dst`, { recursive: true });
    await Deno.rename(crashed, `${f.dir}/dst`);
    assert.ok((await Deno.stat(target + "-wal")).size > 0);

    const info = await snaps.restore("src.db", target);
    assert.equal(info?.node, "other");
    assert.deepEqual(await listDir(`${f.dir}/dst`), ["src.db"], "WAL and temp files gone");
    assert.equal(await sqlite3(target, "SELECT count(*) FROM t"), "500");
    assert.equal(
      await sqlite3(target, "SELECT count(*) FROM sqlite_schema WHERE name = 'old'"),
      "0",
    );
    assert.equal(await sqlite3(target, "PRAGMA integrity_check"), "ok");
  } finally {
    await f.close();
  }
});

Deno.test("snapshot: another node's outbox is not restored", opts, async () => {
  const f = await SnapshotFixture.start();
  try {
    const engine = await f.engine([`${f.dir}/o.db`], true);
    await fill(engine, "o.db", 5);
    await engine.get("o.db").execute([
      { sql: "CREATE TABLE _ha_outbox(id INTEGER PRIMARY KEY, csid TEXT, data TEXT)" },
      { sql: "INSERT INTO _ha_outbox(csid, data) VALUES ('a', '{}'), ('b', '{}')" },
    ]);
    await f.snapshotter({ nodeName: "node1" }).take(engine.get("o.db"));
    await f.snapshotter({ nodeName: "node1" }).restore("o.db", `${f.dir}/same.db`);
    assert.equal(await sqlite3(`${f.dir}/same.db`, "SELECT count(*) FROM _ha_outbox"), "2");
    await f.snapshotter({ nodeName: "node2" }).restore("o.db", `${f.dir}/other.db`);
    assert.equal(await sqlite3(`${f.dir}/other.db`, "SELECT count(*) FROM _ha_outbox"), "0");
    assert.equal(await sqlite3(`${f.dir}/other.db`, "SELECT count(*) FROM t"), "5");
  } finally {
    await f.close();
  }
});

Deno.test("snapshot: periodic snapshots", opts, async () => {
  const f = await SnapshotFixture.start();
  try {
    const engine = await f.engine([`${f.dir}/p1.db`, `${f.dir}/p2.db`]);
    await fill(engine, "p1.db", 10);
    await fill(engine, "p2.db", 20);
    const snaps = f.snapshotter();
    snaps.startInterval(engine, 200);
    const waitFor = async (what: string, cond: () => Promise<boolean>) => {
      const deadline = Date.now() + 10_000;
      while (!(await cond())) {
        if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
        await new Promise((r) => setTimeout(r, 100));
      }
    };
    await waitFor(
      "first snapshots",
      async () => (await snaps.latest("p1.db")) !== null && (await snaps.latest("p2.db")) !== null,
    );
    const first = (await snaps.latest("p1.db"))!;
    await fill(engine, "p1.db", 5, 10);
    await waitFor(
      "a new snapshot after a write",
      async () => (await snaps.latest("p1.db"))!.digest !== first.digest,
    );
    const target = `${f.dir}/check.db`;
    await snaps.restore("p1.db", target);
    assert.equal(await sqlite3(target, "SELECT count(*) FROM t"), "15");
    await snaps.stop();
    await snaps.stop();
    const after = (await snaps.latest("p1.db"))!;
    await fill(engine, "p1.db", 5, 15);
    await new Promise((r) => setTimeout(r, 600));
    assert.equal((await snaps.latest("p1.db"))!.digest, after.digest, "no snapshot after stop");
    await assert.rejects(snaps.take(engine.get("p1.db")), /stopped/);
  } finally {
    await f.close();
  }
});

Deno.test("snapshot: restoreAtStart for file and memory databases", opts, async () => {
  const f = await SnapshotFixture.start();
  try {
    // A first node with data and progress.
    const a = await f.engine([`${f.dir}/a/file.db`, `${f.dir}/a/mem.db`].map((p) => {
      Deno.mkdirSync(`${f.dir}/a`, { recursive: true });
      return p;
    }));
    for (const id of ["file.db", "mem.db"]) {
      await fill(a, id, 100);
      await a.get(id).execute([
        { sql: "CREATE TABLE _ha_progress(subject TEXT PRIMARY KEY, seq INTEGER NOT NULL)" },
        { sql: "INSERT INTO _ha_progress VALUES ('s', 99)" },
      ]);
    }
    const snapsA = f.snapshotter({ nodeName: "a" });
    for (const id of ["file.db", "mem.db"]) await snapsA.take(a.get(id));

    // A new node: an existing but older file database, a memory database, one without snapshot.
    const dir = `${f.dir}/b`;
    await Deno.mkdir(dir);
    const stale = new DatabaseSync(`${dir}/file.db`);
    stale.exec("PRAGMA journal_mode=WAL; CREATE TABLE stale(x)");
    stale.close();
    const snapsB = f.snapshotter({ nodeName: "b" });
    const fileRestore = await snapsB.restoreAtStart(
      [`file:${dir}/file.db?_busy_timeout=900`, `${dir}/new.db`],
      false,
    );
    assert.deepEqual([...fileRestore.sequences], [["file.db", 99]]);
    const b = await f.engine(fileRestore.dsns);
    await fileRestore.cleanup();
    assert.deepEqual(b.ids(), ["file.db", "new.db"]);
    const [cnt] = await b.get("file.db").execute([{ sql: "SELECT count(*) FROM t" }]);
    assert.deepEqual(cnt.rows, [[100n]]);
    const [bt] = await b.get("file.db").execute([{ sql: "PRAGMA busy_timeout" }]);
    assert.deepEqual(bt.rows, [[900n]], "DSN parameters survive");

    // Memory: restored into a temp file that the engine loads.
    const memRestore = await snapsB.restoreAtStart([`${dir}/mem.db`], true);
    assert.deepEqual([...memRestore.sequences], [["mem.db", 99]]);
    assert.notEqual(memRestore.dsns[0], `${dir}/mem.db`);
    const m = await f.engine(memRestore.dsns, true);
    await memRestore.cleanup();
    assert.deepEqual(m.ids(), ["mem.db"]);
    const [mc] = await m.get("mem.db").execute([{ sql: "SELECT count(*) FROM t" }]);
    assert.deepEqual(mc.rows, [[100n]]);
    await assert.rejects(Deno.stat(memRestore.dsns[0].slice(5)), Deno.errors.NotFound);

    // A local file that already reflects the snapshot's sequence (or later) is kept.
    await b.get("file.db").execute([{ sql: "UPDATE _ha_progress SET seq = 120" }]);
    await b.get("file.db").execute([{ sql: "INSERT INTO t(v) VALUES ('local')" }]);
    await b.close();
    const again = await snapsB.restoreAtStart([`${dir}/file.db`], false);
    assert.equal(again.sequences.size, 0);
    assert.equal(await sqlite3(`${dir}/file.db`, "SELECT count(*) FROM t"), "101");

    // An older local file whose outbox still holds unpublished changesets is kept too.
    const pendingDb = new DatabaseSync(`${dir}/file.db`);
    pendingDb.exec("UPDATE _ha_progress SET seq = 10");
    pendingDb.exec("CREATE TABLE IF NOT EXISTS _ha_outbox(id INTEGER PRIMARY KEY, csid, data)");
    pendingDb.exec("INSERT INTO _ha_outbox(csid, data) VALUES ('x', '{}')");
    pendingDb.close();
    const kept = await snapsB.restoreAtStart([`${dir}/file.db`], false);
    assert.equal(kept.sequences.size, 0);
    assert.equal(await sqlite3(`${dir}/file.db`, "SELECT count(*) FROM t"), "101");
    assert.ok(f.lines.some((l) => /changesets not yet published/.test(l)));
  } finally {
    await f.close();
  }
});

Deno.test("snapshot: HTTP routes", opts, async () => {
  const f = await SnapshotFixture.start();
  try {
    const engine = await f.engine([`${f.dir}/h1.db`, `${f.dir}/h2.db`], true);
    await fill(engine, "h1.db", 50);
    const snaps = f.snapshotter();
    const app = f.app(engine, snaps);

    let r = await app.request("/snapshot");
    assert.equal(r.status, 404);
    assert.deepEqual(await r.json(), { error: "no snapshot of database h1.db" });

    r = await app.request("/snapshot", { method: "POST" });
    assert.equal(r.status, 200);
    const taken = await r.json();
    assert.deepEqual(Object.keys(taken), ["database", "sequence", "size", "skipped"]);
    assert.equal(taken.database, "h1.db");
    assert.equal(taken.skipped, false);

    r = await app.request("/snapshot", { method: "POST" });
    assert.deepEqual(await r.json(), { ...taken, skipped: true, reason: "unchanged" });

    r = await app.request("/snapshot");
    assert.equal(r.status, 200);
    assert.equal(r.headers.get("x-sequence"), "0");
    assert.equal(
      r.headers.get("content-disposition"),
      'attachment; filename="h1.db-snapshot-0.db"',
    );
    assert.equal(r.headers.get("content-length"), String(taken.size));
    const body = new Uint8Array(await r.arrayBuffer());
    assert.equal(body.length, taken.size);
    await Deno.writeFile(`${f.dir}/got.db`, body);
    assert.equal(await sqlite3(`${f.dir}/got.db`, "SELECT count(*) FROM t"), "50");

    r = await app.request("/databases/h2.db/snapshot");
    assert.equal(r.status, 404);
    r = await app.request("/databases/h2/snapshot", { method: "POST" });
    assert.equal(r.status, 200);
    assert.equal((await r.json()).database, "h2.db");
    r = await app.request("/databases/h2.db/snapshot");
    assert.equal(r.status, 200);
    assert.equal(
      r.headers.get("content-disposition"),
      'attachment; filename="h2.db-snapshot-0.db"',
    );
    await r.body?.cancel();
    r = await app.request("/databases/nope.db/snapshot", { method: "POST" });
    assert.equal(r.status, 404);

    // Object store unavailable: 503 with a JSON error.
    await f.server.stop();
    r = await app.request("/snapshot");
    assert.equal(r.status, 503);
    assert.match((await r.json()).error, /snapshot store ha_replication_SNAPSHOTS unavailable/);
    await fill(engine, "h1.db", 1, 50);
    r = await app.request("/snapshot", { method: "POST" });
    assert.equal(r.status, 503);
    assert.match((await r.json()).error, /unavailable/);
  } finally {
    await f.close();
  }
});

Deno.test("snapshot: store unavailable at restore leaves the target alone", opts, async () => {
  const f = await SnapshotFixture.start();
  try {
    const engine = await f.engine([`${f.dir}/u.db`], true);
    await fill(engine, "u.db", 10);
    const snaps = f.snapshotter();
    await snaps.take(engine.get("u.db"));
    await f.server.stop();
    await Deno.mkdir(`${f.dir}/x`);
    const target = `${f.dir}/x/u.db`;
    await Deno.writeTextFile(target, "local");
    // No wait for the store to come back (a node waits up to 2 minutes).
    await assert.rejects(
      snaps.restoreAtStart([target], false, 0),
      (e: unknown) => e instanceof HaError && e.code === "unavailable",
    );
    assert.equal(await Deno.readTextFile(target), "local");
  } finally {
    await f.close();
  }
});
