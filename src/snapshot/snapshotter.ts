/**
 * Taking, listing, fetching and restoring snapshots of a node's databases, and taking them
 * periodically (`--snapshot-interval`) or restoring them before the engine opens
 * (`--from-latest-snapshot`).
 *
 * @module
 */
import { jetstreamManager } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";
import { HaError, toHaError } from "../errors/mod.ts";
import type { Database, DatabaseSource, Engine } from "../engine/mod.ts";
import { resolveSources } from "../engine/mod.ts";
import type { Logger } from "../log/mod.ts";
import { isNotFound } from "../nats/mod.ts";
import { downloadToFile, retryReplaced, stageDownload } from "./download.ts";
import { sourceToDsn } from "./dsn.ts";
import {
  exists,
  fileFingerprint,
  removeQuietly,
  replaceDatabaseFile,
  tempBeside,
} from "./files.ts";
import { Progress } from "./progress.ts";
import { whenReachable } from "./reachable.ts";
import {
  fileDigest,
  type IntegrityLevel,
  localChangesNotIn,
  localProgress,
  normalizeDigest,
  pendingOutbox,
  prepareRestored,
  readProgress,
  verifySqliteFile,
} from "./sqlite_file.ts";
import { type SnapshotInfo, SnapshotStore, type StoredSnapshot } from "./store.ts";

/** Options of {@link Snapshotter}. */
export interface SnapshotterOptions {
  /** A connection to the JetStream server holding the bucket. */
  nc: NatsConnection;
  /** `--replication-stream`; the bucket is `<stream>_SNAPSHOTS`. */
  stream: string;
  /** `--replicas` of the bucket. */
  replicas: number;
  /** This node's name, stored with each snapshot. */
  nodeName: string;
  logger: Logger;
  /**
   * The replication subject of a database. When given, the sequence of a snapshot is read from
   * that subject's row of `_ha_progress` inside the copy; otherwise the highest row is used.
   */
  subjectOf?: (dbId: string) => string;
  /**
   * The highest stream sequence whose changes are surely committed in the database, own
   * changesets included (replication's subscriber `appliedSeq`). Read just before the copy is
   * made, so the copy reflects at least that much; the snapshot's sequence is the larger of this
   * and the `_ha_progress` row inside the copy. Without it, only the copy's row counts (0 when
   * the copy has none).
   */
  seqOf?: (dbId: string) => Promise<number> | number;
  /** Check restored files with `PRAGMA quick_check` (default) or the slower `integrity_check`. */
  integrity?: IntegrityLevel;
  /**
   * A read-only follower (`--read-only`): it lists, downloads and restores snapshots but never
   * takes one (`take` is refused, `startInterval` does nothing); the nodes that write do.
   */
  readOnly?: boolean;
  /** Seconds between progress lines of long transfers. Default 3. */
  progressEverySeconds?: number;
  /** JetStream API and per-chunk publish timeout. Default 10 s. */
  timeoutMs?: number;
  /** A download that receives nothing this long fails. Default 30 s. */
  idleTimeoutMs?: number;
  /**
   * Where temp directories are made for snapshot copies (takes), staged downloads ({@link
   * Snapshotter.open}) and restored memory databases. Default: the system temp directory.
   */
  tempDir?: string;
}

/** Result of {@link Snapshotter.take}. */
export interface TakeResult {
  database: string;
  /** Sequence of the snapshot now stored (the existing one when skipped). */
  sequence: number;
  /** Size in bytes of the snapshot now stored. */
  size: number;
  /** Nothing was uploaded. */
  skipped: boolean;
  /**
   * Why nothing was uploaded: `unchanged` (same content as the stored one), `older` (the stored
   * one reflects a later stream sequence), `concurrent` (another node replaced it meanwhile).
   */
  reason?: "unchanged" | "older" | "concurrent";
}

/** Result of {@link Snapshotter.restoreAtStart}. */
export interface StartRestore {
  /** Stream sequence of every database restored from a snapshot (consume from `seq + 1`). */
  sequences: Map<string, number>;
  /**
   * DSNs to open the engine with: the same databases, memory databases that were restored
   * pointing at the restored temp file (which `-m` loads into memory).
   */
  dsns: string[];
  /** Removes the temp files of restored memory databases; call once the engine is open. */
  cleanup(): Promise<void>;
}

export type { SnapshotInfo };

/**
 * Snapshots of databases in the JetStream object store bucket `<stream>_SNAPSHOTS`, one object
 * per database id.
 *
 * A snapshot is a `VACUUM INTO` copy made on a reader connection. Its stream sequence is read
 * from the copy itself (replication's `_ha_progress` table) and from `seqOf` just before the
 * copy, so the copy always reflects at least every change up to that sequence: a node restored
 * from it and consuming from `sequence + 1` misses nothing (changesets it already holds are
 * skipped by last-writer-wins).
 *
 * @example
 * ```ts
 * const snaps = new Snapshotter({ nc, stream: "ha_replication", replicas: 1, nodeName: "node1", logger });
 * const r = await snaps.take(engine.get("app.db"));   // { database, sequence, size, skipped }
 * await snaps.restore("app.db", "/data/app.db");      // before the engine opens it
 * snaps.startInterval(engine, 60_000);
 * await snaps.stop();
 * ```
 */
export class Snapshotter {
  /** The bucket name, `<stream>_SNAPSHOTS`. */
  readonly bucket: string;
  readonly #o: SnapshotterOptions;
  readonly #log: Logger;
  readonly #store: SnapshotStore;
  readonly #abort = new AbortController();
  /** Serialises takes (interval and HTTP). */
  #queue: Promise<unknown> = Promise.resolve();
  /** Per database: file fingerprint and digest of the last take that uploaded or matched. */
  readonly #last = new Map<string, { fingerprint: string; digest: string }>();
  #timer: ReturnType<typeof setTimeout> | undefined;
  #round: Promise<void> | null = null;
  #stopped = false;

  constructor(opts: SnapshotterOptions) {
    this.#o = opts;
    this.bucket = snapshotBucket(opts.stream);
    this.#log = opts.logger.child({ component: "snapshot" });
    this.#store = new SnapshotStore({
      nc: opts.nc,
      bucket: this.bucket,
      replicas: opts.replicas,
      timeoutMs: opts.timeoutMs,
      idleTimeoutMs: opts.idleTimeoutMs,
    });
  }

  /**
   * Takes a snapshot of `db` now and stores it, unless the stored one already has the same
   * content or reflects a later stream sequence (`skipped`). Takes are serialised.
   */
  take(db: Database): Promise<TakeResult> {
    if (this.#o.readOnly) {
      return Promise.reject(
        new HaError("bad_request", "read-only node: snapshots are taken by the nodes that write"),
      );
    }
    const run = this.#queue.then(() => this.#take(db));
    this.#queue = run.catch(() => {});
    return run;
  }

  /** The latest snapshot of `dbId`, or `null`. */
  async latest(dbId: string): Promise<SnapshotInfo | null> {
    return (await this.#store.get(dbId))?.info ?? null;
  }

  /**
   * The latest snapshot of `dbId`, or `null` when there is none, as a stream of a complete,
   * verified copy: it is downloaded first into a temp file (in `tempDir`), checked against its
   * size and digest, downloaded again from the new one when another node replaces it meanwhile
   * (`info` then describes the snapshot actually served), and the temp file goes away once the
   * stream ends or is cancelled. Throws `HaError("unavailable")` when the store is unavailable or
   * the object corrupt, `HaError("cancelled")` when `signal` aborts (or on {@link stop}).
   */
  async open(
    dbId: string,
    signal?: AbortSignal,
  ): Promise<{ info: SnapshotInfo; stream: ReadableStream<Uint8Array> } | null> {
    const first = await this.#store.get(dbId);
    if (!first) return null;
    const log = this.#log.child({ db: dbId });
    const staged = await stageDownload({
      store: this.#store,
      first,
      log,
      signal: signal ? AbortSignal.any([this.#abort.signal, signal]) : this.#abort.signal,
      tempDir: this.#o.tempDir,
      progress: (s) =>
        this.#progress(log, "downloading snapshot", { sequence: s.info.sequence }, s.info.size),
    });
    return { info: staged.snapshot.info, stream: staged.stream };
  }

  /**
   * Restores the latest snapshot of `dbId` into `targetPath`: downloads it into a temp file next
   * to the target, verifies it (size, digest, SQLite header, quick_check), clears the outbox a
   * snapshot of another node carries and records the snapshot's sequence in `_ha_progress` and
   * the own changesets to replay in `_ha_restored` (with `subjectOf`), then renames it over the
   * target. On any failure the target is untouched.
   * Returns `null` (target untouched) when there is no snapshot. The target must not be open.
   */
  async restore(dbId: string, targetPath: string): Promise<SnapshotInfo | null> {
    const first = await this.#store.get(dbId);
    if (!first) return null;
    const log = this.#log.child({ db: dbId });
    const { snapshot } = await retryReplaced(first, log, (s) => this.#restoreTo(s, targetPath));
    return snapshot.info;
  }

  /**
   * `--from-latest-snapshot`: before the engine opens, restores every database of `dsns` that
   * has a snapshot. File databases are replaced in place only when the snapshot is newer in
   * every respect (never lose a committed write): not when the local file already reflects the
   * snapshot's sequence or a later one, still holds changesets waiting for publication, or holds
   * a row version or schema object the snapshot does not reflect (its own published writes
   * after the snapshot, see {@link localChangesNotIn}); a kept file resumes from its own
   * progress. Memory databases start empty and are always restored, into temp files the
   * returned `dsns` point to. A restored database resumes after the snapshot's sequence and
   * applies this node's own earlier changesets from there too (`_ha_restored`). When another
   * node stores a new snapshot while one is downloaded, the decision and the download are redone
   * with the new one (`sequences` holds the one restored). While the store or stream does not
   * answer, tries again for up to `waitMs` (default 2 minutes, `reachable.ts`); fails (nothing
   * replaced for the failing database) then, or when a snapshot is corrupt.
   */
  restoreAtStart(dsns: readonly string[], memory: boolean, waitMs?: number): Promise<StartRestore> {
    return whenReachable(() => this.#restoreAtStart(dsns, memory), {
      log: this.#log,
      what: "restore at start",
      waitMs,
    });
  }

  async #restoreAtStart(dsns: readonly string[], memory: boolean): Promise<StartRestore> {
    const sources = resolveSources([...dsns], memory);
    const sequences = new Map<string, number>();
    const temps: string[] = [];
    const cleanup = async () => {
      for (const d of temps.splice(0)) {
        await Deno.remove(d, { recursive: true }).catch(() => {});
      }
    };
    const out: string[] = [];
    try {
      for (const src of sources) {
        const first = await this.#store.get(src.id);
        if (!first) {
          this.#log.info("no snapshot to restore", { db: src.id });
          out.push(sourceToDsn(src));
          continue;
        }
        const log = this.#log.child({ db: src.id });
        if (src.memory) {
          // A memory database starts empty: nothing local can be newer than the snapshot.
          const dir = await Deno.makeTempDir({ dir: this.#o.tempDir, prefix: "ha-restore-" });
          temps.push(dir);
          const path = `${dir}/${src.id}`;
          const { snapshot } = await retryReplaced(first, log, (s) => this.#restoreTo(s, path));
          out.push(sourceToDsn(src, path));
          sequences.set(src.id, snapshot.info.sequence);
          continue;
        }
        const { snapshot, result } = await retryReplaced(
          first,
          log,
          (s) => this.#restoreFile(src, s, log),
        );
        out.push(sourceToDsn(src));
        if (result) sequences.set(src.id, snapshot.info.sequence);
      }
    } catch (e) {
      await cleanup();
      throw e;
    }
    return { sequences, dsns: out, cleanup };
  }

  /**
   * Takes a snapshot of every database of `engine` now, then every `ms` after the previous round
   * finished. Failures are logged, never thrown. `ms <= 0` does nothing.
   */
  startInterval(engine: Engine, ms: number): void {
    if (ms <= 0 || this.#o.readOnly || this.#stopped || this.#timer !== undefined || this.#round) {
      return;
    }
    const round = async () => {
      this.#timer = undefined;
      for (const db of engine.databases()) {
        if (this.#stopped) break;
        try {
          await this.take(db);
        } catch (e) {
          if (this.#stopped) break;
          this.#log.warn("periodic snapshot failed", {
            db: db.id,
            error: toHaError(e).message,
          });
        }
      }
      this.#round = null;
      if (!this.#stopped) this.#timer = setTimeout(start, ms);
    };
    const start = () => {
      this.#round = round();
    };
    start();
  }

  /** Stops the interval, cancels transfers in progress and waits for them. Idempotent. */
  async stop(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#abort.abort();
    await this.#round;
    await this.#queue;
  }

  // -- internals -------------------------------------------------------------------------------

  async #take(db: Database): Promise<TakeResult> {
    if (this.#stopped) throw new HaError("unavailable", "snapshots are stopped");
    const log = this.#log.child({ db: db.id });
    // Everything up to `before` is committed now, so any copy made from here on reflects it.
    const before = this.#o.seqOf ? Number(await this.#o.seqOf(db.id)) : 0;
    const prev = await this.#store.get(db.id);
    const fingerprint = db.source.memory ? null : await fileFingerprint(db.source.path);
    const last = this.#last.get(db.id);
    if (
      prev && fingerprint && last?.fingerprint === fingerprint &&
      last.digest === normalizeDigest(prev.info.digest)
    ) {
      log.debug("database file unchanged since the stored snapshot");
      return await this.#unchanged(prev, before, log);
    }
    const dir = await Deno.makeTempDir({ dir: this.#o.tempDir, prefix: "ha-snapshot-" });
    try {
      const copy = `${dir}/${db.id}`;
      const started = performance.now();
      await db.backupTo(copy);
      const size = (await Deno.stat(copy)).size;
      const sequence = Math.max(before, readProgress(copy, this.#o.subjectOf?.(db.id)) ?? 0);
      const digest = await fileDigest(copy);
      log.debug("snapshot copy made", {
        size,
        sequence,
        ms: Math.round(performance.now() - started),
      });
      const remember = () => {
        if (fingerprint) this.#last.set(db.id, { fingerprint, digest });
      };
      if (prev && normalizeDigest(prev.info.digest) === digest) {
        remember();
        return await this.#unchanged(prev, sequence, log);
      }
      if (prev && prev.info.sequence > sequence) {
        log.info("snapshot skipped: the stored one reflects a later stream sequence", {
          stored: prev.info.sequence,
          local: sequence,
        });
        return skipped(prev, "older");
      }
      const stored = await this.#upload(db.id, copy, size, sequence, prev, log);
      if (!stored) return await this.#concurrent(db.id, prev);
      if (normalizeDigest(stored.info.digest) !== digest) {
        throw new HaError(
          "internal",
          `snapshot of ${db.id}: the file changed while uploading (digest mismatch)`,
        );
      }
      remember();
      return {
        database: db.id,
        sequence: stored.info.sequence,
        size: stored.info.size,
        skipped: false,
      };
    } finally {
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  }

  /**
   * The stored snapshot has the current content: nothing to upload, but when the database now
   * reflects a later stream sequence (changesets acknowledged without changing the file, such
   * as this node's own), record that sequence in the object's metadata.
   */
  async #unchanged(prev: StoredSnapshot, sequence: number, log: Logger): Promise<TakeResult> {
    if (sequence <= prev.info.sequence) return skipped(prev, "unchanged");
    try {
      const now = await this.#store.updateSequence(prev, sequence, this.#o.nodeName);
      log.debug("snapshot sequence advanced", { from: prev.info.sequence, to: sequence });
      return skipped(now, "unchanged");
    } catch (e) {
      if (e instanceof HaError && e.details.conflict) {
        return await this.#concurrent(prev.info.database, prev);
      }
      throw e;
    }
  }

  async #concurrent(id: string, prev: StoredSnapshot | null): Promise<TakeResult> {
    const now = await this.#store.get(id);
    if (now) return skipped(now, "concurrent");
    if (prev) return skipped(prev, "concurrent");
    throw new HaError("unavailable", `snapshot of ${id}: replaced and deleted concurrently`);
  }

  /** Uploads; `null` when another node replaced the object meanwhile. */
  async #upload(
    id: string,
    path: string,
    size: number,
    sequence: number,
    prev: StoredSnapshot | null,
    log: Logger,
  ): Promise<StoredSnapshot | null> {
    const progress = this.#progress(log, "uploading snapshot", { sequence }, size);
    const file = await Deno.open(path, { read: true });
    const signal = this.#abort.signal;
    const body = file.readable.pipeThrough(
      new TransformStream<Uint8Array, Uint8Array>({
        transform(chunk, c) {
          if (signal.aborted) throw new HaError("cancelled", `snapshot of ${id}: cancelled`);
          progress.add(chunk.length);
          c.enqueue(chunk);
        },
      }),
    );
    try {
      const stored = await this.#store.put(id, body, {
        sequence,
        node: this.#o.nodeName,
        previousRevision: prev?.revision ?? 0,
      });
      log.info("snapshot stored", { sequence, size, ...progress.stats() });
      return stored;
    } catch (e) {
      if (e instanceof HaError && e.details.conflict) {
        log.info("snapshot not stored: another node stored one meanwhile");
        return null;
      }
      throw e;
    } finally {
      try {
        file.close();
      } catch { /* closed by the stream */ }
    }
  }

  /**
   * `--from-latest-snapshot` for a file database and the snapshot `s`: decides from the local
   * file's state whether `s` may replace it (see {@link restoreAtStart}) and restores it if so.
   * Returns whether the file was replaced. Called again, from scratch, with the new snapshot
   * when `s` is replaced while downloading.
   */
  async #restoreFile(src: DatabaseSource, s: StoredSnapshot, log: Logger): Promise<boolean> {
    const snapshotSequence = s.info.sequence;
    const local = localProgress(src.path, this.#o.subjectOf?.(src.id));
    if (local !== null && local >= snapshotSequence) {
      log.info("local database is as recent as its snapshot; not restoring", {
        localSequence: local,
        snapshotSequence,
      });
      return false;
    }
    const pending = local === null ? 0 : pendingOutbox(src.path);
    if (pending > 0) {
      log.warn(
        "local database has changesets not yet published; keeping it instead of restoring " +
          "its snapshot (they are published once the node runs)",
        { pending, localSequence: local, snapshotSequence },
      );
      return false;
    }
    const present = await exists(src.path);
    return await this.#restoreTo(s, src.path, (temp) => {
      let newer: string | null = null;
      try {
        if (local !== null) newer = localChangesNotIn(src.path, temp);
      } catch (e) {
        throw new HaError(
          "unavailable",
          `cannot compare ${src.path} with its snapshot (nothing replaced): ` +
            toHaError(e).message,
        );
      }
      if (newer !== null) {
        log.info(
          "local database holds changes its snapshot does not reflect; not restoring " +
            "(replication resumes from its own progress)",
          { reason: newer, localSequence: local, snapshotSequence },
        );
        return false;
      }
      if (present) {
        log.warn("replacing the local database with its latest snapshot", {
          localSequence: local,
          snapshotSequence,
        });
      }
      return true;
    });
  }

  /**
   * Downloads and verifies `s` beside `target`, then, unless `accept` (given the verified temp
   * file) says no, prepares it and renames it over `target`. Returns whether it replaced it.
   * Throws a `SnapshotReplacedError` when `s` is replaced or deleted while downloading.
   */
  async #restoreTo(
    s: StoredSnapshot,
    target: string,
    accept?: (temp: string) => boolean,
  ): Promise<boolean> {
    const { info } = s;
    const log = this.#log.child({ db: info.database });
    const what = `snapshot of ${info.database} (seq ${info.sequence})`;
    const temp = tempBeside(target);
    const progress = this.#progress(
      log,
      "restoring snapshot",
      { sequence: info.sequence, target },
      info.size,
    );
    log.info("restoring snapshot", {
      sequence: info.sequence,
      size: info.size,
      takenBy: info.node,
      created: info.created,
      target,
    });
    try {
      await downloadToFile(this.#store, s, temp, this.#abort.signal, (n) => progress.add(n));
      await verifySqliteFile(temp, what, this.#o.integrity ?? "quick");
      if (accept && !accept(temp)) {
        await removeQuietly(temp);
        return false;
      }
      const adjusted = prepareRestored(temp, {
        clearOutbox: info.node !== this.#o.nodeName,
        subject: this.#o.subjectOf?.(info.database),
        sequence: info.sequence,
        replayOwnThrough: await this.#streamLastSeq(),
      });
      if (adjusted.outboxCleared > 0 || adjusted.progressSet) {
        log.debug("restored file prepared", { ...adjusted });
      }
      await replaceDatabaseFile(temp, target, log);
    } catch (e) {
      await removeQuietly(temp).catch(() => {});
      throw e;
    }
    log.info("snapshot restored", { sequence: info.sequence, target, ...progress.stats() });
    return true;
  }

  /**
   * The replication stream's last sequence (0 without the stream): every changeset this node
   * published before it started is at or below it.
   */
  async #streamLastSeq(): Promise<number> {
    try {
      const jsm = await jetstreamManager(this.#o.nc, { timeout: this.#o.timeoutMs ?? 10_000 });
      return (await jsm.streams.info(this.#o.stream)).state.last_seq;
    } catch (e) {
      if (isNotFound(e)) return 0;
      throw new HaError(
        "unavailable",
        `cannot read the replication stream ${this.#o.stream} to restore a snapshot: ` +
          toHaError(e).message,
        { unreachable: true },
      );
    }
  }

  #progress(log: Logger, msg: string, fields: Record<string, unknown>, total: number): Progress {
    return new Progress(log, msg, fields, total, (this.#o.progressEverySeconds ?? 3) * 1000);
  }
}

/** The snapshot bucket of a replication stream: `<stream>_SNAPSHOTS`. */
export function snapshotBucket(stream: string): string {
  return `${stream}_SNAPSHOTS`;
}

function skipped(s: StoredSnapshot, reason: TakeResult["reason"]): TakeResult {
  return {
    database: s.info.database,
    sequence: s.info.sequence,
    size: s.info.size,
    skipped: true,
    reason,
  };
}
