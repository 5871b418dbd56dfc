/**
 * Checks on SQLite files that travel as snapshots: the header, the size the header announces,
 * `PRAGMA quick_check`/`integrity_check`, and the replication progress the copy carries.
 *
 * @module
 */
import { createHash } from "node:crypto";
import { DatabaseSync } from "node:sqlite";
import { HaError } from "../errors/mod.ts";

const MAGIC = "SQLite format 3\0";

/** How thoroughly {@link verifySqliteFile} checks the b-trees. */
export type IntegrityLevel = "quick" | "full";

/** What {@link verifySqliteFile} learnt about a valid file. */
export interface SqliteFileFacts {
  pageSize: number;
  pageCount: number;
}

/**
 * Verifies that `path` is a complete, uncorrupted SQLite database: the magic header, a file size
 * equal to page size × the page count of the header, the file opens, and `PRAGMA quick_check`
 * (or `integrity_check` for `"full"`) answers `ok`. Throws `HaError("unavailable")` saying what
 * is wrong, prefixed with `what`.
 *
 * @example
 * ```ts
 * await verifySqliteFile("/tmp/restore.db", "snapshot of app.db");
 * ```
 */
export async function verifySqliteFile(
  path: string,
  what: string,
  level: IntegrityLevel = "quick",
): Promise<SqliteFileFacts> {
  const bad = (why: string) => new HaError("unavailable", `${what} is corrupt: ${why}`, { path });
  const size = (await Deno.stat(path)).size;
  if (size < 100) throw bad(`${size} bytes is too short for a SQLite database`);
  const header = new Uint8Array(100);
  const f = await Deno.open(path, { read: true });
  try {
    let off = 0;
    while (off < 100) {
      const n = await f.read(header.subarray(off));
      if (n === null) break;
      off += n;
    }
  } finally {
    f.close();
  }
  if (new TextDecoder().decode(header.subarray(0, 16)) !== MAGIC) {
    throw bad("not a SQLite database (bad header)");
  }
  const view = new DataView(header.buffer);
  const rawPageSize = view.getUint16(16);
  const pageSize = rawPageSize === 1 ? 65536 : rawPageSize;
  if (pageSize < 512 || (pageSize & (pageSize - 1)) !== 0) throw bad(`bad page size ${pageSize}`);
  const changeCounter = view.getUint32(24);
  const headerPages = view.getUint32(28);
  const validFor = view.getUint32(92);
  // The in-header size is authoritative only when written by a recent SQLite (3.7.0+).
  const pageCount = headerPages > 0 && changeCounter === validFor
    ? headerPages
    : Math.floor(size / pageSize);
  if (size !== pageCount * pageSize) {
    throw bad(
      `size ${size} bytes does not match ${pageCount} pages of ${pageSize} bytes (truncated?)`,
    );
  }
  let db: DatabaseSync;
  try {
    db = new DatabaseSync(path);
  } catch (e) {
    throw bad(`cannot open: ${(e as Error).message}`);
  }
  try {
    const pragma = level === "full" ? "integrity_check" : "quick_check";
    let rows: Record<string, unknown>[];
    try {
      rows = db.prepare(`PRAGMA ${pragma}(20)`).all() as Record<string, unknown>[];
    } catch (e) {
      throw bad(`${pragma} failed: ${(e as Error).message}`);
    }
    const msgs = rows.map((r) => String(Object.values(r)[0]));
    if (msgs.length !== 1 || msgs[0] !== "ok") throw bad(`${pragma}: ${msgs.join("; ")}`);
  } finally {
    db.close();
  }
  return { pageSize, pageCount };
}

/**
 * The replication progress a database file carries: the highest stream sequence recorded in
 * replication's `_ha_progress` table (for `subject` when given), or `null` when the file has no
 * such table. Because the table travels inside the copy, the sequence and the data always match.
 *
 * @example
 * ```ts
 * readProgress("/tmp/copy.db"); // 1234 or null
 * ```
 */
export function readProgress(path: string, subject?: string): number | null {
  // Not read-only: a WAL database needs its -shm, which a read-only connection cannot create.
  const db = new DatabaseSync(path);
  try {
    const t = db.prepare(
      "SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = '_ha_progress'",
    ).get();
    if (!t) return null;
    const row = (subject === undefined
      ? db.prepare("SELECT max(seq) AS s FROM _ha_progress").get()
      : db.prepare("SELECT seq AS s FROM _ha_progress WHERE subject = ?").get(subject)) as
        | { s: number | bigint | null }
        | undefined;
    return row?.s == null ? 0 : Number(row.s);
  } finally {
    db.close();
  }
}

/** What {@link prepareRestored} changed. */
export interface RestoredAdjustments {
  /** Outbox rows removed. */
  outboxCleared: number;
  /** `_ha_progress` was set to the snapshot's sequence. */
  progressSet: boolean;
  /** `_ha_restored` asks replication to apply this node's own earlier changesets. */
  replayOwn: boolean;
}

/**
 * Makes a verified snapshot file ready to be this node's database, in one transaction, touching
 * replication's tables only when they exist:
 * - `clearOutbox`: deletes the changesets still waiting in `_ha_outbox` — they belong to the
 *   node that took the snapshot, which publishes them itself;
 * - `subject`: records `sequence` as the progress of that subject in `_ha_progress` (never
 *   lowering it), so that replication resumes after the snapshot's sequence by itself;
 * - `subject` and `replayOwnThrough`: records in `_ha_restored` that this node's own changesets
 *   of earlier runs with a stream sequence in `(sequence, replayOwnThrough]` must be applied
 *   (last-writer-wins): the snapshot may not reflect them and the local file holding them is
 *   gone, while replication normally skips its own changesets.
 */
export function prepareRestored(
  path: string,
  o: { clearOutbox: boolean; subject?: string; sequence: number; replayOwnThrough?: number },
): RestoredAdjustments {
  const db = new DatabaseSync(path);
  const has = (name: string) =>
    db.prepare("SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = ?").get(name) !==
      undefined;
  const out: RestoredAdjustments = { outboxCleared: 0, progressSet: false, replayOwn: false };
  try {
    db.exec("BEGIN IMMEDIATE");
    if (o.clearOutbox && has("_ha_outbox")) {
      out.outboxCleared = Number(db.prepare("DELETE FROM _ha_outbox").run().changes);
    }
    if (o.subject !== undefined && o.sequence > 0 && has("_ha_progress")) {
      db.prepare(
        `INSERT INTO _ha_progress(subject, seq) VALUES (?, ?)
         ON CONFLICT(subject) DO UPDATE SET seq = max(seq, excluded.seq)`,
      ).run(o.subject, o.sequence);
      out.progressSet = true;
    }
    const through = o.replayOwnThrough ?? 0;
    if (o.subject !== undefined && through > o.sequence) {
      db.exec(`CREATE TABLE IF NOT EXISTS _ha_restored(
        subject TEXT PRIMARY KEY, after INTEGER NOT NULL, through INTEGER NOT NULL) WITHOUT ROWID`);
      db.prepare("INSERT OR REPLACE INTO _ha_restored(subject, after, through) VALUES (?, ?, ?)")
        .run(o.subject, o.sequence, through);
      out.replayOwn = true;
    }
    db.exec("COMMIT");
  } catch (e) {
    if (db.isTransaction) db.exec("ROLLBACK");
    throw e;
  } finally {
    db.close();
  }
  return out;
}

/**
 * What the local database file `local` holds that the snapshot file `snapshot` does not reflect,
 * or `null` when the snapshot is newer in every respect (so replacing `local` loses nothing):
 * a row version (replication's `_ha_versions`, own and applied writes alike) that the snapshot
 * has older or lacks (a tombstone the snapshot lacks is no difference: its row is absent there
 * too), or a schema object the snapshot lacks or defines otherwise (DDL carries
 * no row version). A file without `_ha_versions` never ran replication: `null`.
 *
 * @example
 * ```ts
 * localChangesNotIn("/data/app.db", "/data/.app.db.restore-1a2b"); // "3 row versions newer…"
 * ```
 */
export function localChangesNotIn(local: string, snapshot: string): string | null {
  const db = new DatabaseSync(local);
  try {
    const has = (schema: string, name: string) =>
      db.prepare(`SELECT 1 FROM ${schema}.sqlite_schema WHERE type = 'table' AND name = ?`)
        .get(name) !== undefined;
    if (!has("main", "_ha_versions")) return null;
    db.prepare("ATTACH DATABASE ? AS snap").run(snapshot);
    const rows = has("snap", "_ha_versions")
      ? db.prepare(
        `SELECT count(*) AS n FROM main._ha_versions l
         LEFT JOIN snap._ha_versions s ON s.tbl = l.tbl AND s.key = l.key
         WHERE (s.hlc IS NULL AND l.deleted = 0) OR l.hlc > s.hlc
           OR (l.hlc = s.hlc AND l.node > s.node)`,
      ).get() as { n: number | bigint }
      : db.prepare("SELECT count(*) AS n FROM main._ha_versions WHERE deleted = 0").get() as {
        n: number | bigint;
      };
    if (Number(rows.n) > 0) {
      return `${rows.n} row version(s) newer than the snapshot's (writes it does not reflect)`;
    }
    const objects = db.prepare(
      `SELECT group_concat(l.type || ' ' || l.name, ', ') AS names FROM main.sqlite_schema l
       WHERE l.name NOT LIKE 'sqlite!_%' ESCAPE '!' AND l.name NOT LIKE '!_ha!_%' ESCAPE '!'
         AND NOT EXISTS (SELECT 1 FROM snap.sqlite_schema s
           WHERE s.type = l.type AND s.name = l.name AND s.sql IS l.sql)`,
    ).get() as { names: string | null };
    if (objects.names) {
      return `schema objects the snapshot lacks or defines otherwise: ${objects.names}`;
    }
    return null;
  } finally {
    db.close();
  }
}

/** Rows waiting in `_ha_outbox` of a database file (0 without the table or on any error). */
export function pendingOutbox(path: string): number {
  try {
    const db = new DatabaseSync(path);
    try {
      const t = db.prepare(
        "SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = '_ha_outbox'",
      ).get();
      if (!t) return 0;
      const r = db.prepare("SELECT count(*) AS n FROM _ha_outbox").get() as { n: number };
      return Number(r.n);
    } finally {
      db.close();
    }
  } catch {
    return 0;
  }
}

/** SHA-256 of a file, streamed, as {@link normalizeDigest} writes it (`SHA-256=<base64url>`). */
export async function fileDigest(path: string): Promise<string> {
  const h = createHash("sha256");
  const f = await Deno.open(path, { read: true });
  for await (const chunk of f.readable) h.update(chunk);
  return `SHA-256=${h.digest("base64url")}`;
}

/**
 * An object store digest in one comparable spelling: `SHA-256=` and unpadded base64url
 * (nats.js pads, the Go client may not, old clients used standard base64).
 *
 * @example
 * ```ts
 * normalizeDigest("SHA-256=ab+/cd=="); // "SHA-256=ab-_cd"
 * ```
 */
export function normalizeDigest(d: string): string {
  const body = d.replace(/^sha-256=/i, "").replace(/=+$/, "").replaceAll("+", "-")
    .replaceAll("/", "_");
  return `SHA-256=${body}`;
}

/** The replication progress of an existing local database file; `null` when unknown. */
export function localProgress(path: string, subject?: string): number | null {
  try {
    if (!Deno.statSync(path).isFile) return null;
    return readProgress(path, subject);
  } catch {
    return null;
  }
}
