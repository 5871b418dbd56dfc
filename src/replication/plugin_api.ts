/**
 * The replication writer plugin's command interface, declared once for both sides: the plugin
 * (`writer_plugin.ts`) implements {@link ReplicationCommands} as its `commands` map, and the main
 * thread (publisher, subscriber, service) calls it through {@link replicationClient}, typed end to
 * end (see `engine/plugin.ts`). Also the types that cross the thread boundary.
 *
 * @module
 */
import type { WireValue } from "../cdc/mod.ts";
import type { RowIdentify } from "../config/mod.ts";
import type { Database, PluginClient } from "../engine/mod.ts";
import type { LogLevel } from "../log/mod.ts";

/** The plugin's `PluginSpec.name`. */
export const REPLICATION_PLUGIN = "replication";

/** Default {@link ReplicationPluginOptions.maxClockSkewMs}: `--max-clock-skew`'s default. */
export const DEFAULT_MAX_CLOCK_SKEW_MS = 60_000;

/** Options the main thread gives the plugin (structured-cloned). */
export interface ReplicationPluginOptions {
  /** This node's name. */
  node: string;
  /** Random per process start: own changesets of an earlier run are applied on memory databases. */
  incarnation: string;
  rowIdentify: RowIdentify;
  /** Do not capture DDL (`--disable-ddl-sync`). */
  disableDdlSync: boolean;
  /** The database lives in memory (own changesets of earlier runs must be replayed). */
  memory: boolean;
  /**
   * Directory of a durable outbox file for memory databases in async mode
   * (`--async-replication-store-dir`); null keeps the outbox in the database itself.
   */
  outboxDir: string | null;
  /**
   * The NATS server's `max_payload` in bytes: a transaction whose changeset message would be
   * larger is refused before COMMIT (it could never be published). 0 = no limit.
   */
  maxPayload: number;
  /** `--cluster-key`: remote changesets must be signed with it (and own ones are). */
  clusterKey?: string | null;
  /** `--max-clock-skew` in ms (default 60 s): remote HLCs further ahead are refused. */
  maxClockSkewMs?: number;
  /** `--log-level` of the worker's conflict warnings (default info). */
  logLevel?: LogLevel;
  /** TEST ONLY (`HA_TEST_CLOCK_OFFSET_MS`): shifts the hybrid logical clock's wall time, ms. */
  clockOffsetMs?: number;
}

/** What `beforeCommit` hands to commit listeners. */
export interface CommitPayload {
  kind: "changeset";
  /** Outbox row id (ordering, deletion after publication). */
  outboxId: number;
  /** The changeset id (`Nats-Msg-Id`). */
  id: string;
  /** Encoded changeset. */
  data: string;
}

/** One stream message given to the `apply` command. */
export interface ApplyMessage {
  seq: number;
  subject: string;
  data: string;
  /** Record the message as done without applying it (an interceptor skipped it). */
  skip?: boolean;
  /** The `Ha-Signature` header (`--cluster-key`). */
  sig?: string;
  /** The text the signature covers, when an interceptor rewrote `data`. */
  signed?: string;
}

/** Messages of one subject for the `applyPacked` command (layout: see `packed.ts`). */
export interface PackedMessages {
  subject: string;
  count: number;
  /** Sequences, payload ends and UTF-8 payloads (moved to the writer). */
  buf: ArrayBuffer;
  /** Each message's `Ha-Signature` header (`--cluster-key`). */
  sigs?: (string | undefined)[];
  /**
   * Sent while an earlier batch (ending at this sequence) was still being applied: apply only if
   * the recorded progress reached it, else answer {@link ApplyResult.stale} and change nothing
   * (the earlier batch stopped short, e.g. at a failing changeset).
   */
  after?: number;
}

/** Result of the `apply` command. */
export interface ApplyResult {
  /** Highest sequence committed (applied or skipped); 0 when none. */
  through: number;
  /** Wall time (ms) right after the COMMIT: when the batch became visible (lag metric). */
  committedAt?: number;
  /**
   * Changesets of other nodes applied: their origin and the seconds from their commit there (HLC)
   * to this COMMIT (lag metric; the main thread needs no message headers for it).
   */
  lags?: [string, number][];
  applied: number;
  skipped: number;
  /** The first message that failed (nothing after it was applied). */
  error: { seq: number; message: string } | null;
  /** Not applied: the progress had not reached {@link PackedMessages.after}; nothing changed. */
  stale?: boolean;
  /** Messages refused as invalid and recorded in `_ha_dead_letters` (replication went on). */
  deadLetters?: { seq: number; reason: string }[];
  /** `applyIntercepted`: the sequences of the changesets applied (not skipped). */
  appliedSeqs?: number[];
  /**
   * `applyIntercepted` with `detect`: the first message with row conflicts, not applied
   * (nothing after it either); resolve them and call again with its `resolutions`.
   */
  conflicts?: { seq: number; list: WireConflict[] };
}

/**
 * A row conflict (wire values) found by `applyIntercepted` with `detect`: the local row is not
 * what the remote change started from. See `interceptors/types.ts` `Conflict`.
 */
export interface WireConflict {
  change_index: number;
  table: string;
  columns: string[];
  pk_columns: string[];
  local: { values: WireValue[] | null; hlc: number | null; node: string | null };
  remote: {
    operation: "INSERT" | "UPDATE" | "DELETE";
    values: WireValue[] | null;
    old_values: WireValue[] | null;
    hlc: number;
    node: string;
  };
}

/** How one conflicting change is applied (`InterceptedBatch.resolutions`). */
export type WireResolution = "local" | "remote" | { values: WireValue[] };

/**
 * Arguments of the `applyIntercepted` command: messages applied in one transaction like `apply`;
 * with `detect`, a message with row conflicts stops the batch (see `ApplyResult.conflicts`)
 * unless it is `resolvedSeq`, which is applied with `resolutions` (by change index).
 */
export interface InterceptedBatch {
  msgs: ApplyMessage[];
  detect: boolean;
  resolvedSeq?: number;
  resolutions?: [number, WireResolution][];
}

/** Outbox rows for the publisher. */
export interface OutboxRow {
  outboxId: number;
  id: string;
  data: string;
}

/** The commands of the replication plugin: name → arguments and result. */
export type ReplicationCommands = {
  /** Applies stream messages in one transaction (last-writer-wins), records progress. */
  apply: { args: ApplyMessage[]; result: ApplyResult };
  /** `apply` of a packed batch (the subscriber's: one clone of a few buffers). */
  applyPacked: { args: PackedMessages; result: ApplyResult };
  /** Like `apply`, for batches an interceptor saw: conflict detection and resolutions. */
  applyIntercepted: { args: InterceptedBatch; result: ApplyResult };
  /** The last stream sequence recorded for a subject; null when nothing is recorded yet. */
  progress: { args: string; result: number | null };
  /** Records a subject's progress at `seq` (never moves it back) without applying anything. */
  skip: { args: { subject: string; seq: number }; result: null };
  /** Outbox rows after `after`, in order, at most `limit`. */
  outboxPending: { args: { after: number; limit: number }; result: OutboxRow[] };
  /** Deletes outbox rows up to and including this id (published). */
  outboxDelete: { args: number; result: null };
  /** The NATS server's `max_payload`, known once NATS is reached. */
  setMaxPayload: { args: number; result: null };
  /** Deletes tombstones older than this HLC; answers how many. */
  purgeTombstones: { args: number; result: number };
};

/** The main thread's typed handle on a database's replication plugin. */
export type ReplicationClient = PluginClient<ReplicationCommands>;

/** The replication plugin of `db` (loaded by `replicationPlugin()`). */
export function replicationClient(db: Database): ReplicationClient {
  return db.plugin<ReplicationCommands>(REPLICATION_PLUGIN);
}
