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
}

/**
 * Makes a verified snapshot file ready to be this node's database, in one transaction, touching
 * replication's tables only when they exist:
 * - `clearOutbox`: deletes the changesets still waiting in `_ha_outbox` — they belong to the
 *   node that took the snapshot, which publishes them itself;
 * - `subject`: records `sequence` as the progress of that subject in `_ha_progress` (never
 *   lowering it), so that replication resumes after the snapshot's sequence by itself.
 */
export function prepareRestored(
  path: string,
  o: { clearOutbox: boolean; subject?: string; sequence: number },
): RestoredAdjustments {
  const db = new DatabaseSync(path);
  const has = (name: string) =>
    db.prepare("SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = ?").get(name) !==
      undefined;
  const out: RestoredAdjustments = { outboxCleared: 0, progressSet: false };
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
    db.exec("COMMIT");
  } catch (e) {
    if (db.isTransaction) db.exec("ROLLBACK");
    throw e;
  } finally {
    db.close();
  }
  return out;
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
