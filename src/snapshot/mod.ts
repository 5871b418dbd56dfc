/**
 * Snapshots of the node's databases in the JetStream object store (ha-reference §5): bucket
 * `<stream>_SNAPSHOTS`, one object per database id holding a consistent SQLite file and the
 * stream sequence it reflects; periodic snapshots; restoring at start
 * (`--from-latest-snapshot`). Its `/snapshot` HTTP routes live in `http/` (over `SnapshotApi`).
 * A snapshot replaced by another node while it is downloaded is noticed and the download or
 * restore starts again with the new one (`SnapshotReplacedError`, bounded retries); downloads
 * served over HTTP are staged in a temp file so that they are never cut short.
 *
 * @example
 * ```ts
 * import { Snapshotter } from "./src/snapshot/mod.ts";
 *
 * const snapshots = new Snapshotter({
 *   nc: client.nc, stream: config.replicationStream, replicas: config.replicas,
 *   nodeName: config.name, logger,
 * });
 * const restored = await snapshots.restoreAtStart(config.dsns, config.memory);
 * const engine = await openEngine({ dsns: restored.dsns, memory: config.memory, ... });
 * await restored.cleanup();
 * snapshots.startInterval(engine, config.snapshotIntervalMs);
 * // HTTP: buildApp({ ..., snapshots })
 * await snapshots.stop();
 * ```
 *
 * @module
 */
export {
  snapshotBucket,
  type SnapshotInfo,
  Snapshotter,
  type SnapshotterOptions,
  type StartRestore,
  type TakeResult,
} from "./snapshotter.ts";
export {
  SnapshotReplacedError,
  SnapshotStore,
  type SnapshotStoreOptions,
  type StoredSnapshot,
} from "./store.ts";
export { REPLACED_ATTEMPTS } from "./download.ts";
export {
  fileDigest,
  type IntegrityLevel,
  normalizeDigest,
  readProgress,
  type SqliteFileFacts,
  verifySqliteFile,
} from "./sqlite_file.ts";
export { sourceToDsn } from "./dsn.ts";
export { Progress, type TransferStats } from "./progress.ts";
