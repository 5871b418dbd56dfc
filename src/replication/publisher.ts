/**
 * Publishes a database's committed changesets to JetStream in commit order, pipelined (many
 * publishes in flight, one connection keeps their order), each with `Nats-Msg-Id` = changeset id
 * so a resend is de-duplicated. Changesets stay in the outbox table until stored by JetStream;
 * failures are retried with backoff from the first unacknowledged one. A changeset the server
 * refuses as larger than its `max_payload` (possible only when the server's limit shrank after
 * the writer checked it, see `changeset_builder.ts`) can never be published: it is dropped with
 * an error instead of blocking every later changeset.
 *
 * Each message carries the node and the process incarnation that committed the changeset (not
 * the one publishing it): a changeset committed by an earlier run of a memory database, left in
 * its durable outbox, is applied by the restarted node when it comes back from the stream.
 * Publishing starts when the node first reaches NATS ({@link Publisher.attach}); changesets
 * committed before wait in the outbox.
 *
 * @module
 */
import { headers, type MsgHdrs } from "@nats-io/transport-node";
import type { Database } from "../engine/mod.ts";
import { HaError } from "../errors/mod.ts";
import type { Logger } from "../log/mod.ts";
import { INCARNATION_HEADER, NODE_HEADER, utf8Length } from "./headers.ts";
import { SIGNATURE_HEADER, signPayload } from "./signature.ts";
import { type CommitPayload, replicationClient } from "./plugin_api.ts";
import { isPayloadTooLarge, type StreamPublish } from "../nats/mod.ts";
import { Backoff } from "../retry/mod.ts";

/** Default {@link PublisherOptions.window}: publishes in flight before waiting for acks. */
export const DEFAULT_PUBLISH_WINDOW = 256;
/** Outbox rows read per round trip when loading what an earlier run left. */
const OUTBOX_LOAD_BATCH = 1000;
/** Retry of failed publishes: from this delay, doubling up to {@link PUBLISH_RETRY_MAX_MS}. */
const PUBLISH_RETRY_INITIAL_MS = 250;
/** The longest wait between publish retries. */
const PUBLISH_RETRY_MAX_MS = 5_000;
/** Acknowledged changesets are deleted from the outbox in batches, this long after an ack. */
const OUTBOX_DELETE_DELAY_MS = 100;

/** Options of {@link Publisher}. */
export interface PublisherOptions {
  subject: string;
  /** Its replication plugin holds the outbox. */
  db: Database;
  /** Per-publish timeout (`--replication-timeout`). */
  timeoutMs: number;
  logger: Logger;
  /** This node and process incarnation, sent as headers so subscribers skip own changesets cheaply. */
  self: { node: string; incarnation: string };
  /** Maximum publishes in flight. Default {@link DEFAULT_PUBLISH_WINDOW}. */
  window?: number;
  /** `--cluster-key`: each message gets an `Ha-Signature` header (HMAC-SHA256 of its payload). */
  clusterKey?: string | null;
}

interface Item {
  outboxId: number;
  id: string;
  data: string;
  /** The process incarnation that committed it (null: unknown, an older outbox row). */
  incarnation: string | null;
  acked: boolean;
  sent: boolean;
  /** Why the changeset was dropped instead of stored (too large). */
  dropped: HaError | null;
  waiters: { resolve: () => void; reject: (e: HaError) => void }[];
}

/** A snapshot of a publisher's state (for `/replications` and `/readyz`). */
export interface PublisherStatus {
  subject: string;
  /** Changesets committed but not yet stored by JetStream. */
  pending: number;
  /** NATS was reached since the start (publishing is possible). */
  connected: boolean;
  published: number;
  /** Changesets dropped because the server refused them as too large. */
  dropped: number;
  lastError: string | null;
}

/** In-order, pipelined publisher of one database's outbox. */
export class Publisher {
  private js: StreamPublish | null = null;
  private readonly queue: Item[] = [];
  private inflight = 0;
  private failed = false;
  private stopped = false;
  private published = 0;
  private dropped = 0;
  private lastError: string | null = null;
  private readonly backoff = new Backoff({
    initialMs: PUBLISH_RETRY_INITIAL_MS,
    maxMs: PUBLISH_RETRY_MAX_MS,
  });
  private retryTimer: ReturnType<typeof setTimeout> | null = null;
  private deleteUpTo = 0;
  private deleted = 0;
  private deleting: Promise<void> | null = null;
  private deleteTimer: ReturnType<typeof setTimeout> | null = null;
  private readonly window: number;
  private readonly idle: (() => void)[] = [];

  constructor(private readonly o: PublisherOptions) {
    this.window = o.window ?? DEFAULT_PUBLISH_WINDOW;
  }

  /**
   * Loads changesets left in the outbox by an earlier run (before this run commits anything, so
   * that they keep their order and are queued once).
   */
  async load(): Promise<void> {
    let after = 0;
    for (;;) {
      const rows = await replicationClient(this.o.db).call("outboxPending", {
        after,
        limit: OUTBOX_LOAD_BATCH,
      });
      for (const r of rows) this.push({ ...r, incarnation: committedBy(r.data) });
      if (rows.length < OUTBOX_LOAD_BATCH) break;
      after = rows[rows.length - 1].outboxId;
    }
    if (this.queue.length > 0) {
      this.o.logger.info("changesets left in the outbox will be published", {
        count: this.queue.length,
      });
    }
  }

  /** Starts publishing through `js` (NATS was reached). */
  attach(js: StreamPublish): void {
    this.js = js;
    this.kick();
  }

  /**
   * Queues a committed changeset; resolves once JetStream stored it (and all before it), rejects
   * with `HaError("too_large")` when the server refused it as too large.
   */
  enqueue(p: CommitPayload): Promise<void> {
    const item = this.push({ ...p, incarnation: this.o.self.incarnation });
    const done = new Promise<void>((resolve, reject) => item.waiters.push({ resolve, reject }));
    this.kick();
    return done;
  }

  /** The current state. */
  status(): PublisherStatus {
    return {
      subject: this.o.subject,
      pending: this.queue.length,
      connected: this.js !== null,
      published: this.published,
      dropped: this.dropped,
      lastError: this.lastError,
    };
  }

  /**
   * Waits up to `ms` for the queue to drain (not when NATS is unreachable: the outbox keeps the
   * changesets for the next run), then stops publishing. Idempotent.
   */
  async stop(ms: number): Promise<void> {
    if (this.queue.length > 0 && !this.stopped && this.js && this.lastError === null) {
      let timer: ReturnType<typeof setTimeout> | undefined;
      await Promise.race([
        new Promise<void>((r) => this.idle.push(r)),
        new Promise<void>((r) => timer = setTimeout(r, ms)),
      ]);
      clearTimeout(timer);
    }
    this.stopped = true;
    if (this.retryTimer !== null) clearTimeout(this.retryTimer);
    if (this.deleteTimer !== null) clearTimeout(this.deleteTimer);
    this.deleteTimer = null;
    await this.deleting;
    await this.flushDeletes();
  }

  private push(
    p: { outboxId: number; id: string; data: string; incarnation: string | null },
  ): Item {
    const item: Item = {
      outboxId: p.outboxId,
      id: p.id,
      data: p.data,
      incarnation: p.incarnation,
      acked: false,
      sent: false,
      dropped: null,
      waiters: [],
    };
    this.queue.push(item);
    return item;
  }

  private kick(): void {
    if (this.failed || this.stopped || !this.js) return;
    for (const item of this.queue) {
      if (this.inflight >= this.window) break;
      if (item.sent || item.acked) continue;
      item.sent = true;
      this.inflight++;
      this.send(item);
    }
  }

  private send(item: Item): void {
    this.js!.publish(this.o.subject, item.data, {
      msgID: item.id,
      timeout: this.o.timeoutMs,
      headers: this.headers(item),
    }).then(
      () => {
        item.acked = true;
        this.published++;
      },
      (e: unknown) => {
        if (isPayloadTooLarge(e)) return this.drop(item);
        item.sent = false;
        if (!this.failed) {
          this.failed = true;
          this.lastError = e instanceof Error ? e.message : String(e);
          this.o.logger.warn("publish failed; will retry", {
            subject: this.o.subject,
            error: this.lastError,
          });
        }
      },
    ).finally(() => {
      this.inflight--;
      this.advance();
      if (this.failed) {
        if (this.inflight === 0) this.scheduleRetry();
      } else this.kick();
    });
  }

  /** Headers of one message (the publish adds `Nats-Msg-Id` to the object it is given). */
  private headers(item: Item): MsgHdrs {
    const h = headers();
    h.set(NODE_HEADER, this.o.self.node);
    if (item.incarnation !== null) h.set(INCARNATION_HEADER, item.incarnation);
    if (this.o.clusterKey) h.set(SIGNATURE_HEADER, signPayload(this.o.clusterKey, item.data));
    return h;
  }

  /** Gives up on a changeset the server refuses as too large, loudly. */
  private drop(item: Item): void {
    const bytes = utf8Length(item.data);
    item.acked = true;
    this.dropped++;
    item.dropped = new HaError(
      "too_large",
      `committed locally but NOT replicated: the changeset ${item.id} (${bytes} bytes) exceeds ` +
        `the NATS server's max_payload`,
      { bytes },
    );
    this.o.logger.error("changeset too large for NATS: dropped, it will not be replicated", {
      subject: this.o.subject,
      id: item.id,
      bytes,
    });
  }

  private advance(): void {
    while (this.queue.length > 0 && this.queue[0].acked) {
      const item = this.queue.shift()!;
      this.deleteUpTo = Math.max(this.deleteUpTo, item.outboxId);
      for (const w of item.waiters) item.dropped ? w.reject(item.dropped) : w.resolve();
    }
    if (this.queue.length === 0) {
      this.lastError = null;
      for (const r of this.idle.splice(0)) r();
    }
    this.scheduleDelete();
  }

  private scheduleRetry(): void {
    if (this.stopped || this.retryTimer !== null) return;
    // Everything not yet stored is resent in order; Nats-Msg-Id de-duplicates.
    for (const item of this.queue) if (!item.acked) item.sent = false;
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      this.failed = false;
      this.kick();
    }, this.backoff.next());
  }

  private scheduleDelete(): void {
    if (this.deleteTimer !== null || this.stopped) return;
    this.deleteTimer = setTimeout(() => {
      this.deleteTimer = null;
      this.backoff.reset();
      this.deleting = this.flushDeletes();
    }, OUTBOX_DELETE_DELAY_MS);
  }

  private async flushDeletes(): Promise<void> {
    const upTo = this.deleteUpTo;
    if (upTo <= this.deleted) return;
    try {
      // Freed once sent, like an apply: group commits and applies posted meanwhile queue
      // behind it in the writer instead of waiting for its answer.
      await replicationClient(this.o.db).sendNext("outboxDelete", () => upTo);
      this.deleted = upTo;
    } catch (e) {
      this.o.logger.debug("outbox cleanup failed", { error: (e as Error).message });
    }
  }
}

/** The incarnation recorded in an encoded changeset, or null. */
function committedBy(data: string): string | null {
  try {
    const inc = (JSON.parse(data) as { incarnation?: unknown }).incarnation;
    return typeof inc === "string" ? inc : null;
  } catch {
    return null;
  }
}
