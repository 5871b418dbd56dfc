/**
 * A snapshot replaced while it is being downloaded (real nats-server; the object store purges
 * the previous chunks once the new object is stored): the download notices it at once, restores
 * and `restoreAtStart` redo their work with the new snapshot, `GET /snapshot` serves a complete
 * file whose headers name the snapshot it holds, and the retries are bounded.
 *
 * The race is made deterministic by pausing the first download after its first chunk (the
 * store's `read` wrapped) and storing a new snapshot during the pause.
 */
import assert from "node:assert/strict";
import { DatabaseSync } from "node:sqlite";
import { HaError } from "../../src/errors/mod.ts";
import {
  REPLACED_ATTEMPTS,
  SnapshotReplacedError,
  SnapshotStore,
  type StoredSnapshot,
} from "../../src/snapshot/mod.ts";
import { BUCKET, SnapshotFixture, STREAM } from "./helpers/snapshot_fixture.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };
const subjectOf = (id: string) => `${STREAM}.${id.replaceAll(".", "_")}`;

class Fixture extends SnapshotFixture {
  tmp = "";
  /** Uploads in 64 KiB chunks, so that a 2 MB file has many chunks left to purge. */
  store!: SnapshotStore;

  static override async start(): Promise<Fixture> {
    const f = new Fixture();
    await f.open("ha-snapshot-replace-test-", {
      subjectOf,
      // Long: only the quick replacement check can end a stalled download within the test.
      idleTimeoutMs: 120_000,
    });
    f.tmp = `${f.dir}/tmp`;
    await Deno.mkdir(f.tmp);
    f.defaults.tempDir = f.tmp;
    f.store = new SnapshotStore({
      nc: f.client.nc,
      bucket: BUCKET,
      replicas: 1,
      chunkBytes: 64 * 1024,
    });
    return f;
  }

  /** Log records whose message matches `msg`. */
  logged(msg: RegExp): Record<string, unknown>[] {
    return this.lines.map((l) => JSON.parse(l)).filter((r) => msg.test(r.msg));
  }

  /** Stores a SQLite file with `rows` rows reflecting stream sequence `seq` as the snapshot. */
  async put(id: string, rows: number, seq: number): Promise<StoredSnapshot> {
    const path = `${this.dir}/make-${crypto.randomUUID()}.db`;
    const db = new DatabaseSync(path);
    makeContent(db, id, rows, seq);
    db.close();
    try {
      const file = await Deno.open(path, { read: true });
      return await this.store.put(id, file.readable, { sequence: seq, node: "other" });
    } finally {
      await Deno.remove(path);
    }
  }
}

/** Reads `reader` to its end; the error that ended it, if any. */
async function readError(reader: ReadableStreamDefaultReader<Uint8Array>): Promise<unknown> {
  try {
    for (;;) if ((await reader.read()).done) return undefined;
  } catch (e) {
    return e;
  }
}

/** Table `t` with `rows` rows of ~1 KB and the `_ha_progress` row of `id` at `seq`. */
function makeContent(db: DatabaseSync, id: string, rows: number, seq: number): void {
  db.exec(`CREATE TABLE IF NOT EXISTS t(id INTEGER PRIMARY KEY, v TEXT, b BLOB);
    CREATE TABLE IF NOT EXISTS _ha_progress(subject TEXT PRIMARY KEY, seq INTEGER NOT NULL);
    WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < ${rows})
      INSERT INTO t(v, b) SELECT 'row ' || i, randomblob(1000) FROM s;`);
  db.prepare("INSERT OR REPLACE INTO _ha_progress VALUES (?, ?)").run(subjectOf(id), seq);
}

/** `SELECT count(*) FROM t` and the `_ha_progress` sequence of a file, read independently. */
function facts(path: string, id: string): { rows: number; seq: number; ok: string } {
  const db = new DatabaseSync(path, { readOnly: true });
  try {
    const ok = String(db.prepare("PRAGMA integrity_check").get()?.integrity_check);
    const rows = Number(db.prepare("SELECT count(*) AS n FROM t").get()?.n);
    const seq = Number(
      db.prepare("SELECT seq FROM _ha_progress WHERE subject = ?").get(subjectOf(id))?.seq,
    );
    return { rows, seq, ok };
  } finally {
    db.close();
  }
}

/**
 * Makes downloads pause after their first chunk and run `during` (which replaces the snapshot)
 * before going on: the next `times` downloads. Returns the function that undoes it.
 */
function pauseDownloads(times: number, during: (n: number) => Promise<void>): () => void {
  const original = SnapshotStore.prototype.read;
  let n = 0;
  SnapshotStore.prototype.read = function (s, signal) {
    const inner = original.call(this, s, signal);
    if (n >= times) return inner;
    const k = ++n;
    let first = true;
    return inner.pipeThrough(
      new TransformStream<Uint8Array, Uint8Array>({
        async transform(chunk, c) {
          c.enqueue(chunk);
          if (first) {
            first = false;
            await during(k);
          }
        },
      }),
      { signal },
    );
  };
  return () => {
    SnapshotStore.prototype.read = original;
  };
}

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}

async function listDir(dir: string): Promise<string[]> {
  const names: string[] = [];
  for await (const e of Deno.readDir(dir)) names.push(e.name);
  return names.sort();
}

Deno.test(
  "snapshot replaced mid-download: the store's stream fails at once with SnapshotReplacedError",
  opts,
  async () => {
    const f = await Fixture.start();
    try {
      const old = await f.put("r.db", 2000, 10);
      assert.ok(old.chunks > 20, `${old.chunks} chunks`);
      const store = new SnapshotStore({
        nc: f.client.nc,
        bucket: BUCKET,
        replicas: 1,
        idleTimeoutMs: 120_000,
      });
      const reader = store.read(old).getReader();
      const first = await reader.read();
      assert.equal(first.done, false);
      const now = await f.put("r.db", 2100, 20);
      const err = await readError(reader);
      assert.ok(err instanceof SnapshotReplacedError, String(err));
      assert.equal(err.code, "unavailable");
      assert.equal(err.current?.nuid, now.nuid);
      assert.equal(err.current?.info.sequence, 20);
      assert.deepEqual(
        {
          replaced: err.details.replaced,
          seq: err.details.sequence,
          now: err.details.currentSequence,
        },
        { replaced: true, seq: 10, now: 20 },
      );
      assert.match(
        err.message,
        /seq 10\) was replaced by a newer one \(seq 20\) while downloading/,
      );
      // A metadata-only update (same content, later sequence) is not a replacement.
      const later = await f.store.updateSequence(now, 25, "other");
      const all = new Uint8Array(await new Response(store.read(now)).arrayBuffer());
      assert.equal(all.length, later.info.size);
    } finally {
      await f.close();
    }
  },
);

Deno.test(
  "store unreachable mid-download: an unavailable error, not taken for a replacement",
  opts,
  async () => {
    const f = await Fixture.start();
    try {
      const old = await f.put("u.db", 2000, 10);
      const store = new SnapshotStore({
        nc: f.client.nc,
        bucket: BUCKET,
        replicas: 1,
        idleTimeoutMs: 3_000,
        timeoutMs: 1_000,
      });
      const reader = store.read(old).getReader();
      assert.equal((await reader.read()).done, false);
      await f.server.stop();
      const err = await readError(reader);
      assert.ok(err instanceof HaError, String(err));
      assert.equal(err.code, "unavailable");
      assert.ok(!(err instanceof SnapshotReplacedError), err.message);
    } finally {
      await f.close();
    }
  },
);

Deno.test(
  "GET /snapshot: a slow client gets the complete snapshot it started with while a new one is taken",
  opts,
  async () => {
    const f = await Fixture.start();
    try {
      const path = `${f.dir}/app.db`;
      const engine = await f.engine([path]);
      const db = engine.get("app.db");
      await db.execute([
        { sql: "CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT, b BLOB)" },
        { sql: "CREATE TABLE _ha_progress(subject TEXT PRIMARY KEY, seq INTEGER NOT NULL)" },
        { sql: `INSERT INTO _ha_progress VALUES ('${subjectOf("app.db")}', 10)` },
      ]);
      await db.execute([{
        sql: "WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < 2000) " +
          "INSERT INTO t(v, b) SELECT 'row ' || i, randomblob(1000) FROM s",
      }]);
      // The first snapshot, in small chunks (as a node with a small max_payload stores it).
      const copy = `${f.dir}/copy.db`;
      await db.backupTo(copy);
      const file = await Deno.open(copy, { read: true });
      const first = await f.store.put("app.db", file.readable, { sequence: 10, node: "node1" });
      await Deno.remove(copy);

      const snaps = f.snapshotter();
      const app = f.app(engine, snaps);
      const r = await app.request("/snapshot");
      assert.equal(r.status, 200);
      assert.equal(r.headers.get("x-sequence"), "10");
      assert.equal(r.headers.get("content-length"), String(first.info.size));
      assert.equal(
        r.headers.get("content-disposition"),
        'attachment; filename="app.db-snapshot-10.db"',
      );
      const reader = r.body!.getReader();
      const parts: Uint8Array[] = [];
      const head = await reader.read();
      assert.equal(head.done, false);
      parts.push(head.value!);

      // Meanwhile: a write and a new snapshot (its upload purges the first one's chunks).
      await db.execute([
        { sql: "INSERT INTO t(v, b) VALUES ('later', randomblob(1000))" },
        { sql: "UPDATE _ha_progress SET seq = 20" },
      ]);
      const taken = await app.request("/snapshot", { method: "POST" });
      const body = await taken.json();
      assert.equal(body.skipped, false, JSON.stringify(body));
      assert.equal(body.sequence, 20);

      for (;;) {
        const c = await reader.read();
        if (c.done) break;
        parts.push(c.value);
      }
      const got = `${f.dir}/got.db`;
      await Deno.writeFile(got, concat(parts));
      assert.equal((await Deno.stat(got)).size, first.info.size);
      assert.deepEqual(facts(got, "app.db"), { rows: 2000, seq: 10, ok: "ok" });
      assert.deepEqual(await listDir(f.tmp), [], "the staged download is gone");

      // And the next download is the new snapshot.
      const r2 = await app.request("/databases/app.db/snapshot");
      assert.equal(r2.headers.get("x-sequence"), "20");
      await Deno.writeFile(got, new Uint8Array(await r2.arrayBuffer()));
      assert.deepEqual(facts(got, "app.db"), { rows: 2001, seq: 20, ok: "ok" });
      assert.deepEqual(await listDir(f.tmp), []);
    } finally {
      await f.close();
    }
  },
);

Deno.test(
  "GET /snapshot: replaced while staged, the new snapshot is served with its own headers",
  opts,
  async () => {
    const f = await Fixture.start();
    const undo = pauseDownloads(1, async () => void await f.put("g.db", 2100, 20));
    try {
      const engine = await f.engine([`${f.dir}/g.db`]);
      await f.put("g.db", 2000, 10);
      const app = f.app(engine, f.snapshotter());
      // HEAD reads the metadata only (had it downloaded, the pause would have been used up).
      const h = await app.request("/snapshot", { method: "HEAD" });
      assert.equal(h.status, 200);
      assert.equal(h.headers.get("x-sequence"), "10");
      assert.equal(h.body, null);
      assert.equal(f.logged(/snapshot downloaded/).length, 0);

      const r = await app.request("/snapshot");
      assert.equal(r.status, 200);
      assert.equal(r.headers.get("x-sequence"), "20");
      assert.equal(
        r.headers.get("content-disposition"),
        'attachment; filename="g.db-snapshot-20.db"',
      );
      const got = `${f.dir}/got.db`;
      const bytes = new Uint8Array(await r.arrayBuffer());
      assert.equal(String(bytes.length), r.headers.get("content-length"));
      await Deno.writeFile(got, bytes);
      assert.deepEqual(facts(got, "g.db"), { rows: 2100, seq: 20, ok: "ok" });
      assert.deepEqual(f.logged(/snapshot downloaded/).map((l) => l.sequence), [20]);
      const retries = f.logged(/replaced by a newer one while downloading/);
      assert.equal(retries.length, 1);
      assert.equal(retries[0].sequence, 10);
      assert.equal(retries[0].newSequence, 20);
      assert.deepEqual(await listDir(f.tmp), []);

      // A response cancelled by the client leaves nothing behind either.
      const r2 = await app.request("/snapshot");
      await r2.body!.getReader().read();
      await r2.body!.cancel().catch(() => {});
      assert.deepEqual(await listDir(f.tmp), []);
    } finally {
      undo();
      await f.close();
    }
  },
);

Deno.test(
  "restore: a snapshot replaced while downloading is restored from the new one",
  opts,
  async () => {
    const f = await Fixture.start();
    const undo = pauseDownloads(1, async () => void await f.put("x.db", 2100, 20));
    try {
      await f.put("x.db", 2000, 10);
      const snaps = f.snapshotter({ nodeName: "node2" });
      const target = `${f.dir}/x.db`;
      const info = await snaps.restore("x.db", target);
      assert.equal(info?.sequence, 20);
      assert.deepEqual(facts(target, "x.db"), { rows: 2100, seq: 20, ok: "ok" });
      assert.deepEqual(await listDir(f.dir), ["nats", "tmp", "x.db"], "no temp file left");
      const retries = f.logged(/replaced by a newer one while downloading/);
      assert.equal(retries.length, 1);
      assert.deepEqual([retries[0].sequence, retries[0].newSequence], [10, 20]);
      assert.match(String(retries[0].error), /replaced by a newer one \(seq 20\)/);
      assert.deepEqual(
        f.logged(/^snapshot restored$/).map((r) => r.sequence),
        [20],
      );
    } finally {
      undo();
      await f.close();
    }
  },
);

Deno.test(
  "restoreAtStart: decisions are redone for the new snapshot; sequences records the one restored",
  opts,
  async () => {
    const f = await Fixture.start();
    const undo = pauseDownloads(1, async () => void await f.put("s.db", 2100, 20));
    try {
      await f.put("s.db", 2000, 10);
      // An older local file (progress 5, nothing pending, nothing the snapshots lack).
      await Deno.mkdir(`${f.dir}/node`);
      const path = `${f.dir}/node/s.db`;
      const local = new DatabaseSync(path);
      local.exec("PRAGMA journal_mode=WAL");
      local.exec("CREATE TABLE _ha_progress(subject TEXT PRIMARY KEY, seq INTEGER NOT NULL)");
      local.prepare("INSERT INTO _ha_progress VALUES (?, 5)").run(subjectOf("s.db"));
      local.close();
      const snaps = f.snapshotter({ nodeName: "node2" });
      const r = await snaps.restoreAtStart([path, `${f.dir}/node/m.db`], false);
      await r.cleanup();
      assert.deepEqual([...r.sequences], [["s.db", 20]]);
      assert.deepEqual(facts(path, "s.db"), { rows: 2100, seq: 20, ok: "ok" });
      const replacing = f.logged(/replacing the local database/);
      assert.deepEqual(replacing.map((l) => l.snapshotSequence), [20]);
      assert.equal(f.logged(/replaced by a newer one while downloading/).length, 1);

      // Replaced by one the local file (now at 20) already reflects: the retry's decision is
      // redone for it and keeps the file.
      await f.put("s.db", 2200, 25);
      const undo2 = pauseDownloads(1, async () => void await f.put("s.db", 1900, 18));
      try {
        const again = await snaps.restoreAtStart([path], false);
        assert.equal(again.sequences.size, 0);
      } finally {
        undo2();
      }
      const kept = f.logged(/local database is as recent as its snapshot/);
      assert.deepEqual(kept.map((l) => [l.localSequence, l.snapshotSequence]), [[20, 18]]);
      assert.deepEqual(facts(path, "s.db"), { rows: 2100, seq: 20, ok: "ok" });
    } finally {
      undo();
      await f.close();
    }
  },
);

Deno.test(
  "restore: a snapshot replaced at every attempt fails after REPLACED_ATTEMPTS, target intact",
  opts,
  async () => {
    const f = await Fixture.start();
    let seq = 10;
    const undo = pauseDownloads(100, async () => void await f.put("y.db", 2000, ++seq));
    try {
      await f.put("y.db", 2000, seq);
      const target = `${f.dir}/y.db`;
      await Deno.writeTextFile(target, "local");
      const snaps = f.snapshotter();
      await assert.rejects(
        snaps.restore("y.db", target),
        (e: unknown) =>
          e instanceof SnapshotReplacedError && e.code === "unavailable" &&
          e.details.sequence === 10 + REPLACED_ATTEMPTS - 1,
      );
      assert.equal(await Deno.readTextFile(target), "local");
      assert.deepEqual(await listDir(f.dir), ["nats", "tmp", "y.db"]);
      assert.equal(
        f.logged(/replaced by a newer one while downloading/).length,
        REPLACED_ATTEMPTS - 1,
      );
    } finally {
      undo();
      await f.close();
    }
  },
);
