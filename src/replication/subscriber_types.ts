/**
 * The options and status of a {@link Subscriber} (`subscriber.ts`), apart so that module stays
 * within its size.
 * @module
 */
import type { JetStreamClient, JetStreamManager } from "@nats-io/jetstream";
import type { ReplicationPolicy } from "../config/mod.ts";
import type { Database } from "../engine/mod.ts";
import type { Logger } from "../log/mod.ts";
import type { InterceptorHost } from "../interceptor/mod.ts";
import type { MessageRules } from "./validate.ts";

export interface SubscriberOptions {
  js: JetStreamClient;
  jsm: JetStreamManager;
  /**
   * Deletes the old consumer before a new one is created: a manager with a short request
   * timeout (an unanswered delete is the common case when the consumer's server is down, and it
   * does not stop the creation). Default {@link jsm}.
   */
  jsmDelete?: JetStreamManager;
  stream: string;
  subject: string;
  /** The consumer's name: `<db>_<node>` (see `naming.ts`). */
  consumer: string;
  db: Database;
  /** Where to start when the database has no recorded progress. */
  policy: ReplicationPolicy;
  logger: Logger;
  /** This node and process incarnation: own changesets of this run are skipped unapplied. */
  self: { node: string; incarnation: string };
  /**
   * Registers a listener of NATS reconnections (messages sent while disconnected are lost, so
   * the consumer is recreated); returns its removal.
   */
  onReconnect: (listener: () => void) => () => void;
  /** Largest batch applied in one transaction. Default {@link DEFAULT_APPLY_BATCH}. */
  maxBatch?: number;
  /** Received, unapplied payload bytes above which the consumer pauses (memory bound). */
  backlogBytes?: number;
  /** `--cluster-key` and `--max-clock-skew`: messages interceptor hooks may see. */
  rules?: MessageRules;
  /**
   * The `--interceptor`: when set, remote changesets are applied one at a time through its
   * hooks (beforeApply, resolveConflict, afterApply); without it, in batches.
   */
  host?: InterceptorHost | null;
  /**
   * Metrics sink: called for each applied remote changeset with its origin node and the seconds
   * from its commit there (its HLC) to its apply here.
   */
  observeLag?: (origin: string, seconds: number) => void;
}

/** A failing changeset as reported by {@link Subscriber.status}. */
export interface ApplyFailure {
  seq: number;
  error: string;
  attempts: number;
  since: string;
}

/** A snapshot of a subscriber's state. */
export interface SubscriberStatus {
  consumer: string;
  subject: string;
  database: string;
  /** A consumer is delivering to this subscriber. */
  running: boolean;
  /** Last stream sequence applied or skipped (recorded in SQLite). */
  appliedSeq: number;
  /** Last stream sequence received. */
  receivedSeq: number;
  /** Changesets received and waiting to be applied. */
  pending: number;
  /** Their payload bytes. */
  pendingBytes: number;
  applied: number;
  skipped: number;
  failing: ApplyFailure | null;
  /** Invalid messages refused since start (kept in `_ha_dead_letters`). */
  deadLettered: number;
  /** The last one refused, and why. */
  lastDeadLetter: { seq: number; reason: string; at: string } | null;
  /** How many times the consumer was (re)created from local progress, and the last reason. */
  restarts: number;
  lastRestart: { reason: string; at: string } | null;
  /** Of those, how many because the consumer stalled (see `stall.ts`). */
  stalls: number;
}
