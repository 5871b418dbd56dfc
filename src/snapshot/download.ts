/**
 * Downloads of stored snapshots that survive a concurrent replacement: another node (or the
 * periodic `--snapshot-interval`) may store a new snapshot while one is being read, and the
 * object store then purges the previous chunks. A download notices it
 * ({@link SnapshotReplacedError}) and the whole attempt, decisions included, is redone with the
 * snapshot stored now ({@link retryReplaced}). Downloads served over HTTP are staged in a temp
 * file first ({@link stagedStream}) so that a client never receives a truncated file.
 *
 * @module
 */
import { HaError } from "../errors/mod.ts";
import type { Logger } from "../log/mod.ts";
import { removeQuietly, writeStreamToFile } from "./files.ts";
import type { Progress } from "./progress.ts";
import { type SnapshotReplacedError, type SnapshotStore, type StoredSnapshot } from "./store.ts";

/** Attempts of a download or restore when the snapshot keeps being replaced meanwhile. */
export const REPLACED_ATTEMPTS = 4;

/**
 * Runs `attempt` with `first`, and again with the snapshot stored now each time it fails with a
 * {@link SnapshotReplacedError} (at most {@link REPLACED_ATTEMPTS} in all). Any other failure,
 * a deletion, or one replacement too many is thrown. Resolves with the snapshot used and the
 * attempt's result.
 */
export async function retryReplaced<T>(
  first: StoredSnapshot,
  log: Logger,
  attempt: (s: StoredSnapshot) => Promise<T>,
): Promise<{ snapshot: StoredSnapshot; result: T }> {
  let s = first;
  for (let n = 1;; n++) {
    try {
      return { snapshot: s, result: await attempt(s) };
    } catch (e) {
      if (!isReplaced(e) || !e.current || n >= REPLACED_ATTEMPTS) throw e;
      log.warn("snapshot replaced by a newer one while downloading; retrying with it", {
        db: s.info.database,
        attempt: n,
        sequence: s.info.sequence,
        newSequence: e.current.info.sequence,
        error: e.message,
      });
      s = e.current;
    }
  }
}

/** Whether `e` is a {@link SnapshotReplacedError} (by its details: it may cross modules). */
export function isReplaced(e: unknown): e is SnapshotReplacedError {
  return e instanceof HaError && e.details.replaced === true && "current" in e;
}

/**
 * Downloads `s` into a new file at `path` (fsynced unless `sync` is false; removed on failure).
 * A failure while the object was replaced or deleted meanwhile is a
 * {@link SnapshotReplacedError}; any other is thrown as is.
 */
export async function downloadToFile(
  store: SnapshotStore,
  s: StoredSnapshot,
  path: string,
  signal: AbortSignal,
  onChunk?: (n: number) => void,
  sync = true,
): Promise<void> {
  try {
    await writeStreamToFile(store.read(s, signal), path, onChunk, sync);
  } catch (e) {
    if (signal.aborted || (e instanceof HaError && e.code === "cancelled")) throw e;
    throw (await store.replacedSince(s, { cause: e })) ?? e;
  }
}

/**
 * Downloads `first` (or the snapshot that replaces it meanwhile, see {@link retryReplaced})
 * into a new temp directory in `tempDir` (default: the system's), verified, and returns the
 * snapshot downloaded with a stream of the file ({@link stagedStream}: the temp file and
 * directory go away when the stream ends or is cancelled, or at once where the platform allows).
 * Nothing is left behind on failure.
 */
export async function stageDownload(o: {
  store: SnapshotStore;
  first: StoredSnapshot;
  log: Logger;
  signal: AbortSignal;
  tempDir?: string;
  progress: (s: StoredSnapshot) => Progress;
}): Promise<{ snapshot: StoredSnapshot; stream: ReadableStream<Uint8Array> }> {
  const dir = await Deno.makeTempDir({ dir: o.tempDir, prefix: "ha-snapshot-get-" });
  try {
    const path = `${dir}/${o.first.info.database}`;
    const { snapshot } = await retryReplaced(o.first, o.log, async (s) => {
      const progress = o.progress(s);
      // A scratch copy served once: no fsync (a crash loses nothing but this download).
      await downloadToFile(o.store, s, path, o.signal, (n) => progress.add(n), false);
      o.log.debug("snapshot downloaded", { sequence: s.info.sequence, ...progress.stats() });
    });
    return { snapshot, stream: await stagedStream(path, dir) };
  } catch (e) {
    await Deno.remove(dir, { recursive: true }).catch(() => {});
    throw e;
  }
}

/**
 * A stream of the complete file at `path`, which belongs to the stream from now on: it is
 * unlinked at once where the platform allows it (the open handle keeps the content readable),
 * otherwise when the stream ends, errors or is cancelled; `dir` (a temp directory holding it)
 * is removed then too.
 */
export async function stagedStream(
  path: string,
  dir: string | null,
): Promise<ReadableStream<Uint8Array>> {
  const file = await Deno.open(path, { read: true });
  let unlinked = await removeQuietly(path).then(() => true, () => false);
  const done = async () => {
    if (!unlinked) {
      unlinked = true;
      await removeQuietly(path).catch(() => {});
    }
    if (dir) await Deno.remove(dir, { recursive: true }).catch(() => {});
  };
  if (unlinked) await done();
  const reader = file.readable.getReader();
  return new ReadableStream<Uint8Array>({
    async pull(c) {
      try {
        const r = await reader.read();
        if (r.done) {
          c.close();
          await done();
        } else c.enqueue(r.value);
      } catch (e) {
        c.error(e);
        await done();
      }
    },
    async cancel(reason) {
      await reader.cancel(reason).catch(() => {});
      await done();
    },
  }, { highWaterMark: 0 });
}
