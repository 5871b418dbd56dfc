/** Snapshot helpers without NATS: SQLite file checks, digests, DSNs, fingerprints, progress. */
import assert from "node:assert/strict";
import { DatabaseSync } from "node:sqlite";
import { parseDsn } from "../../src/engine/mod.ts";
import { HaError } from "../../src/errors/mod.ts";
import { snapshotFileName } from "../../src/http/mod.ts";
import { createLogger } from "../../src/log/mod.ts";
import { fileFingerprint, replaceDatabaseFile, tempBeside } from "../../src/snapshot/files.ts";
import { localChangesNotIn, prepareRestored } from "../../src/snapshot/sqlite_file.ts";
import {
  fileDigest,
  normalizeDigest,
  Progress,
  readProgress,
  snapshotBucket,
  sourceToDsn,
  verifySqliteFile,
} from "../../src/snapshot/mod.ts";

async function tempDir(): Promise<string> {
  return await Deno.makeTempDir({ prefix: "ha-snapshot-unit-" });
}

function makeDb(path: string, rows = 100): void {
  const db = new DatabaseSync(path);
  db.exec("CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)");
  const ins = db.prepare("INSERT INTO t(v) VALUES (?)");
  for (let i = 0; i < rows; i++) ins.run(`value ${i} `.repeat(20));
  db.close();
}

Deno.test("normalizeDigest: padded, unpadded, standard base64, case of the prefix", () => {
  assert.equal(normalizeDigest("SHA-256=ab-_cd=="), "SHA-256=ab-_cd");
  assert.equal(normalizeDigest("SHA-256=ab+/cd"), "SHA-256=ab-_cd");
  assert.equal(normalizeDigest("sha-256=ab-_cd="), "SHA-256=ab-_cd");
});

Deno.test("fileDigest matches SHA-256 of the content", async () => {
  const dir = await tempDir();
  try {
    const data = new TextEncoder().encode("hello snapshot");
    await Deno.writeFile(`${dir}/f`, data);
    const raw = new Uint8Array(await crypto.subtle.digest("SHA-256", data));
    const b64url = btoa(String.fromCharCode(...raw)).replaceAll("+", "-").replaceAll("/", "_")
      .replace(/=+$/, "");
    assert.equal(await fileDigest(`${dir}/f`), `SHA-256=${b64url}`);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("verifySqliteFile: accepts a database, refuses damaged files with clear messages", async () => {
  const dir = await tempDir();
  try {
    const good = `${dir}/good.db`;
    makeDb(good);
    const facts = await verifySqliteFile(good, "snapshot of good.db");
    assert.equal(facts.pageSize * facts.pageCount, (await Deno.stat(good)).size);
    await verifySqliteFile(good, "snapshot of good.db", "full");

    const bytes = await Deno.readFile(good);
    const check = async (name: string, data: Uint8Array, re: RegExp) => {
      await Deno.writeFile(`${dir}/${name}`, data);
      await assert.rejects(
        verifySqliteFile(`${dir}/${name}`, `snapshot of ${name}`),
        (e: unknown) =>
          e instanceof HaError && e.code === "unavailable" &&
          e.message.startsWith(`snapshot of ${name} is corrupt: `) && re.test(e.message),
      );
    };
    await check("short.db", bytes.subarray(0, 50), /too short/);
    await check("text.db", new TextEncoder().encode("x".repeat(5000)), /bad header/);
    await check("cut.db", bytes.subarray(0, bytes.length - 1000), /truncated/);
    await check("cutpage.db", bytes.subarray(0, bytes.length - 4096), /truncated/);
    const damaged = bytes.slice();
    damaged.fill(0xff, 4096, bytes.length);
    await check("damaged.db", damaged, /quick_check|cannot open/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("readProgress: null without the table, max or per subject", async () => {
  const dir = await tempDir();
  try {
    const p = `${dir}/p.db`;
    makeDb(p, 1);
    assert.equal(readProgress(p), null);
    const db = new DatabaseSync(p);
    db.exec("CREATE TABLE _ha_progress(subject TEXT PRIMARY KEY, seq INTEGER NOT NULL)");
    db.close();
    assert.equal(readProgress(p), 0);
    const db2 = new DatabaseSync(p);
    db2.exec("INSERT INTO _ha_progress VALUES ('s.a', 12), ('s.b', 30)");
    db2.close();
    assert.equal(readProgress(p), 30);
    assert.equal(readProgress(p, "s.a"), 12);
    assert.equal(readProgress(p, "s.none"), 0);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("prepareRestored: clears the outbox, records progress, never lowers it", async () => {
  const dir = await tempDir();
  try {
    const p = `${dir}/r.db`;
    makeDb(p, 1);
    assert.deepEqual(prepareRestored(p, { clearOutbox: true, subject: "s.a", sequence: 5 }), {
      outboxCleared: 0,
      progressSet: false,
      replayOwn: false,
    }, "no replication tables: nothing touched");
    const db = new DatabaseSync(p);
    db.exec(`CREATE TABLE _ha_progress(subject TEXT PRIMARY KEY, seq INTEGER NOT NULL);
             CREATE TABLE _ha_outbox(id INTEGER PRIMARY KEY, csid TEXT, data TEXT);
             INSERT INTO _ha_outbox(csid, data) VALUES ('a', '{}'), ('b', '{}');
             INSERT INTO _ha_progress VALUES ('s.b', 9)`);
    db.close();
    assert.deepEqual(prepareRestored(p, { clearOutbox: false, subject: "s.b", sequence: 5 }), {
      outboxCleared: 0,
      progressSet: true,
      replayOwn: false,
    });
    assert.equal(readProgress(p, "s.b"), 9, "not lowered");
    const replay = { clearOutbox: true, subject: "s.a", sequence: 7, replayOwnThrough: 12 };
    assert.deepEqual(prepareRestored(p, replay), {
      outboxCleared: 2,
      progressSet: true,
      replayOwn: true,
    });
    assert.equal(readProgress(p, "s.a"), 7);
    const check = new DatabaseSync(p);
    assert.deepEqual(
      check.prepare("SELECT subject, after, through FROM _ha_restored").all().map((r) => ({
        ...r,
      })),
      [{ subject: "s.a", after: 7, through: 12 }],
      "this node's own changesets in (7, 12] are to be applied",
    );
    check.close();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("localChangesNotIn: newer row versions and schema objects keep the local file", async () => {
  const dir = await tempDir();
  const versions = `CREATE TABLE _ha_versions(tbl TEXT NOT NULL, key TEXT NOT NULL,
    hlc INTEGER NOT NULL, node TEXT NOT NULL, deleted INTEGER NOT NULL, PRIMARY KEY(tbl, key))`;
  const make = (path: string, sql: string) => {
    const db = new DatabaseSync(path);
    db.exec(`CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT); ${versions}; ${sql}`);
    db.close();
  };
  try {
    const snap = `${dir}/snap.db`;
    make(
      snap,
      "INSERT INTO _ha_versions VALUES ('t', '[1]', 10, 'a', 0), ('t', '[2]', 10, 'a', 0)",
    );
    const local = (name: string, sql: string) => {
      make(`${dir}/${name}`, sql);
      return localChangesNotIn(`${dir}/${name}`, snap);
    };
    assert.equal(
      local("older.db", "INSERT INTO _ha_versions VALUES ('t', '[1]', 9, 'b', 0)"),
      null,
    );
    assert.equal(
      local("same.db", "INSERT INTO _ha_versions VALUES ('t', '[2]', 10, 'a', 0)"),
      null,
    );
    assert.equal(
      local("gone.db", "INSERT INTO _ha_versions VALUES ('t', '[3]', 50, 'b', 1)"),
      null,
      "a tombstone the snapshot lacks: the row is absent in both",
    );
    assert.match(
      local("newer.db", "INSERT INTO _ha_versions VALUES ('t', '[1]', 11, 'b', 0)") ?? "",
      /1 row version\(s\) newer/,
    );
    assert.match(
      local("new_row.db", "INSERT INTO _ha_versions VALUES ('t', '[3]', 5, 'b', 0)") ?? "",
      /1 row version\(s\) newer/,
    );
    assert.match(local("ddl.db", "CREATE TABLE u(x)") ?? "", /schema objects .*table u/);
    makeDb(`${dir}/plain.db`, 1);
    assert.equal(localChangesNotIn(`${dir}/plain.db`, snap), null, "never ran replication");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("sourceToDsn: round trip through parseDsn with another path", () => {
  const cases: [string, boolean][] = [
    ["app.db", false],
    ["data/app.db", true],
    ["file:my.db?_journal=WAL&_busy_timeout=500", false],
    ["file:my.db?mode=rwc&_fk=1&_pragma=cache_size(-2000)", false],
    ["file:/abs/with space/%3Fodd#.db?_sync=FULL", true],
  ];
  for (const [dsn, memory] of cases) {
    const src = parseDsn(dsn, memory);
    assert.deepEqual(parseDsn(sourceToDsn(src), memory), src, dsn);
    const moved = `/tmp/ha-restore-x/${src.id}`;
    assert.deepEqual(parseDsn(sourceToDsn(src, moved), memory), { ...src, path: moved }, dsn);
  }
});

Deno.test("replaceDatabaseFile: new target, and a WAL target replaced whole", async () => {
  const dir = await tempDir();
  const log = createLogger("error", () => {});
  try {
    const a = `${dir}/a.db`;
    makeDb(a, 10);
    const target = `${dir}/sub.db`;
    const t1 = tempBeside(target);
    assert.match(t1, /\/\.sub\.db\.restore-[0-9a-f]{8}$/);
    await Deno.copyFile(a, t1);
    await replaceDatabaseFile(t1, target, log);
    let db = new DatabaseSync(target);
    assert.equal((db.prepare("SELECT count(*) AS n FROM t").get() as { n: number }).n, 10);
    db.exec("PRAGMA journal_mode=WAL");
    db.exec("CREATE TABLE extra(x)");
    db.close();

    const b = `${dir}/b.db`;
    makeDb(b, 3);
    const t2 = tempBeside(target);
    await Deno.copyFile(b, t2);
    await Deno.writeTextFile(`${target}-journal`, "stale");
    await replaceDatabaseFile(t2, target, log);
    const names = [...Deno.readDirSync(dir)].map((e) => e.name).sort();
    assert.deepEqual(names, ["a.db", "b.db", "sub.db"]);
    db = new DatabaseSync(target);
    assert.equal((db.prepare("SELECT count(*) AS n FROM t").get() as { n: number }).n, 3);
    assert.equal(db.prepare("SELECT 1 FROM sqlite_schema WHERE name = 'extra'").get(), undefined);
    db.close();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("fileFingerprint: untrusted right after a write, stable, changes with the WAL", async () => {
  const dir = await tempDir();
  try {
    const p = `${dir}/f.db`;
    const db = new DatabaseSync(p);
    db.exec("PRAGMA journal_mode=WAL; CREATE TABLE t(x)");
    assert.equal(await fileFingerprint(p, 10_000), null, "just written");
    await new Promise((r) => setTimeout(r, 60));
    const a = await fileFingerprint(p, 50);
    assert.ok(a);
    assert.equal(await fileFingerprint(p, 50), a);
    db.exec("INSERT INTO t VALUES (1)");
    await new Promise((r) => setTimeout(r, 60));
    const b = await fileFingerprint(p, 50);
    assert.ok(b);
    assert.notEqual(b, a);
    db.close();
    assert.equal(await fileFingerprint(`${dir}/missing.db`), null);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("Progress: logs percent and throughput, stats at the end", () => {
  const lines: string[] = [];
  const p = new Progress(
    createLogger("info", (l) => lines.push(l)),
    "restoring",
    { db: "x" },
    400,
    0,
  );
  p.add(100);
  p.add(100);
  const o = JSON.parse(lines[1]);
  assert.equal(o.msg, "restoring");
  assert.equal(o.db, "x");
  assert.equal(o.percent, 50);
  assert.equal(typeof o.mbPerSec, "number");
  assert.equal(p.stats().bytes, 200);
});

Deno.test("names: bucket and download file", () => {
  assert.equal(snapshotBucket("ha_replication"), "ha_replication_SNAPSHOTS");
  assert.equal(snapshotFileName("app.db", 42), "app.db-snapshot-42.db");
  assert.equal(snapshotFileName('a"b.db', 1), "a_b.db-snapshot-1.db");
});
