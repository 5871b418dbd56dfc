/**
 * File plumbing for snapshots: temp files beside a target, fsync, replacing a SQLite database
 * file atomically (its WAL settled first), and a cheap change fingerprint of a database file.
 *
 * @module
 */
import { DatabaseSync } from "node:sqlite";
import type { Logger } from "../log/mod.ts";

/** Directory part of `path` (`.` for a bare name). */
export function dirname(path: string): string {
  const i = path.lastIndexOf("/");
  if (i < 0) return ".";
  return i === 0 ? "/" : path.slice(0, i);
}

/** A fresh temp file name in the directory of `target` (same file system, so rename is atomic). */
export function tempBeside(target: string): string {
  const base = target.slice(target.lastIndexOf("/") + 1);
  return `${dirname(target)}/.${base}.restore-${crypto.randomUUID().slice(0, 8)}`;
}

/**
 * Writes `body` to a new file at `path` and fsyncs it (unless `sync` is false: a scratch file
 * that never outlives the process's use of it). Removes the file on failure.
 */
export async function writeStreamToFile(
  body: ReadableStream<Uint8Array>,
  path: string,
  onChunk?: (n: number) => void,
  sync = true,
): Promise<void> {
  const f = await Deno.open(path, { write: true, createNew: true });
  try {
    for await (const chunk of body) {
      let off = 0;
      while (off < chunk.length) off += await f.write(chunk.subarray(off));
      onChunk?.(chunk.length);
    }
    if (sync) await f.sync();
  } catch (e) {
    f.close();
    await removeQuietly(path);
    throw e;
  }
  f.close();
}

/** Removes a file, ignoring a missing one. */
export async function removeQuietly(path: string): Promise<void> {
  try {
    await Deno.remove(path);
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
}

/** Whether something exists at `path` (a failure other than "not found" is thrown). */
export async function exists(path: string): Promise<boolean> {
  try {
    await Deno.lstat(path);
    return true;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return false;
    throw e;
  }
}

/**
 * Replaces the SQLite database at `target` by the verified file `source` atomically: the
 * target's WAL is checkpointed into it first (so that at every instant the target is either the
 * old database, complete, or the new one), its `-wal`/`-shm`/`-journal` files are removed so
 * that they can never be replayed onto the new file, then `source` is renamed over `target` and
 * the directory is synced. The target must not be open in any process.
 */
export async function replaceDatabaseFile(
  source: string,
  target: string,
  log: Logger,
): Promise<void> {
  if (await exists(target)) {
    try {
      const db = new DatabaseSync(target);
      try {
        db.exec("PRAGMA wal_checkpoint(TRUNCATE)");
      } finally {
        db.close();
      }
    } catch (e) {
      log.warn("could not checkpoint the database being replaced", {
        path: target,
        error: (e as Error).message,
      });
    }
  }
  for (const suffix of ["-wal", "-shm", "-journal"]) await removeQuietly(target + suffix);
  await Deno.rename(source, target);
  await syncDir(dirname(target));
}

async function syncDir(dir: string): Promise<void> {
  try {
    const d = await Deno.open(dir, { read: true });
    try {
      await d.sync();
    } finally {
      d.close();
    }
  } catch { /* not supported on every platform; the rename itself is atomic */ }
}

/**
 * A fingerprint of a database file and its WAL (mtime, size), or `null` when it cannot be
 * trusted to reveal the next change: a memory database, a missing file, or a file modified in
 * the last `marginMs` (file times are coarse; a write in the same tick would not change them).
 */
export async function fileFingerprint(path: string, marginMs = 100): Promise<string | null> {
  const now = Date.now();
  const parts: string[] = [];
  for (const p of [path, `${path}-wal`]) {
    let st: Deno.FileInfo;
    try {
      st = await Deno.stat(p);
    } catch (e) {
      if (e instanceof Deno.errors.NotFound && p !== path) {
        parts.push("-");
        continue;
      }
      return null;
    }
    const m = st.mtime?.getTime();
    if (m === undefined || now - m < marginMs) return null;
    parts.push(`${st.ino ?? ""}:${m}:${st.size}`);
  }
  return parts.join("|");
}
